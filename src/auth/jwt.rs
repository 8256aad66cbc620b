//! Client tokens (PROTOCOL §0, §4): a JWT signed with HS256 and `AUTH_JWT_SECRET`, whose
//! `sub` is the Stacks address the connection acts for and whose `exp` (Unix seconds) is
//! required. The server issues them after a wallet sign-in; a dApp's own backend may issue
//! them too, with the same secret.
//!
//! Rules, beyond the signature:
//! - only `HS256` (the `alg` of the header is checked against it, so `none` or an RSA key
//!   confusion is refused);
//! - `exp` required and numeric; a token is valid until `exp`, exclusive, with no leeway:
//!   the WebSocket session drops the identity at `exp`, the same instant;
//! - `nbf`, when present, must have passed; `iat`, `iss`, `aud` are not checked;
//! - `sub` required, a standard Stacks address (`SP`/`ST`/`SM`/`SN`, c32check-valid,
//!   canonical spelling); a contract principal cannot sign in and is refused.
//!
//! Without a secret, every token is refused (`Disabled`): nothing can act as an address.

use crate::chainhook::principal::decode_standard_address;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Who a connection is signed in as, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`: a standard Stacks address.
    pub address: String,
    /// The token's `exp`, Unix seconds: the identity is valid strictly before it.
    pub exp: u64,
}

impl Identity {
    /// Whether the identity still holds at Unix second `now`.
    pub fn is_valid_at(&self, now: u64) -> bool {
        now < self.exp
    }

    /// Time from now until `exp` (zero once passed; `Duration::MAX` for an `exp` beyond
    /// what the system clock can represent).
    pub fn remaining(&self) -> Duration {
        match UNIX_EPOCH.checked_add(Duration::from_secs(self.exp)) {
            Some(exp) => exp.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO),
            None => Duration::MAX,
        }
    }
}

/// Optional fields, so that a missing claim is reported by the validation as missing rather
/// than as a JSON error.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

/// Why a token was refused; the message goes to the client in an `unauthorized` error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("client tokens are disabled: the server has no AUTH_JWT_SECRET")]
    Disabled,
    #[error("the token expired")]
    Expired,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token's sub must be a Stacks address, not {0:?}")]
    BadSubject(String),
    #[error("not a valid client token: {0}")]
    Malformed(String),
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// Issues and verifies client tokens with one HS256 secret.
pub struct ClientTokens {
    keys: Option<Keys>,
}

impl ClientTokens {
    /// Refuses every token and issues none.
    pub fn disabled() -> ClientTokens {
        ClientTokens { keys: None }
    }

    /// Tokens signed with `secret`; an absent or empty secret disables them.
    pub fn new(secret: Option<&str>) -> ClientTokens {
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            return ClientTokens::disabled();
        };
        let (Ok(encoding), Ok(decoding)) =
            (EncodingKey::from_secret(secret.as_bytes()), DecodingKey::from_secret(secret.as_bytes()))
        else {
            return ClientTokens::disabled();
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        ClientTokens { keys: Some(Keys { encoding, decoding, validation }) }
    }

    pub fn is_enabled(&self) -> bool {
        self.keys.is_some()
    }

    /// A token for `address`, issued at `now`, valid until `exp`.
    pub fn issue(&self, address: &str, now: u64, exp: u64) -> Result<String, TokenError> {
        let keys = self.keys.as_ref().ok_or(TokenError::Disabled)?;
        let claims = Claims { sub: Some(address.to_string()), exp: Some(exp), iat: Some(now) };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
            .map_err(|e| TokenError::Malformed(e.to_string()))
    }

    /// The identity a token proves at Unix second `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Identity, TokenError> {
        let keys = self.keys.as_ref().ok_or(TokenError::Disabled)?;
        let data = jsonwebtoken::decode::<Claims>(token, &keys.decoding, &keys.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm => TokenError::Malformed("the algorithm must be HS256".into()),
            ErrorKind::MissingRequiredClaim(claim) => TokenError::Malformed(format!("the {claim} claim is required")),
            ErrorKind::ImmatureSignature => TokenError::Malformed("the token is not valid yet (nbf)".into()),
            _ => TokenError::Malformed(e.to_string()),
        })?;
        let (Some(sub), Some(exp)) = (data.claims.sub, data.claims.exp) else {
            return Err(TokenError::Malformed("the sub and exp claims are required".into()));
        };
        if decode_standard_address(&sub).is_none() {
            return Err(TokenError::BadSubject(sub));
        }
        let identity = Identity { address: sub, exp };
        if !identity.is_valid_at(now) {
            return Err(TokenError::Expired);
        }
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ADDRESS: &str = "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH";
    const SECRET: &str = "a test secret of reasonable length";

    /// A token built outside `ClientTokens`, as a dApp backend (or an attacker) would.
    fn foreign(secret: &str, alg: Algorithm, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes()).expect("key"))
            .expect("encodes")
    }

    #[test]
    fn an_issued_token_verifies_as_its_address_until_exp() {
        let tokens = ClientTokens::new(Some(SECRET));
        let now = super::super::unix_now();
        let token = tokens.issue(ADDRESS, now, now + 60).expect("issued");
        assert_eq!(tokens.verify(&token, now), Ok(Identity { address: ADDRESS.into(), exp: now + 60 }));
        assert_eq!(tokens.verify(&token, now + 59).map(|i| i.exp), Ok(now + 60));
        assert_eq!(tokens.verify(&token, now + 60), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_that_never_expires_in_practice_is_accepted_without_overflow() {
        let tokens = ClientTokens::new(Some(SECRET));
        let now = super::super::unix_now();
        let token = foreign(SECRET, Algorithm::HS256, json!({"sub": ADDRESS, "exp": u64::MAX}));
        let identity = tokens.verify(&token, now).expect("valid");
        assert_eq!(identity.remaining(), Duration::MAX);
        let soon = Identity { address: ADDRESS.into(), exp: now + 100 };
        assert!(soon.remaining() <= Duration::from_secs(100) && soon.remaining() > Duration::from_secs(98));
        assert_eq!(Identity { address: ADDRESS.into(), exp: now - 1 }.remaining(), Duration::ZERO);
    }

    #[test]
    fn a_backend_token_with_extra_claims_verifies() {
        let tokens = ClientTokens::new(Some(SECRET));
        let now = super::super::unix_now();
        let token = foreign(SECRET, Algorithm::HS256, json!({"sub": ADDRESS, "exp": now + 60, "aud": "dapp", "iss": "backend", "role": "x"}));
        assert_eq!(tokens.verify(&token, now).map(|i| i.address), Ok(ADDRESS.to_string()));
    }

    #[test]
    fn forged_expired_and_malformed_tokens_are_refused() {
        let tokens = ClientTokens::new(Some(SECRET));
        let now = super::super::unix_now();
        let forged = foreign("another secret", Algorithm::HS256, json!({"sub": ADDRESS, "exp": now + 60}));
        assert_eq!(tokens.verify(&forged, now), Err(TokenError::BadSignature));
        let expired = foreign(SECRET, Algorithm::HS256, json!({"sub": ADDRESS, "exp": now - 1}));
        assert_eq!(tokens.verify(&expired, now), Err(TokenError::Expired));
        let no_exp = foreign(SECRET, Algorithm::HS256, json!({"sub": ADDRESS}));
        assert!(matches!(tokens.verify(&no_exp, now), Err(TokenError::Malformed(m)) if m.contains("exp")));
        let no_sub = foreign(SECRET, Algorithm::HS256, json!({"exp": now + 60}));
        assert!(matches!(tokens.verify(&no_sub, now), Err(TokenError::Malformed(m)) if m.contains("sub")));
        let hs512 = foreign(SECRET, Algorithm::HS512, json!({"sub": ADDRESS, "exp": now + 60}));
        assert!(matches!(tokens.verify(&hs512, now), Err(TokenError::Malformed(_))));
        let not_yet = foreign(SECRET, Algorithm::HS256, json!({"sub": ADDRESS, "exp": now + 60, "nbf": now + 30}));
        assert!(matches!(tokens.verify(&not_yet, now), Err(TokenError::Malformed(_))));
        let string_exp = foreign(SECRET, Algorithm::HS256, json!({"sub": ADDRESS, "exp": (now + 60).to_string()}));
        assert!(matches!(tokens.verify(&string_exp, now), Err(TokenError::Malformed(_))));
        assert!(matches!(tokens.verify("not.a.token", now), Err(TokenError::Malformed(_))));
        assert!(matches!(tokens.verify("", now), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn alg_none_is_refused() {
        let tokens = ClientTokens::new(Some(SECRET));
        let now = super::super::unix_now();
        let real = tokens.issue(ADDRESS, now, now + 60).expect("issued");
        let payload = real.split('.').nth(1).expect("three parts");
        // base64url of {"alg":"none","typ":"JWT"}, and no signature.
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(matches!(tokens.verify(&unsigned, now), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn a_token_whose_sub_is_not_an_address_is_refused() {
        let tokens = ClientTokens::new(Some(SECRET));
        let now = super::super::unix_now();
        for sub in ["alice", "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EJ", "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH.contract", ""] {
            let token = foreign(SECRET, Algorithm::HS256, json!({"sub": sub, "exp": now + 60}));
            assert_eq!(tokens.verify(&token, now), Err(TokenError::BadSubject(sub.to_string())), "{sub}");
        }
    }

    #[test]
    fn without_a_secret_nothing_is_valid_or_issued() {
        let now = super::super::unix_now();
        let token = foreign(SECRET, Algorithm::HS256, json!({"sub": ADDRESS, "exp": now + 60}));
        for tokens in [ClientTokens::new(None), ClientTokens::new(Some(""))] {
            assert!(!tokens.is_enabled());
            assert_eq!(tokens.verify(&token, now), Err(TokenError::Disabled));
            assert_eq!(tokens.issue(ADDRESS, now, now + 60), Err(TokenError::Disabled));
        }
    }
}
