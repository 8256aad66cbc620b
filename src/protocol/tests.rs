//! Wire-format tests of PROTOCOL §3: parsing, refusals with their codes, round trips.

use super::*;
use serde_json::json;

fn code(text: &str) -> ErrorCode {
    ClientMessage::parse(text).expect_err("refused").code
}

#[test]
fn parses_each_filter() {
    let m = ClientMessage::parse(
        r#"{"type":"subscribe","id":"s1","filter":{"type":"contract","contractId":"ST1.x","eventType":"print_event"},"since":{"blockHeight":120,"blockHash":"0xab"}}"#,
    )
    .expect("parses");
    assert_eq!(
        m,
        ClientMessage::Subscribe {
            id: "s1".into(),
            filter: Filter::Contract { contract_id: "ST1.x".into(), event_type: Some(EventType::PrintEvent) },
            since: Some(Since::BlockHeight { height: 120, block_hash: Some("0xab".into()) }),
        }
    );
    for (f, want) in [
        (json!({"type":"user","address":"ST2"}), Filter::User { address: "ST2".into() }),
        (json!({"type":"event-type","eventType":"stx_transfer_event"}), Filter::EventType { event_type: EventType::StxTransferEvent }),
        (json!({"type":"all"}), Filter::All),
    ] {
        let text = json!({"type":"subscribe","id":"a","filter":f,"since":{"seq":4}}).to_string();
        assert_eq!(
            ClientMessage::parse(&text),
            Ok(ClientMessage::Subscribe { id: "a".into(), filter: want, since: Some(Since::Seq(4)) })
        );
    }
    assert_eq!(ClientMessage::parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
    assert_eq!(ClientMessage::parse(r#"{"type":"unsubscribe","id":"a"}"#), Ok(ClientMessage::Unsubscribe { id: "a".into() }));
    assert_eq!(ClientMessage::parse(r#"{"type":"auth","token":"t.o.k"}"#), Ok(ClientMessage::Auth { token: "t.o.k".into() }));
}

#[test]
fn classifies_errors() {
    assert_eq!(code("{nope"), ErrorCode::BadJson);
    assert_eq!(code("[1]"), ErrorCode::BadJson);
    assert_eq!(code(r#"{"id":"x"}"#), ErrorCode::BadJson);
    assert_eq!(code(r#"{"type":"subscribe","filter":{"type":"all"}}"#), ErrorCode::BadJson);
    assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
    assert_eq!(code(r#"{"type":"subscribe","id":"a"}"#), ErrorCode::InvalidFilter);
    assert_eq!(code(r#"{"type":"subscribe","id":"a","filter":{"type":"planet"}}"#), ErrorCode::InvalidFilter);
    assert_eq!(code(r#"{"type":"subscribe","id":"a","filter":{"type":"user"}}"#), ErrorCode::InvalidFilter);
    assert_eq!(code(r#"{"type":"subscribe","id":"a","filter":{"type":"user","address":""}}"#), ErrorCode::InvalidFilter);
    assert_eq!(code(r#"{"type":"subscribe","id":"a","filter":{"type":"event-type","eventType":"nope"}}"#), ErrorCode::InvalidFilter);
    assert_eq!(code(r#"{"type":"subscribe","id":"a","filter":{"type":"all"},"since":{"seq":1,"blockHeight":2}}"#), ErrorCode::InvalidFilter);
    assert_eq!(code(r#"{"type":"subscribe","id":"a","filter":{"type":"all"},"since":{"seq":-1}}"#), ErrorCode::InvalidFilter);
    assert_eq!(code(r#"{"type":"auth"}"#), ErrorCode::Unauthorized);
    assert_eq!(code(r#"{"type":"auth","token":""}"#), ErrorCode::Unauthorized);
    assert_eq!(code(r#"{"type":"auth","token":7}"#), ErrorCode::Unauthorized);
}

fn entry(kind: EntryKind, contract: Option<&str>, t: EventType, addresses: &[&str]) -> LogEntry {
    LogEntry {
        seq: 1,
        kind,
        block_height: 1,
        block_hash: "0x01".into(),
        event_type: Some(t),
        contract_id: contract.map(str::to_string),
        affected_addresses: addresses.iter().map(|a| a.to_string()).collect(),
        rollback_of: None,
        body: Arc::from("{}"),
    }
}

#[test]
fn filters_match_events_and_their_rollbacks_alike() {
    let contract = Filter::Contract { contract_id: "C".into(), event_type: None };
    let contract_print = Filter::Contract { contract_id: "C".into(), event_type: Some(EventType::PrintEvent) };
    let user = Filter::User { address: "A".into() };
    let transfers = Filter::EventType { event_type: EventType::StxTransferEvent };
    for kind in [EntryKind::Event, EntryKind::Rollback] {
        let print = entry(kind, Some("C"), EventType::PrintEvent, &["B"]);
        let transfer = entry(kind, Some("C"), EventType::StxTransferEvent, &["A", "B"]);
        let other = entry(kind, None, EventType::StxTransferEvent, &["Z"]);
        assert!(contract.matches(&print) && contract.matches(&transfer) && !contract.matches(&other));
        assert!(contract_print.matches(&print) && !contract_print.matches(&transfer));
        assert!(!user.matches(&print) && user.matches(&transfer) && !user.matches(&other));
        assert!(!transfers.matches(&print) && transfers.matches(&transfer) && transfers.matches(&other));
        assert!(Filter::All.matches(&other));
    }
    for kind in [EntryKind::BlockApplied, EntryKind::BlockExtended, EntryKind::BlockRolledBack] {
        let marker = entry(kind, Some("C"), EventType::PrintEvent, &["A"]);
        assert!(!Filter::All.matches(&marker) && !contract.matches(&marker), "{kind:?}");
        assert_eq!(entry_frame_tail(&marker), None, "{kind:?}");
    }
}

#[test]
fn client_messages_round_trip() {
    let msgs = [
        ClientMessage::Subscribe {
            id: "s\"1".into(),
            filter: Filter::Contract { contract_id: "ST1.x".into(), event_type: Some(EventType::PrintEvent) },
            since: Some(Since::BlockHeight { height: 7, block_hash: Some("0xab".into()) }),
        },
        ClientMessage::Subscribe { id: "a".into(), filter: Filter::User { address: "ST2".into() }, since: Some(Since::Seq(4)) },
        ClientMessage::Subscribe { id: "b".into(), filter: Filter::All, since: Some(Since::BlockHeight { height: 3, block_hash: None }) },
        ClientMessage::Subscribe { id: "c".into(), filter: Filter::EventType { event_type: EventType::FtMintEvent }, since: None },
        ClientMessage::Unsubscribe { id: "a".into() },
        ClientMessage::Ping,
        ClientMessage::Auth { token: "h.p.s".into() },
    ];
    for m in msgs {
        assert_eq!(ClientMessage::parse(&m.to_json()), Ok(m.clone()), "{}", m.to_json());
    }
}

#[test]
fn server_frames_parse_what_the_server_writes() {
    let sub = ServerMessage::Subscribed { id: "s1", head_seq: 5, head_block_height: None }.to_json();
    assert!(matches!(ServerFrame::parse(&sub), Ok(ServerFrame::Subscribed { id, head_seq: 5, head_block_height: None }) if id == "s1"));
    let r = ServerMessage::Resync { sub: "s1", seq: 4, reason: ResyncReason::SlowConsumer }.to_json();
    assert!(matches!(ServerFrame::parse(&r), Ok(ServerFrame::Resync { seq: 4, reason: ResyncReason::SlowConsumer, .. })));
    let r = ServerMessage::Resync { sub: "s1", seq: 4, reason: ResyncReason::Shutdown }.to_json();
    assert!(r.contains(r#""reason":"shutdown""#), "{r}");
    assert!(matches!(ServerFrame::parse(&r), Ok(ServerFrame::Resync { reason: ResyncReason::Shutdown, .. })));
    let newer = r#"{"type":"resync","sub":"s1","seq":4,"reason":"a_later_reason"}"#;
    assert!(matches!(ServerFrame::parse(newer), Ok(ServerFrame::Resync { seq: 4, reason: ResyncReason::Other, .. })));
    let e = ServerMessage::Error { id: None, code: ErrorCode::BadJson, message: "m" }.to_json();
    assert!(matches!(ServerFrame::parse(&e), Ok(ServerFrame::Error { id: None, code: ErrorCode::BadJson, .. })));
    let c = ServerMessage::CaughtUp { sub: "s1", seq: 9 }.to_json();
    assert!(matches!(ServerFrame::parse(&c), Ok(ServerFrame::CaughtUp { seq: 9, .. })));
    let body = r#"{"seq":12,"data":{"n":123456789012345678901234567890},"txHash":"0x01"}"#;
    let frame = frame_for_sub("\"s\\\"1\"", &format!("\"type\":\"event\",\"event\":{body}}}"));
    match ServerFrame::parse(&frame) {
        Ok(ServerFrame::Event { sub, seq, body: raw }) => {
            assert_eq!((sub.as_str(), seq, raw.get()), ("s\"1", 12, body));
        }
        other => panic!("{other:?}"),
    }
    let rb = frame_for_sub("\"s\"", "\"type\":\"rollback\",\"rollback\":{\"seq\":13,\"rollbackOf\":12}}");
    assert!(matches!(ServerFrame::parse(&rb), Ok(ServerFrame::Rollback { seq: 13, .. })));
    assert!(matches!(ServerFrame::parse(r#"{"type":"pong"}"#), Ok(ServerFrame::Pong)));
    let a = ServerMessage::Authenticated { address: "ST1", exp: 1_700_000_000 }.to_json();
    assert!(matches!(ServerFrame::parse(&a), Ok(ServerFrame::Authenticated { address, exp: 1_700_000_000 }) if address == "ST1"));
    assert!(ServerFrame::parse(r#"{"type":"dance"}"#).is_err());
    assert!(ServerFrame::parse(r#"{"type":"event","sub":"s"}"#).is_err());
}

#[test]
fn server_messages_match_the_contract() {
    assert_eq!(
        ServerMessage::Subscribed { id: "s1", head_seq: 5, head_block_height: Some(130) }.to_json(),
        r#"{"type":"subscribed","id":"s1","headSeq":5,"headBlockHeight":130}"#
    );
    assert_eq!(ServerMessage::CaughtUp { sub: "s1", seq: 5 }.to_json(), r#"{"type":"caught-up","sub":"s1","seq":5}"#);
    assert_eq!(
        ServerMessage::Resync { sub: "s1", seq: 4, reason: ResyncReason::SlowConsumer }.to_json(),
        r#"{"type":"resync","sub":"s1","seq":4,"reason":"slow_consumer"}"#
    );
    assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
    assert_eq!(
        ServerMessage::Authenticated { address: "ST1", exp: 1_700_000_000 }.to_json(),
        r#"{"type":"authenticated","address":"ST1","exp":1700000000}"#
    );
    let e = ServerMessage::Error { id: Some("s1"), code: ErrorCode::InvalidFilter, message: "m" }.to_json();
    assert_eq!(e, r#"{"type":"error","id":"s1","code":"invalid_filter","message":"m"}"#);
    let frame = frame_for_sub("\"s1\"", "\"type\":\"event\",\"event\":{\"seq\":1}}");
    let v: Value = serde_json::from_str(&frame).expect("valid JSON");
    assert_eq!(v, json!({"type":"event","sub":"s1","event":{"seq":1}}));
}

/// A history entry's frame is the frame live delivery writes for the same entry.
#[test]
fn history_frames_are_the_live_frames() {
    for kind in [EntryKind::Event, EntryKind::Rollback, EntryKind::BlockApplied, EntryKind::BlockExtended, EntryKind::BlockRolledBack] {
        let e = entry(kind, Some("C"), EventType::PrintEvent, &["A"]);
        let live = entry_frame_tail(&e).map(|tail| frame_for_sub("\"s\\\"1\"", &tail));
        assert_eq!(history_frame("\"s\\\"1\"", kind, &e.body), live, "{kind:?}");
    }
}
