//! Sign-in challenges: the message a wallet signs, and the book of those handed out.
//!
//! A challenge names the domain (or app), the address, the network, a random nonce and its
//! issue and expiry times, in the layout of Sign-In with Ethereum (EIP-4361), which wallet
//! users already know. The book holds each until it is used or expires:
//!
//! - **Single use.** `take` removes the challenge whatever happens next, so one signature
//!   can never be answered with two tokens, and a failed attempt needs a new challenge.
//! - **Bounded.** At most `capacity` challenges are held; expired ones are dropped first, and
//!   when the book is still full a new one is refused (the caller answers 503) rather than
//!   evicting one a person may be signing right now.
//! - **Exact.** The message sent back must be the one issued, byte for byte: the nonce finds
//!   it, equality proves nothing in it was changed.

use super::Network;
use std::collections::{BTreeMap, HashMap};

/// A challenge as handed to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The text the wallet signs.
    pub message: String,
    pub nonce: String,
    /// Unix seconds; the challenge is refused from this second on.
    pub expires_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("at most {capacity} challenges are held at once")]
    Full { capacity: usize },
    #[error("no outstanding challenge has this message")]
    Unknown,
    #[error("the challenge expired")]
    Expired,
}

struct Held {
    address: String,
    message: String,
    expires_at: u64,
    /// Issue order, to find this entry in the expiry index.
    order: u64,
}

/// The outstanding challenges, by nonce, with an index by expiry for purging.
pub struct ChallengeBook {
    by_nonce: HashMap<String, Held>,
    /// (expires_at, order) → nonce: the first entries are the first to expire.
    by_expiry: BTreeMap<(u64, u64), String>,
    next_order: u64,
    capacity: usize,
    ttl_secs: u64,
}

impl ChallengeBook {
    pub fn new(capacity: usize, ttl_secs: u64) -> ChallengeBook {
        ChallengeBook {
            by_nonce: HashMap::new(),
            by_expiry: BTreeMap::new(),
            next_order: 0,
            capacity: capacity.max(1),
            ttl_secs,
        }
    }

    /// Challenges held (expired ones included until the next purge).
    pub fn len(&self) -> usize {
        self.by_nonce.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_nonce.is_empty()
    }

    /// Records a challenge for `address` and returns it. `nonce` must be unpredictable
    /// (the caller draws it from a secure random source).
    pub fn issue(
        &mut self,
        address: &str,
        domain: &str,
        network: Network,
        nonce: String,
        now: u64,
    ) -> Result<Challenge, ChallengeError> {
        self.purge_expired(now);
        if self.by_nonce.len() >= self.capacity {
            return Err(ChallengeError::Full { capacity: self.capacity });
        }
        let expires_at = now.saturating_add(self.ttl_secs);
        let message = sign_in_message(domain, address, network, &nonce, now, expires_at);
        if let Some(old) = self.by_nonce.remove(&nonce) {
            self.by_expiry.remove(&(old.expires_at, old.order));
        }
        let order = self.next_order;
        self.next_order += 1;
        self.by_expiry.insert((expires_at, order), nonce.clone());
        self.by_nonce.insert(
            nonce.clone(),
            Held { address: address.to_string(), message: message.clone(), expires_at, order },
        );
        Ok(Challenge { message, nonce, expires_at })
    }

    /// Takes the challenge whose message is exactly `message` and returns the address it was
    /// issued to. The challenge is gone afterwards, also when it had expired.
    pub fn take(&mut self, message: &str, now: u64) -> Result<String, ChallengeError> {
        let nonce = nonce_of(message).ok_or(ChallengeError::Unknown)?;
        match self.by_nonce.get(nonce) {
            Some(held) if held.message == message => {}
            // An altered message leaves the real challenge in place: whoever altered it
            // does not get to use it up for the person signing it.
            _ => return Err(ChallengeError::Unknown),
        }
        let held = self.by_nonce.remove(nonce).ok_or(ChallengeError::Unknown)?;
        self.by_expiry.remove(&(held.expires_at, held.order));
        if now >= held.expires_at {
            return Err(ChallengeError::Expired);
        }
        Ok(held.address)
    }

    fn purge_expired(&mut self, now: u64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let nonce = entry.remove();
            self.by_nonce.remove(&nonce);
        }
    }
}

const NONCE_LABEL: &str = "Nonce: ";

