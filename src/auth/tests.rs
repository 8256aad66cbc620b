//! The sign-in flow end to end, without I/O: a real secp256k1 key signs the challenge as
//! a wallet does, and the token that comes out verifies as the key's address.

use super::*;
use k256::ecdsa::SigningKey;

const SECRET: &str = "a sign-in test secret, 32+ bytes long";

struct Wallet {
    key: SigningKey,
}

impl Wallet {
    fn new(seed: u8) -> Wallet {
        Wallet { key: SigningKey::from_slice(&[seed; 32]).expect("valid scalar") }
    }

    fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_sec1_point(true).as_bytes())
    }

    fn address(&self, network: Network) -> String {
        PublicKey::from_hex(&self.public_key_hex()).expect("key").address(network)
    }

    /// RSV hex over the Stacks-prefixed digest, as `stx_signMessage` answers.
    fn sign(&self, message: &str) -> String {
        let (sig, recid) = self.key.sign_prehash_recoverable(&wallet::hash_message(message));
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(recid.to_byte());
        hex::encode(bytes)
    }
}

fn sign_in(settings: SignInSettings) -> SignIn {
    SignIn::new(Arc::new(ClientTokens::new(Some(SECRET))), settings)
}

#[test]
fn given_a_wallet_when_it_signs_the_challenge_then_a_token_for_its_address_is_issued() {
    let flow = sign_in(SignInSettings::default());
    let wallet = Wallet::new(11);
    let address = wallet.address(Network::Testnet);
    let now = unix_now();
    let challenge = flow.challenge(&address, Some("dapp.example"), now).expect("challenge");
    assert!(challenge.message.starts_with("dapp.example wants you to sign in"), "{}", challenge.message);
    assert!(challenge.message.contains(&address) && challenge.message.contains(&challenge.nonce));
    assert_eq!(challenge.expires_at, now + CHALLENGE_TTL_SECS);

    let signed_in = flow.verify(&challenge.message, &wallet.sign(&challenge.message), &wallet.public_key_hex(), now + 1).expect("signed in");
    assert_eq!((signed_in.address.as_str(), signed_in.exp), (address.as_str(), now + 1 + TOKEN_TTL_SECS));
    assert_eq!(flow.tokens().verify(&signed_in.token, now + 1), Ok(Identity { address, exp: signed_in.exp }));
}

#[test]
fn given_a_used_challenge_when_verified_again_then_unknown() {
    let flow = sign_in(SignInSettings::default());
    let wallet = Wallet::new(11);
    let now = unix_now();
    let c = flow.challenge(&wallet.address(Network::Testnet), None, now).expect("challenge");
    let sig = wallet.sign(&c.message);
    flow.verify(&c.message, &sig, &wallet.public_key_hex(), now).expect("first use");
    assert_eq!(flow.verify(&c.message, &sig, &wallet.public_key_hex(), now), Err(SignInError::UnknownChallenge));
}

#[test]
fn given_a_wrong_signature_then_refused_and_the_challenge_is_used_up() {
    let flow = sign_in(SignInSettings::default());
    let wallet = Wallet::new(11);
    let now = unix_now();
    let c = flow.challenge(&wallet.address(Network::Testnet), None, now).expect("challenge");
    let wrong = wallet.sign("another message");
    assert_eq!(flow.verify(&c.message, &wrong, &wallet.public_key_hex(), now), Err(SignInError::BadSignature));
    let right = wallet.sign(&c.message);
    assert_eq!(flow.verify(&c.message, &right, &wallet.public_key_hex(), now), Err(SignInError::UnknownChallenge));
}

#[test]
fn given_a_signature_by_another_key_then_its_address_does_not_match() {
    let flow = sign_in(SignInSettings::default());
    let wallet = Wallet::new(11);
    let intruder = Wallet::new(12);
    let now = unix_now();
    let c = flow.challenge(&wallet.address(Network::Testnet), None, now).expect("challenge");
    assert_eq!(
        flow.verify(&c.message, &intruder.sign(&c.message), &intruder.public_key_hex(), now),
        Err(SignInError::AddressMismatch { expected: wallet.address(Network::Testnet), derived: intruder.address(Network::Testnet) })
    );
    // The intruder's signature with the owner's public key does not verify either.
    let c = flow.challenge(&wallet.address(Network::Testnet), None, now).expect("challenge");
    assert_eq!(flow.verify(&c.message, &intruder.sign(&c.message), &wallet.public_key_hex(), now), Err(SignInError::BadSignature));
}

