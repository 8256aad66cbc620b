//! Who a client is (PROTOCOL §4 "Identity"): client tokens, and the server's own sign-in
//! with a Stacks wallet that issues them.
//!
//! - [`jwt`]: client tokens — JWT, HS256 with `AUTH_JWT_SECRET`, `sub` = the Stacks
//!   address, `exp` required. The WebSocket session verifies them; sign-in issues them.
//! - [`wallet`]: how Stacks wallets sign a plain-text message, checked with a public key,
//!   and the address a public key stands for.
//! - [`challenge`]: the messages handed out to sign, each with a nonce that is used once.
//! - [`SignIn`]: the two steps of `POST /api/auth/challenge` and `POST /api/auth/verify`
//!   put together.
//!
//! Pure logic: no actix, no diesel, no I/O but the clock and the OS random source (for
//! nonces), so every rule is unit-tested here; `routes::auth` and the session are thin.

pub mod challenge;
pub mod jwt;
pub mod wallet;

pub use challenge::{Challenge, ChallengeBook, ChallengeError};
pub use jwt::{ClientTokens, Identity, TokenError};
pub use wallet::{PublicKey, SignatureError, WalletSignature};

use crate::chainhook::principal::decode_standard_address;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Default lifetime of a token issued by sign-in: an hour, refreshed by signing in again
/// (or by a token from the dApp's own backend) without reconnecting.
pub const TOKEN_TTL_SECS: u64 = 3_600;
/// Default time a wallet has to sign a challenge: long enough for a person to read the
/// message in the wallet and confirm.
pub const CHALLENGE_TTL_SECS: u64 = 300;
/// Default number of challenges held at once. Each costs about a kilobyte; the bound keeps a
/// flood of challenge requests from growing memory (beyond it: 503 until some expire or are
/// used).
pub const MAX_CHALLENGES: usize = 10_000;

/// Seconds since the Unix epoch: the clock of `exp`, `iat` and challenge expiry.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The Stacks network whose addresses sign in (`STACKS_NETWORK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Mainnet,
    Testnet,
}

