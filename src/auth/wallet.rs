//! Messages signed by Stacks wallets, checked the way `@stacks/encryption` checks them.
//!
//! # The scheme (stacks.js `hashMessage`, `verifyMessageSignatureRsv`)
//!
//! - The signed digest is `sha256(prefix ‖ varint(len(message)) ‖ message)`: `prefix` is the
//!   23 bytes `"\x17Stacks Signed Message:\n"` (the first byte is the length of the rest), the
//!   length is the UTF-8 byte length as a Bitcoin CompactSize varint. Wallets before
//!   stacks.js 6 used `"\x18Stacks Message Signing:\n"`; stacks.js still accepts a
//!   signature over that digest when the current one fails, and so does this module.
//! - The signature is 65 bytes, hex: `r ‖ s ‖ v` (RSV, what `signMessageHashRsv` — and so
//!   Leather and Xverse through `stx_signMessage` — produce). The deprecated
//!   `verifyMessageSignature` took `v ‖ r ‖ s` (VRS); both layouts are accepted. `v` (the
//!   recovery id) is not needed: the public key comes with the signature.
//! - ECDSA over secp256k1 with the given public key. High-S signatures are accepted
//!   (stacks.js verifies with `strict: false` for its older signers); verifying the
//!   normalized (low-S) form is equivalent.
//!
//! # Addresses
//!
//! A single-signature Stacks address is `c32check(version, hash160(public key))`, with
//! `hash160 = ripemd160(sha256(·))` of the 33-byte compressed key and version 22 (`SP…`,
//! mainnet) or 26 (`ST…`, testnet).

use super::Network;
use crate::chainhook::principal::{encode_address, HASH160_LEN};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{Signature, VerifyingKey};
use ripemd::Ripemd160;
use sha2::{Digest, Sha256};

/// What current wallets put before the message's length.
pub const MESSAGE_PREFIX: &str = "\x17Stacks Signed Message:\n";
/// What wallets put there before stacks.js 6.
pub const LEGACY_MESSAGE_PREFIX: &str = "\x18Stacks Message Signing:\n";

/// Length of a recoverable signature: r, s (32 bytes each) and the recovery id.
pub const SIGNATURE_LEN: usize = 65;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("publicKey must be a secp256k1 public key in hex (33 bytes compressed, or 65 uncompressed)")]
    MalformedPublicKey,
    #[error("signature must be 65 bytes in hex (r, s and the recovery id)")]
    MalformedSignature,
}

/// The digest a Stacks wallet signs for `message`.
pub fn hash_message(message: &str) -> [u8; 32] {
    hash_with_prefix(MESSAGE_PREFIX, message)
}

fn hash_with_prefix(prefix: &str, message: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prefix.as_bytes());
    hasher.update(compact_size(message.len() as u64));
    hasher.update(message.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    out
}

/// Bitcoin's CompactSize varint (stacks.js `varuint.encode`): one byte below 0xfd, else a
/// marker byte and the length little-endian in 2, 4 or 8 bytes.
fn compact_size(n: u64) -> Vec<u8> {
    match n {
        0..=0xfc => vec![n as u8],
        0xfd..=0xffff => [&[0xfd][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[0xfe][..], &(n as u32).to_le_bytes()].concat(),
        _ => [&[0xff][..], &n.to_le_bytes()].concat(),
    }
}

/// `hex` with an optional `0x` in front, decoded.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()
}

/// A secp256k1 public key as a wallet reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses a SEC1 key in hex, compressed or not; a point off the curve is refused.
    pub fn from_hex(s: &str) -> Result<PublicKey, SignatureError> {
        let bytes = decode_hex(s).ok_or(SignatureError::MalformedPublicKey)?;
        VerifyingKey::from_sec1_bytes(&bytes).map(PublicKey).map_err(|_| SignatureError::MalformedPublicKey)
    }

    /// The 33-byte compressed encoding.
    pub fn compressed(&self) -> Vec<u8> {
        self.0.to_sec1_point(true).as_bytes().to_vec()
    }

    /// `ripemd160(sha256(compressed key))`.
    pub fn hash160(&self) -> [u8; HASH160_LEN] {
        let sha = Sha256::digest(self.compressed());
        let mut out = [0u8; HASH160_LEN];
        out.copy_from_slice(&Ripemd160::digest(sha));
        out
    }

    /// The single-signature address of this key on `network`.
    pub fn address(&self, network: Network) -> String {
        // Versions 22 and 26 are below 32, the only case `encode_address` refuses.
        encode_address(network.single_sig_version(), &self.hash160()).unwrap_or_default()
    }
}

