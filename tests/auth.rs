//! Identity (PROTOCOL §4): wallet sign-in over real HTTP, client tokens on real WebSocket
//! connections. A real secp256k1 key signs the challenge the way a Stacks wallet does (the
//! digest is computed here, independently of the server's code); tokens that are forged,
//! expired, malformed or missing are refused with their code while the connection, and
//! every other one, keeps working and nothing reaches the log.

mod common;
use common::ws::WsClient;
use common::{Backend, TestApp, TestDb};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use k256::ecdsa::SigningKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use timebank_realtime::synth;

const JWT_SECRET: &str = "integration-test-jwt-secret-of-32-bytes+";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

async fn spawn(backend: Backend, adjust: impl FnOnce(&mut timebank_realtime::config::ServerConfig)) -> TestApp {
    TestApp::spawn_with(TestDb::new(backend).await, |c| {
        c.auth_jwt_secret = Some(JWT_SECRET.into());
        adjust(c);
    })
    .await
}

/// A wallet: a secp256k1 key that signs messages as `stx_signMessage` does.
struct Wallet(SigningKey);

impl Wallet {
    fn new(seed: u8) -> Wallet {
        Wallet(SigningKey::from_slice(&[seed; 32]).expect("valid scalar"))
    }

    fn public_key(&self) -> String {
        hex::encode(self.0.verifying_key().to_sec1_point(true).as_bytes())
    }

    /// `ST…`: c32check(26, ripemd160(sha256(compressed key))).
    fn address(&self) -> String {
        use ripemd::Ripemd160;
        let hash160 = Ripemd160::digest(Sha256::digest(self.0.verifying_key().to_sec1_point(true).as_bytes()));
        c32::encode_check_prefixed(hash160.as_slice(), 'S', 26).expect("testnet version")
    }

    /// RSV hex over sha256("\x17Stacks Signed Message:\n" ‖ varint(len) ‖ message).
    fn sign(&self, message: &str) -> String {
        let len = message.len();
        let varint = match len {
            0..=0xfc => vec![len as u8],
            _ => [&[0xfd][..], &(len as u16).to_le_bytes()].concat(),
        };
        let digest = Sha256::new()
            .chain_update(b"\x17Stacks Signed Message:\n")
            .chain_update(&varint)
            .chain_update(message.as_bytes())
            .finalize();
        let (sig, recid) = self.0.sign_prehash_recoverable(&digest);
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(recid.to_byte());
        hex::encode(bytes)
    }
}