impl Network {
    /// Version byte of a single-signature address (c32check): 22 (`SP…`) on mainnet,
    /// 26 (`ST…`) on testnet. A wallet's key always stands for one of these.
    pub fn single_sig_version(self) -> u8 {
        match self {
            Network::Mainnet => 22,
            Network::Testnet => 26,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Network, String> {
        match s.to_ascii_lowercase().as_str() {
            "mainnet" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            other => Err(format!("unknown Stacks network {other:?} (mainnet or testnet)")),
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Sign-in settings (see `config`).
#[derive(Debug, Clone)]
pub struct SignInSettings {
    pub network: Network,
    pub token_ttl_secs: u64,
    pub challenge_ttl_secs: u64,
    pub max_challenges: usize,
    /// The domain or app name the message names; `None`: the `Host` the challenge was
    /// asked on.
    pub domain: Option<String>,
}

impl Default for SignInSettings {
    fn default() -> Self {
        SignInSettings {
            network: Network::Testnet,
            token_ttl_secs: TOKEN_TTL_SECS,
            challenge_ttl_secs: CHALLENGE_TTL_SECS,
            max_challenges: MAX_CHALLENGES,
            domain: None,
        }
    }
}

/// Name shown in sign-in messages when neither `AUTH_DOMAIN` nor a `Host` is known.
pub const APP_NAME: &str = "timebank-realtime";

/// Why a sign-in step was refused; `routes::error` turns each into a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// No `AUTH_JWT_SECRET`: the server cannot issue tokens, so it does not sign anyone in.
    #[error("sign-in is disabled: the server has no AUTH_JWT_SECRET")]
    Disabled,
    #[error("{0}")]
    InvalidAddress(String),
    #[error("too many sign-ins in progress (at most {capacity} challenges); retry shortly")]
    TooManyChallenges { capacity: usize },
    /// The public key or signature is not well formed.
    #[error(transparent)]
    Malformed(SignatureError),
    #[error("no outstanding challenge has this message: it was never issued, was altered, or was already used")]
    UnknownChallenge,
    #[error("the challenge expired; ask for a new one")]
    ChallengeExpired,
    #[error("the signature does not verify for this message and public key")]
    BadSignature,
    #[error("the public key is that of {derived}, not of {expected}, the address the challenge was issued to")]
    AddressMismatch { expected: String, derived: String },
    #[error("cannot issue a token: {0}")]
    Token(TokenError),
}

/// A token issued by sign-in: the answer of `POST /api/auth/verify`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignedIn {
    pub token: String,
    pub address: String,
    pub exp: u64,
}

/// The sign-in flow: hands out challenges, checks the signed answer, issues a token.
///
/// Challenges are held in memory, per node: a client signs in against the node that gave it
/// the challenge (the token it gets is valid on every node sharing `AUTH_JWT_SECRET`).
pub struct SignIn {
    tokens: Arc<ClientTokens>,
    settings: SignInSettings,
    challenges: Mutex<ChallengeBook>,
}

impl SignIn {
    pub fn new(tokens: Arc<ClientTokens>, settings: SignInSettings) -> SignIn {
        let challenges = Mutex::new(ChallengeBook::new(settings.max_challenges, settings.challenge_ttl_secs));
        SignIn { tokens, settings, challenges }
    }

    pub fn tokens(&self) -> &Arc<ClientTokens> {
        &self.tokens
    }

    pub fn settings(&self) -> &SignInSettings {
        &self.settings
    }

    /// Every operation leaves the book consistent, so a panic elsewhere while it was held
    /// (a poisoned lock) leaves nothing to repair.
    fn book(&self) -> MutexGuard<'_, ChallengeBook> {
        self.challenges.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Step 1: a message for `address` to sign. `host` is the `Host` the request came to,
    /// named in the message unless `AUTH_DOMAIN` is set.
    pub fn challenge(&self, address: &str, host: Option<&str>, now: u64) -> Result<Challenge, SignInError> {
        if !self.tokens.is_enabled() {
            return Err(SignInError::Disabled);
        }
        let network = self.settings.network;
        match decode_standard_address(address) {
            Some((version, _)) if version == network.single_sig_version() => {}
            _ => {
                return Err(SignInError::InvalidAddress(format!(
                    "address must be a {network} single-signature Stacks address ({}…), got {address:?}",
                    if network == Network::Mainnet { "SP" } else { "ST" }
                )))
            }
        }
        let domain = self
            .settings
            .domain
            .as_deref()
            .or(host.filter(|h| is_printable_domain(h)))
            .unwrap_or(APP_NAME);
        // 122 random bits from the OS's secure generator: unguessable, so nobody can answer
        // a challenge issued to someone else before it is even shown to them.
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        self.book()
            .issue(address, domain, network, nonce, now)
            .map_err(|e| match e {
                ChallengeError::Full { capacity } => SignInError::TooManyChallenges { capacity },
                ChallengeError::Unknown | ChallengeError::Expired => SignInError::UnknownChallenge,
            })
    }

    /// Step 2: checks the wallet's signature of a challenge message and issues a token for
    /// the challenge's address.
    ///
    /// Order of the checks: the public key and signature must be well formed (a 400 that
    /// leaves the challenge usable); then the challenge is taken — from here on it is used
    /// up, whatever the outcome —, must not have expired, the signature must verify, and
    /// the key's address must be the one the challenge was issued to.
    pub fn verify(&self, message: &str, signature: &str, public_key: &str, now: u64) -> Result<SignedIn, SignInError> {
        if !self.tokens.is_enabled() {
            return Err(SignInError::Disabled);
        }
        let key = PublicKey::from_hex(public_key).map_err(SignInError::Malformed)?;
        let signature = WalletSignature::from_hex(signature).map_err(SignInError::Malformed)?;
        let expected = self.book().take(message, now).map_err(|e| match e {
            ChallengeError::Expired => SignInError::ChallengeExpired,
            ChallengeError::Unknown | ChallengeError::Full { .. } => SignInError::UnknownChallenge,
        })?;
        if !signature.verifies(message, &key) {
            return Err(SignInError::BadSignature);
        }
        let derived = key.address(self.settings.network);
        if derived != expected {
            return Err(SignInError::AddressMismatch { expected, derived });
        }
        let exp = now.saturating_add(self.settings.token_ttl_secs.max(1));
        let token = self.tokens.issue(&derived, now, exp).map_err(SignInError::Token)?;
        Ok(SignedIn { token, address: derived, exp })
    }
}

/// A `Host` value fit to be shown in a message: short, printable ASCII, one line.
fn is_printable_domain(host: &str) -> bool {
    !host.is_empty() && host.len() <= 255 && host.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests;