/// The nonce line of a sign-in message.
pub fn nonce_of(message: &str) -> Option<&str> {
    message.lines().find_map(|line| line.strip_prefix(NONCE_LABEL))
}

/// The text a wallet shows and signs.
pub fn sign_in_message(domain: &str, address: &str, network: Network, nonce: &str, issued_at: u64, expires_at: u64) -> String {
    format!(
        "{domain} wants you to sign in with your Stacks account:\n\
         {address}\n\
         \n\
         Sign in to {app}. Signing proves you hold this address; it sends no transaction and costs nothing.\n\
         \n\
         Network: {network}\n\
         {NONCE_LABEL}{nonce}\n\
         Issued At: {issued}\n\
         Expiration Time: {expires}",
        app = super::APP_NAME,
        issued = rfc3339(issued_at),
        expires = rfc3339(expires_at),
    )
}

/// `2026-01-02T03:04:05Z`.
pub fn rfc3339(unix_secs: u64) -> String {
    i64::try_from(unix_secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRESS: &str = "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH";

    fn book(capacity: usize) -> ChallengeBook {
        ChallengeBook::new(capacity, 300)
    }

    #[test]
    fn the_message_names_domain_address_network_nonce_and_times() {
        let c = book(4).issue(ADDRESS, "app.example", Network::Testnet, "n0nce".into(), 1_767_225_600).expect("issued");
        assert_eq!(
            c.message,
            "app.example wants you to sign in with your Stacks account:\n\
             ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH\n\
             \n\
             Sign in to timebank-realtime. Signing proves you hold this address; it sends no transaction and costs nothing.\n\
             \n\
             Network: testnet\n\
             Nonce: n0nce\n\
             Issued At: 2026-01-01T00:00:00Z\n\
             Expiration Time: 2026-01-01T00:05:00Z"
        );
        assert_eq!((c.nonce.as_str(), c.expires_at), ("n0nce", 1_767_225_900));
        assert_eq!(nonce_of(&c.message), Some("n0nce"));
    }

    #[test]
    fn given_an_issued_challenge_when_taken_twice_then_only_the_first_succeeds() {
        let mut b = book(4);
        let c = b.issue(ADDRESS, "d", Network::Testnet, "a".into(), 100).expect("issued");
        assert_eq!(b.take(&c.message, 101), Ok(ADDRESS.to_string()));
        assert_eq!(b.take(&c.message, 102), Err(ChallengeError::Unknown));
        assert!(b.is_empty());
    }

    #[test]
    fn given_an_expired_challenge_when_taken_then_expired_and_gone() {
        let mut b = book(4);
        let c = b.issue(ADDRESS, "d", Network::Testnet, "a".into(), 100).expect("issued");
        assert_eq!(b.take(&c.message, 400), Err(ChallengeError::Expired));
        assert_eq!(b.take(&c.message, 100), Err(ChallengeError::Unknown));
    }

    #[test]
    fn given_an_altered_message_when_taken_then_unknown_and_the_original_still_works() {
        let mut b = book(4);
        let c = b.issue(ADDRESS, "d", Network::Testnet, "a".into(), 100).expect("issued");
        let altered = c.message.replace(ADDRESS, "ST000000000000000000002AMW42H");
        assert_eq!(b.take(&altered, 101), Err(ChallengeError::Unknown));
        assert_eq!(b.take("no nonce here", 101), Err(ChallengeError::Unknown));
        assert_eq!(b.take(&c.message, 101), Ok(ADDRESS.to_string()));
    }

    #[test]
    fn given_a_full_book_when_issuing_then_refused_until_one_expires_or_is_used() {
        let mut b = book(2);
        let first = b.issue(ADDRESS, "d", Network::Testnet, "a".into(), 100).expect("issued");
        b.issue(ADDRESS, "d", Network::Testnet, "b".into(), 150).expect("issued");
        assert_eq!(
            b.issue(ADDRESS, "d", Network::Testnet, "c".into(), 200),
            Err(ChallengeError::Full { capacity: 2 })
        );
        b.take(&first.message, 201).expect("taken");
        b.issue(ADDRESS, "d", Network::Testnet, "c".into(), 202).expect("room after a use");
        assert!(b.issue(ADDRESS, "d", Network::Testnet, "d".into(), 300).is_err());
        // At 450 "b" (expires 450) is purged: room again, and the book never exceeds 2.
        b.issue(ADDRESS, "d", Network::Testnet, "d".into(), 450).expect("room after an expiry");
        assert_eq!(b.len(), 2);
    }
}