#[test]
fn given_an_expired_challenge_then_refused() {
    let flow = sign_in(SignInSettings { challenge_ttl_secs: 10, ..SignInSettings::default() });
    let wallet = Wallet::new(11);
    let now = unix_now();
    let c = flow.challenge(&wallet.address(Network::Testnet), None, now).expect("challenge");
    assert_eq!(flow.verify(&c.message, &wallet.sign(&c.message), &wallet.public_key_hex(), now + 10), Err(SignInError::ChallengeExpired));
}

#[test]
fn malformed_input_is_refused_before_the_challenge_is_used() {
    let flow = sign_in(SignInSettings::default());
    let wallet = Wallet::new(11);
    let now = unix_now();
    let c = flow.challenge(&wallet.address(Network::Testnet), None, now).expect("challenge");
    let sig = wallet.sign(&c.message);
    assert_eq!(flow.verify(&c.message, "beef", &wallet.public_key_hex(), now), Err(SignInError::Malformed(SignatureError::MalformedSignature)));
    assert_eq!(flow.verify(&c.message, &sig, "02abcd", now), Err(SignInError::Malformed(SignatureError::MalformedPublicKey)));
    assert!(flow.verify(&c.message, &sig, &wallet.public_key_hex(), now).is_ok());
}

#[test]
fn challenges_are_only_for_single_sig_addresses_of_the_configured_network() {
    let wallet = Wallet::new(11);
    let now = unix_now();
    let testnet = sign_in(SignInSettings::default());
    let mainnet = sign_in(SignInSettings { network: Network::Mainnet, ..SignInSettings::default() });
    assert!(testnet.challenge(&wallet.address(Network::Testnet), None, now).is_ok());
    assert!(matches!(testnet.challenge(&wallet.address(Network::Mainnet), None, now), Err(SignInError::InvalidAddress(_))));
    assert!(matches!(testnet.challenge("SN3Z4MMRJ29FVZB38FGYPE94N1D8ZGF55R7YWH00A", None, now), Err(SignInError::InvalidAddress(_))));
    assert!(matches!(testnet.challenge("not an address", None, now), Err(SignInError::InvalidAddress(_))));
    let c = mainnet.challenge(&wallet.address(Network::Mainnet), None, now).expect("mainnet challenge");
    let signed_in = mainnet.verify(&c.message, &wallet.sign(&c.message), &wallet.public_key_hex(), now).expect("signed in");
    assert!(signed_in.address.starts_with("SP"), "{}", signed_in.address);
}

#[test]
fn the_domain_is_the_setting_else_a_printable_host_else_the_app_name() {
    let wallet = Wallet::new(11);
    let address = wallet.address(Network::Testnet);
    let now = unix_now();
    let named = sign_in(SignInSettings { domain: Some("TimeBank".into()), ..SignInSettings::default() });
    assert!(named.challenge(&address, Some("host.example"), now).expect("c").message.starts_with("TimeBank wants"));
    let plain = sign_in(SignInSettings::default());
    assert!(plain.challenge(&address, Some("host.example:8080"), now).expect("c").message.starts_with("host.example:8080 wants"));
    assert!(plain.challenge(&address, Some("two words"), now).expect("c").message.starts_with("timebank-realtime wants"));
    assert!(plain.challenge(&address, None, now).expect("c").message.starts_with("timebank-realtime wants"));
}

#[test]
fn without_a_secret_sign_in_is_disabled() {
    let flow = SignIn::new(Arc::new(ClientTokens::disabled()), SignInSettings::default());
    let wallet = Wallet::new(11);
    assert_eq!(flow.challenge(&wallet.address(Network::Testnet), None, unix_now()), Err(SignInError::Disabled));
    assert_eq!(flow.verify("m", "00", "02", unix_now()), Err(SignInError::Disabled));
}

#[test]
fn a_full_book_refuses_new_challenges() {
    let flow = sign_in(SignInSettings { max_challenges: 2, ..SignInSettings::default() });
    let address = Wallet::new(11).address(Network::Testnet);
    let now = unix_now();
    flow.challenge(&address, None, now).expect("1");
    flow.challenge(&address, None, now).expect("2");
    assert_eq!(flow.challenge(&address, None, now), Err(SignInError::TooManyChallenges { capacity: 2 }));
}
