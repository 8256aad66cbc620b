//! Sign-in with a Stacks wallet (PROTOCOL §4 Identity): `POST /api/auth/challenge` hands
//! out a message to sign, `POST /api/auth/verify` checks the wallet's signature and issues a
//! client token. The rules live in [`crate::auth`]; this file reads and answers HTTP.

use super::{ApiError, AppState};
use crate::auth::{self, challenge::rfc3339};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

/// Largest request body: both bodies are a few hundred bytes of JSON.
const BODY_LIMIT: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/auth/challenge", web::post().to(challenge))
        .route("/api/auth/verify", web::post().to(verify));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerifyRequest {
    message: String,
    signature: String,
    public_key: String,
}

/// `{"address"}` → `{"message","nonce","expiresAt"}`.
async fn challenge(req: HttpRequest, body: web::Payload, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let request: ChallengeRequest = read_json(body).await?;
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let challenge = state.sign_in.challenge(&request.address, host, auth::unix_now())?;
    Ok(HttpResponse::Ok().json(json!({
        "message": challenge.message,
        "nonce": challenge.nonce,
        "expiresAt": rfc3339(challenge.expires_at),
    })))
}

/// `{"message","signature","publicKey"}` → `{"token","address","exp"}`.
async fn verify(body: web::Payload, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let request: VerifyRequest = read_json(body).await?;
    let signed_in = state.sign_in.verify(&request.message, &request.signature, &request.public_key, auth::unix_now())?;
    tracing::info!(address = %signed_in.address, exp = signed_in.exp, "signed in with a wallet");
    Ok(HttpResponse::Ok().json(signed_in))
}

/// Reads a JSON body of at most [`BODY_LIMIT`] bytes.
async fn read_json<T: DeserializeOwned>(mut body: web::Payload) -> Result<T, ApiError> {
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest { code: "invalid_body", message: e.to_string(), path: String::new() })?;
        if bytes.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::PayloadTooLarge { limit: BODY_LIMIT });
        }
        bytes.extend_from_slice(&chunk);
    }
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::BadRequest {
            code: "invalid_body",
            message: e.inner().to_string(),
            path: if path == "." { String::new() } else { path },
        }
    })
}