/// A token as a dApp backend (or a forger) would make it.
fn token(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()).expect("key"))
        .expect("encodes")
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let res = app.client.post(format!("{}{path}", app.base)).json(&body).send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn challenge(app: &TestApp, address: &str) -> Value {
    let (status, body) = post(app, "/api/auth/challenge", json!({"address": address})).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn verify(app: &TestApp, message: &str, signature: &str, public_key: &str) -> (u16, Value) {
    post(app, "/api/auth/verify", json!({"message": message, "signature": signature, "publicKey": public_key})).await
}

/// Signs `wallet` in through the two routes; the `{"token","address","exp"}` answer.
async fn sign_in(app: &TestApp, wallet: &Wallet) -> Value {
    let c = challenge(app, &wallet.address()).await;
    let message = c["message"].as_str().expect("message");
    let (status, body) = verify(app, message, &wallet.sign(message), &wallet.public_key()).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn assert_authenticated(frame: &Value, address: &str, exp: u64) {
    assert_eq!(frame, &json!({"type": "authenticated", "address": address, "exp": exp}));
}

fn assert_unauthorized(frame: &Value, says: &str) {
    assert_eq!((frame["type"].as_str(), frame["code"].as_str()), (Some("error"), Some("unauthorized")), "{frame}");
    assert!(frame.get("id").is_none(), "{frame}");
    let message = frame["message"].as_str().unwrap_or("");
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

/// The connection answers and subscribes to chain events: `ping` → `pong`, then a live
/// subscription to everything.
async fn assert_usable(ws: &mut WsClient, sub: &str) {
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, json!({"type": "pong"}));
    ws.subscribe(sub, json!({"type": "all"}), None).await;
    assert_eq!(ws.recv().await["type"], "caught-up");
}

/// Posts one block and checks that each connection receives its event.
async fn assert_events_reach(app: &TestApp, height: i64, clients: &mut [&mut WsClient]) {
    let tx = synth::transaction(height, 0, 0, synth::address(0), None, vec![synth::stx_transfer(synth::address(0), synth::address(1), 5)]);
    assert_eq!(app.post_payload(&synth::payload(vec![synth::block(height, 0, 0, vec![tx])], vec![])).await.0, 200);
    for ws in clients.iter_mut() {
        let frame = ws.recv().await;
        assert_eq!((frame["type"].as_str(), frame["event"]["blockHeight"].as_i64()), (Some("event"), Some(height)), "{frame}");
    }
}

async fn wallet_sign_in_signs_websockets_in(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let head = app.head().await;
    let wallet = Wallet::new(21);
    let address = wallet.address();

    let c = challenge(&app, &address).await;
    let message = c["message"].as_str().expect("message");
    let nonce = c["nonce"].as_str().expect("nonce");
    assert!(message.contains(&address) && message.contains(nonce) && message.contains("Network: testnet"), "{message}");
    assert!(message.starts_with("127.0.0.1:") && message.contains(" wants you to sign in with your Stacks account:\n"), "{message}");
    assert!(message.ends_with(&format!("Expiration Time: {}", c["expiresAt"].as_str().expect("expiresAt"))), "{message}");

    let before = now();
    let (status, signed_in) = verify(&app, message, &wallet.sign(message), &wallet.public_key()).await;
    assert_eq!(status, 200, "{signed_in}");
    assert_eq!(signed_in["address"], address.as_str());
    let exp = signed_in["exp"].as_u64().expect("exp");
    assert!((before + 3600..=now() + 3600).contains(&exp), "exp {exp}");
    let token = signed_in["token"].as_str().expect("token").to_string();

    // The token at the upgrade, either way, and later in an `auth` message.
    let mut by_query = WsClient::connect_with(&app, &format!("?token={token}"), &[]).await;
    assert_authenticated(&by_query.recv().await, &address, exp);
    let bearer = format!("Bearer {token}");
    let mut by_header = WsClient::connect_with(&app, "", &[("authorization", &bearer)]).await;
    assert_authenticated(&by_header.recv().await, &address, exp);
    let mut by_message = WsClient::connect(&app).await;
    by_message.send(json!({"type": "auth", "token": token})).await;
    assert_authenticated(&by_message.recv().await, &address, exp);

    // A fresh token refreshes the open connection.
    let later = exp + 600;
    by_message.send(json!({"type": "auth", "token": token_for(&address, later)})).await;
    assert_authenticated(&by_message.recv().await, &address, later);
    // So does signing in again with the wallet.
    let again = sign_in(&app, &wallet).await;
    by_query.send(json!({"type": "auth", "token": again["token"]})).await;
    assert_authenticated(&by_query.recv().await, &address, again["exp"].as_u64().expect("exp"));

    assert_eq!(app.head().await, head, "signing in appends nothing");
    // Signed-in connections subscribe to chain events like any other.
    for (ws, sub) in [(&mut by_query, "q"), (&mut by_header, "h"), (&mut by_message, "m")] {
        assert_usable(ws, sub).await;
    }
    assert_events_reach(&app, 1, &mut [&mut by_query, &mut by_header, &mut by_message]).await;
}

fn token_for(address: &str, exp: u64) -> String {
    token(JWT_SECRET, json!({"sub": address, "exp": exp}))
}

both_backends!(wallet_sign_in, wallet_sign_in_signs_websockets_in);

async fn bad_sign_ins_are_refused(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let head = app.head().await;
    let mut bystander = WsClient::connect(&app).await;
    assert_usable(&mut bystander, "b").await;
    let wallet = Wallet::new(31);
    let intruder = Wallet::new(32);

    let refused = |(status, body): (u16, Value), code: &str| {
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some(code)), "{body}");
    };

    // A signature of something else.
    let c = challenge(&app, &wallet.address()).await;
    let message = c["message"].as_str().expect("message");
    refused(verify(&app, message, &wallet.sign("something else"), &wallet.public_key()).await, "signature_mismatch");
    // The challenge is used up by that attempt: the right signature now finds nothing.
    refused(verify(&app, message, &wallet.sign(message), &wallet.public_key()).await, "unknown_challenge");

    // Another key, with its own public key: a valid signature of another address.
    let c = challenge(&app, &wallet.address()).await;
    let message = c["message"].as_str().expect("message");
    refused(verify(&app, message, &intruder.sign(message), &intruder.public_key()).await, "address_mismatch");
    // Another key, passed off as the wallet's.
    let c = challenge(&app, &wallet.address()).await;
    let message = c["message"].as_str().expect("message");
    refused(verify(&app, message, &intruder.sign(message), &wallet.public_key()).await, "signature_mismatch");

    // A nonce used once cannot be used twice, even with a valid signature.
    let c = challenge(&app, &wallet.address()).await;
    let message = c["message"].as_str().expect("message");
    let signature = wallet.sign(message);
    assert_eq!(verify(&app, message, &signature, &wallet.public_key()).await.0, 200);
    refused(verify(&app, message, &signature, &wallet.public_key()).await, "unknown_challenge");

    // An altered message (another address put in) was never issued.
    let c = challenge(&app, &wallet.address()).await;
    let altered = c["message"].as_str().expect("message").replace(&wallet.address(), &intruder.address());
    refused(verify(&app, &altered, &intruder.sign(&altered), &intruder.public_key()).await, "unknown_challenge");

    // Malformed requests: 400 with what is wrong.
    let bad_request = |(status, body): (u16, Value), code: &str| {
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)), "{body}");
    };
    bad_request(post(&app, "/api/auth/challenge", json!({"address": "alice"})).await, "invalid_address");
    bad_request(post(&app, "/api/auth/challenge", json!({"address": Wallet::new(31).address().replace("ST", "SP")})).await, "invalid_address");
    bad_request(post(&app, "/api/auth/challenge", json!({})).await, "invalid_body");
    bad_request(verify(&app, "m", "00", &wallet.public_key()).await, "invalid_signature");
    bad_request(verify(&app, "m", &wallet.sign("m"), "02zz").await, "invalid_public_key");
    let res = app.client.post(format!("{}/api/auth/verify", app.base)).body("{not json").send().await.expect("request");
    assert_eq!(res.status().as_u16(), 400);

    assert_eq!(app.head().await, head, "refused sign-ins append nothing");
    assert_events_reach(&app, 1, &mut [&mut bystander]).await;
}