/// A 65-byte wallet signature, layout not yet decided (RSV or VRS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletSignature([u8; SIGNATURE_LEN]);

impl WalletSignature {
    pub fn from_hex(s: &str) -> Result<WalletSignature, SignatureError> {
        let bytes = decode_hex(s).ok_or(SignatureError::MalformedSignature)?;
        <[u8; SIGNATURE_LEN]>::try_from(bytes.as_slice())
            .map(WalletSignature)
            .map_err(|_| SignatureError::MalformedSignature)
    }

    pub fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> WalletSignature {
        WalletSignature(bytes)
    }

    /// Whether `key` signed `message` as a Stacks wallet does (see the module's scheme):
    /// either layout, either prefix.
    pub fn verifies(&self, message: &str, key: &PublicKey) -> bool {
        let rsv = &self.0[..64];
        let vrs = &self.0[1..];
        let candidates: Vec<Signature> = [rsv, vrs]
            .into_iter()
            .filter_map(|rs| Signature::from_slice(rs).ok())
            .map(|sig| sig.normalize_s())
            .collect();
        [MESSAGE_PREFIX, LEGACY_MESSAGE_PREFIX].into_iter().any(|prefix| {
            let digest = hash_with_prefix(prefix, message);
            candidates.iter().any(|sig| key.0.verify_prehash(&digest, sig).is_ok())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    /// A real key, fixed so that failures reproduce.
    fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).expect("valid scalar")
    }

    fn public_key(key: &SigningKey) -> PublicKey {
        PublicKey::from_hex(&hex::encode(key.verifying_key().to_sec1_point(true).as_bytes())).expect("valid key")
    }

    /// Signs as a wallet does (`signMessageHashRsv`): RSV over the prefixed digest.
    fn sign_rsv(key: &SigningKey, prefix: &str, message: &str) -> [u8; SIGNATURE_LEN] {
        let (sig, recid) = key.sign_prehash_recoverable(&hash_with_prefix(prefix, message));
        let mut out = [0u8; SIGNATURE_LEN];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = recid.to_byte();
        out
    }

    #[test]
    fn the_digest_matches_stacks_js() {
        // stacks.js packages/encryption/tests/messageSignature.test.ts: `hashMessage`.
        assert_eq!(hex::encode(hash_message("hello world")), "619997693db23de4b92ed152444a578a134143d9ad2c0f4dff2615de9d42ad96");
        let message = "You are saying that you want to perform action XYZ.";
        assert_eq!(hex::encode(hash_message(message)), "650ff1a80ea3fab019b383d4385fcc52bb4d1cbce4713f3e95889013be3569a5");
        assert_eq!(
            hex::encode(hash_with_prefix(LEGACY_MESSAGE_PREFIX, message)),
            "1a92e7334e5e0ffc9b5792e379895b829598bf16fe8a771dc724e8ebfb6ed5e9"
        );
    }

    #[test]
    fn varint_lengths_match_bitcoin_compact_size() {
        assert_eq!(compact_size(0), [0x00]);
        assert_eq!(compact_size(11), [0x0b]);
        assert_eq!(compact_size(0xfc), [0xfc]);
        // stacks.js's test: 284 bytes → fd 1c 01.
        assert_eq!(compact_size(284), [0xfd, 0x1c, 0x01]);
        assert_eq!(compact_size(0x1_0000), [0xfe, 0x00, 0x00, 0x01, 0x00]);
        assert_eq!(compact_size(0x1_0000_0000), [0xff, 0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn stacks_js_published_signatures_verify_and_give_its_address() {
        // stacks.js messageSignature.test.ts, "message signing complete flow": signature1
        // over the current prefix, signature2 over the legacy one, both RSV.
        let message = "You are saying that you want to perform action XYZ.";
        let key = PublicKey::from_hex("024cce41b91566d70ec2ed6eb161c6ef9c277bdc034738318ed06f1d5ba09546d6").expect("key");
        for sig in [
            "29ef6d718235e5fc32a1b90dd8fc7fa9403fa1b55c2dce46374570b7f3a4815d0215b8565f29a33ef8132dc0db6b00a5f13d85d6aff5c1171271818b9928928c01",
            "ab7d5f728dfc6daf0511bf292f981ae44c2ffb6f5fa1adf1db28580aeb9418903c28ddc87ede66ef4091c1df03ef4348b22de1f34b8581ab820d0d93a266115300",
        ] {
            let sig = WalletSignature::from_hex(sig).expect("65 bytes");
            assert!(sig.verifies(message, &key));
            assert!(!sig.verifies("You are saying that you want to perform action XYZ!", &key));
        }
        assert_eq!(key.address(Network::Testnet), "STGSJA8EMYDBAJDX6Z4ED8CWW071B6NB97SRAM1E");
    }

    #[test]
    fn a_signature_made_with_a_real_key_verifies_in_either_layout() {
        let key = signing_key(7);
        let public = public_key(&key);
        let message = "Sign in\nNonce: 1234";
        let rsv = sign_rsv(&key, MESSAGE_PREFIX, message);
        assert!(WalletSignature::from_bytes(rsv).verifies(message, &public));
        let mut vrs = [0u8; SIGNATURE_LEN];
        vrs[0] = rsv[64];
        vrs[1..].copy_from_slice(&rsv[..64]);
        assert!(WalletSignature::from_bytes(vrs).verifies(message, &public));
        let with_0x = format!("0x{}", hex::encode(rsv));
        assert!(WalletSignature::from_hex(&with_0x).expect("0x accepted").verifies(message, &public));
        assert!(WalletSignature::from_bytes(sign_rsv(&key, LEGACY_MESSAGE_PREFIX, message)).verifies(message, &public));
    }

    #[test]
    fn a_high_s_signature_verifies_like_in_stacks_js() {
        let key = signing_key(9);
        let message = "high s";
        let (sig, _) = key.sign_prehash_recoverable(&hash_message(message));
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).expect("valid scalars");
        assert_ne!(high, sig);
        let mut bytes = [0u8; SIGNATURE_LEN];
        bytes[..64].copy_from_slice(&high.to_bytes());
        assert!(WalletSignature::from_bytes(bytes).verifies(message, &public_key(&key)));
    }

    #[test]
    fn another_key_another_message_or_raw_sha256_do_not_verify() {
        let key = signing_key(7);
        let other = signing_key(8);
        let message = "Sign in";
        let sig = WalletSignature::from_bytes(sign_rsv(&key, MESSAGE_PREFIX, message));
        assert!(!sig.verifies(message, &public_key(&other)));
        assert!(!sig.verifies("Sign in.", &public_key(&key)));
        // A signature of the bare message hash (no prefix) is not a wallet signature.
        let (bare, recid) = key.sign_prehash_recoverable(&Sha256::digest(message.as_bytes()));
        let mut bytes = [0u8; SIGNATURE_LEN];
        bytes[..64].copy_from_slice(&bare.to_bytes());
        bytes[64] = recid.to_byte();
        assert!(!WalletSignature::from_bytes(bytes).verifies(message, &public_key(&key)));
    }

    #[test]
    fn malformed_keys_and_signatures_are_refused() {
        assert_eq!(PublicKey::from_hex("zz"), Err(SignatureError::MalformedPublicKey));
        // An uncompressed point whose coordinates do not satisfy the curve's equation.
        assert_eq!(PublicKey::from_hex(&format!("04{}", "01".repeat(64))), Err(SignatureError::MalformedPublicKey));
        assert_eq!(PublicKey::from_hex(&"02".repeat(32)), Err(SignatureError::MalformedPublicKey));
        assert_eq!(PublicKey::from_hex(""), Err(SignatureError::MalformedPublicKey));
        assert_eq!(WalletSignature::from_hex(&"ab".repeat(64)), Err(SignatureError::MalformedSignature));
        assert_eq!(WalletSignature::from_hex("xyz"), Err(SignatureError::MalformedSignature));
        // Well-formed but r = s = 0: never verifies, never panics.
        let zero = WalletSignature::from_hex(&"00".repeat(65)).expect("65 bytes");
        assert!(!zero.verifies("m", &public_key(&signing_key(7))));
    }

    #[test]
    fn an_uncompressed_key_gives_the_address_of_its_compressed_form() {
        let key = signing_key(7);
        let uncompressed = hex::encode(key.verifying_key().to_sec1_point(false).as_bytes());
        let from_uncompressed = PublicKey::from_hex(&uncompressed).expect("65-byte key");
        assert_eq!(from_uncompressed.address(Network::Testnet), public_key(&key).address(Network::Testnet));
        let mainnet = public_key(&key).address(Network::Mainnet);
        assert!(mainnet.starts_with("SP"), "{mainnet}");
    }
}
