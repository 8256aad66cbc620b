//! The one place where failures become HTTP statuses.

use crate::actors::WriteError;
use crate::auth::SignInError;
use crate::chainhook::PayloadError;
use crate::store::StoreError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// Seconds a client is asked to wait before retrying a 503.
pub const RETRY_AFTER_SECS: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong Authorization bearer token")]
    Unauthorized,
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, path: String },
    #[error("body larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Unavailable(String),
    /// The server is stopping: retry on another node or later (the connection is closed).
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("not found")]
    NotFound,
    /// A sign-in answer that does not prove the address: ask for a new challenge.
    #[error("{message}")]
    SignInRefused { code: &'static str, message: String },
    /// The server is configured without what this needs.
    #[error("{message}")]
    Disabled { code: &'static str, message: String },
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadRequest { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::NotFound => "not_found",
            ApiError::SignInRefused { code, .. } | ApiError::Disabled { code, .. } => code,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::SignInRefused { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Disabled { .. } => StatusCode::NOT_IMPLEMENTED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let path = match self {
            ApiError::BadRequest { path, .. } => path.as_str(),
            _ => "",
        };
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            ApiError::ShuttingDown => {
                // A kept-alive connection would bring the client's retry back here.
                res.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())).force_close();
            }
            ApiError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        res.json(json!({"error": {"code": self.code(), "message": self.to_string(), "path": path}}))
    }
}

impl From<PayloadError> for ApiError {
    fn from(e: PayloadError) -> Self {
        ApiError::BadRequest { code: e.code, message: e.message, path: e.path }
    }
}

impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        let message = e.to_string();
        let bad_request = |code| ApiError::BadRequest { code, message: message.clone(), path: String::new() };
        let refused = |code| ApiError::SignInRefused { code, message: message.clone() };
        match &e {
            SignInError::Disabled => ApiError::Disabled { code: "auth_disabled", message },
            SignInError::InvalidAddress(_) => bad_request("invalid_address"),
            SignInError::Malformed(crate::auth::SignatureError::MalformedPublicKey) => bad_request("invalid_public_key"),
            SignInError::Malformed(crate::auth::SignatureError::MalformedSignature) => bad_request("invalid_signature"),
            SignInError::TooManyChallenges { .. } => ApiError::Unavailable(message),
            SignInError::UnknownChallenge => refused("unknown_challenge"),
            SignInError::ChallengeExpired => refused("challenge_expired"),
            SignInError::BadSignature => refused("signature_mismatch"),
            SignInError::AddressMismatch { .. } => refused("address_mismatch"),
            SignInError::Token(_) => ApiError::Unavailable(message),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}