both_backends!(bad_sign_ins, bad_sign_ins_are_refused);

#[actix_web::test]
async fn an_expired_challenge_is_refused() {
    let app = spawn(Backend::Sqlite, |c| c.auth_challenge_ttl_secs = 1).await;
    let wallet = Wallet::new(41);
    let c = challenge(&app, &wallet.address()).await;
    let message = c["message"].as_str().expect("message");
    let expires_at = chrono::DateTime::parse_from_rfc3339(c["expiresAt"].as_str().expect("expiresAt")).expect("RFC 3339");
    // Wait for the expiry the server announced.
    while now() < expires_at.timestamp() as u64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = verify(&app, message, &wallet.sign(message), &wallet.public_key()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("challenge_expired")), "{body}");
}

#[actix_web::test]
async fn bad_tokens_leave_connections_anonymous_and_working() {
    let app = spawn(Backend::Sqlite, |_| {}).await;
    let head = app.head().await;
    let address = Wallet::new(51).address();
    let mut bystander = WsClient::connect(&app).await;
    assert_usable(&mut bystander, "b").await;

    let forged = token("not the server's secret", json!({"sub": address, "exp": now() + 600}));
    let expired = token_for(&address, now() - 10);
    let not_an_address = token(JWT_SECRET, json!({"sub": "alice", "exp": now() + 600}));
    let no_exp = token(JWT_SECRET, json!({"sub": address}));

    // At the upgrade: the connection opens anyway, told why it is anonymous.
    // (query, Authorization header, what the error says)
    let cases = [
        ("?token=".to_string(), None, "not a valid client token"),
        (format!("?token={forged}"), None, "signature does not verify"),
        (String::new(), Some(format!("Bearer {expired}")), "expired"),
        (String::new(), Some(format!("Bearer {not_an_address}")), "must be a Stacks address"),
        (String::new(), Some(format!("Bearer {no_exp}")), "exp claim is required"),
        (String::new(), Some("Basic dXNlcjpwYXNz".to_string()), "Bearer"),
    ];
    let mut anonymous = Vec::new();
    for (i, (query, authorization, says)) in cases.iter().enumerate() {
        let headers: Vec<(&str, &str)> = authorization.iter().map(|v| ("authorization", v.as_str())).collect();
        let mut ws = WsClient::connect_with(&app, query, &headers).await;
        assert_unauthorized(&ws.recv().await, says);
        assert_usable(&mut ws, &format!("s{i}")).await;
        anonymous.push(ws);
    }

    // In an `auth` message: refused, the connection stays open.
    let mut ws = WsClient::connect(&app).await;
    for (message, says) in [
        (json!({"type": "auth"}), "needs a non-empty string token"),
        (json!({"type": "auth", "token": forged}), "signature does not verify"),
        (json!({"type": "auth", "token": expired}), "expired"),
        (json!({"type": "auth", "token": not_an_address}), "must be a Stacks address"),
    ] {
        ws.send(message).await;
        assert_unauthorized(&ws.recv().await, says);
    }
    assert_usable(&mut ws, "m").await;

    // No token at all: no frame until asked.
    let mut plain = WsClient::connect(&app).await;
    assert_usable(&mut plain, "p").await;

    assert_eq!(app.head().await, head, "refused tokens append nothing");
    let mut all: Vec<&mut WsClient> = anonymous.iter_mut().collect();
    all.extend([&mut ws, &mut plain, &mut bystander]);
    assert_events_reach(&app, 1, &mut all).await;
}

#[actix_web::test]
async fn a_connection_acts_for_one_address_and_keeps_it_when_refused() {
    let app = spawn(Backend::Sqlite, |_| {}).await;
    let address = Wallet::new(61).address();
    let other = Wallet::new(62).address();
    let exp = now() + 2;
    let mut ws = WsClient::connect_with(&app, &format!("?token={}", token_for(&address, exp)), &[]).await;
    assert_authenticated(&ws.recv().await, &address, exp);

    ws.send(json!({"type": "auth", "token": token_for(&other, now() + 600)})).await;
    assert_unauthorized(&ws.recv().await, "needs a connection of its own");
    ws.send(json!({"type": "auth", "token": token("forged", json!({"sub": address, "exp": now() + 600}))})).await;
    assert_unauthorized(&ws.recv().await, "signature does not verify");
    // The first identity was kept through both refusals: it is what expires at `exp`.
    assert_unauthorized(&ws.recv().await, &format!("the token for {address} expired at {exp}"));
    // Expired, the connection still acts for its first address only.
    ws.send(json!({"type": "auth", "token": token_for(&other, now() + 600)})).await;
    assert_unauthorized(&ws.recv().await, "needs a connection of its own");
    let fresh = now() + 600;
    ws.send(json!({"type": "auth", "token": token_for(&address, fresh)})).await;
    assert_authenticated(&ws.recv().await, &address, fresh);
}

#[actix_web::test]
async fn the_identity_ends_at_exp_and_subscriptions_carry_on() {
    let app = spawn(Backend::Sqlite, |_| {}).await;
    let address = Wallet::new(71).address();
    let exp = now() + 2;
    let mut ws = WsClient::connect_with(&app, "", &[("authorization", &format!("Bearer {}", token_for(&address, exp)))]).await;
    assert_authenticated(&ws.recv().await, &address, exp);
    assert_usable(&mut ws, "s").await;

    let expired = ws.recv().await;
    assert!(now() >= exp, "the identity ended before exp");
    assert_unauthorized(&expired, "send auth with a new token");
    assert_events_reach(&app, 1, &mut [&mut ws]).await;

    // A refresh before `exp` replaces the timer: nothing ends at the first token's `exp`.
    let short = now() + 2;
    let mut refreshed = WsClient::connect_with(&app, &format!("?token={}", token_for(&address, short)), &[]).await;
    assert_authenticated(&refreshed.recv().await, &address, short);
    let long = now() + 600;
    refreshed.send(json!({"type": "auth", "token": token_for(&address, long)})).await;
    assert_authenticated(&refreshed.recv().await, &address, long);
    let until_past_short = Duration::from_secs(short + 1 - now());
    assert_eq!(refreshed.drain(until_past_short).await, Vec::<Value>::new());
}

#[actix_web::test]
async fn without_a_secret_no_token_is_valid_and_sign_in_is_off() {
    let app = TestApp::spawn_with(TestDb::new(Backend::Sqlite).await, |_| {}).await;
    let wallet = Wallet::new(81);
    let t = token_for(&wallet.address(), now() + 600);
    let mut ws = WsClient::connect_with(&app, &format!("?token={t}"), &[]).await;
    assert_unauthorized(&ws.recv().await, "no AUTH_JWT_SECRET");
    ws.send(json!({"type": "auth", "token": t})).await;
    assert_unauthorized(&ws.recv().await, "no AUTH_JWT_SECRET");
    assert_usable(&mut ws, "s").await;

    let (status, body) = post(&app, "/api/auth/challenge", json!({"address": wallet.address()})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (501, Some("auth_disabled")), "{body}");
    let (status, body) = verify(&app, "m", &wallet.sign("m"), &wallet.public_key()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (501, Some("auth_disabled")), "{body}");
}
