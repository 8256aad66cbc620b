//! The registry and its topics without I/O: a fake source of committed entries, fake
//! sessions that record what they are handed.

use super::*;
use crate::actors::messages::{Deliver, Overflowed, SessionSink};
use crate::model::EntryKind;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

/// Answers `Listen` with a fixed head, as the Supervisor does.
struct Source(i64);
impl Actor for Source {
    type Context = Context<Self>;
}
impl Handler<Listen> for Source {
    type Result = i64;
    fn handle(&mut self, _msg: Listen, _ctx: &mut Context<Self>) -> i64 {
        self.0
    }
}

/// Records the `seq`s delivered per token, and wakes whoever waits for them.
#[derive(Clone, Default)]
struct Recorder(Arc<Recorded>);

#[derive(Default)]
struct Recorded {
    got: Mutex<Vec<(u64, i64)>>,
    changed: tokio::sync::Notify,
}

impl Recorder {
    /// The (token, seq) pairs delivered, sorted, once there are `n` of them.
    async fn wait_for(&self, n: usize) -> Vec<(u64, i64)> {
        let wait = async {
            loop {
                // Created before the check, so a delivery between the two still wakes it.
                let changed = self.0.changed.notified();
                let got = self.0.got.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if got.len() >= n {
                    return got;
                }
                changed.await;
            }
        };
        let mut got = actix_web::rt::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("{n} deliveries did not arrive"));
        got.sort_unstable();
        got
    }
}

impl Actor for Recorder {
    type Context = Context<Self>;
}
impl Handler<Deliver> for Recorder {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _ctx: &mut Context<Self>) {
        let mut got = self.0.got.lock().unwrap_or_else(|e| e.into_inner());
        got.extend(msg.items.iter().map(|d| (msg.token, d.seq)));
        self.0.changed.notify_waiters();
    }
}
impl Handler<Overflowed> for Recorder {
    type Result = ();
    fn handle(&mut self, _msg: Overflowed, _ctx: &mut Context<Self>) {}
}

fn entry(seq: i64, kind: EntryKind, contract: Option<&str>, t: EventType, addresses: &[&str]) -> LogEntry {
    LogEntry {
        seq,
        kind,
        block_height: 1,
        block_hash: "0x01".into(),
        event_type: Some(t),
        contract_id: contract.map(str::to_string),
        affected_addresses: addresses.iter().map(|a| a.to_string()).collect(),
        rollback_of: None,
        body: std::sync::Arc::from(format!("{{\"seq\":{seq}}}")),
    }
}

#[actix_web::test]
async fn routes_each_entry_to_the_matching_topics_and_drops_empty_topics() {
    let source = Source(10).start();
    let registry = TopicRegistry::new(source.recipient()).start();
    let recorder = Recorder::default();
    let addr = recorder.clone().start();
    let sink = SessionSink {
        sub_json: Arc::from("\"s\""),
        deliver: addr.clone().recipient(),
        overflowed: addr.recipient(),
        queued: Arc::new(AtomicUsize::new(0)),
        max_queued: 1_000_000,
    };
    let filters = [
        (1, Filter::Contract { contract_id: "C".into(), event_type: None }),
        (2, Filter::Contract { contract_id: "C".into(), event_type: Some(EventType::PrintEvent) }),
        (3, Filter::User { address: "A".into() }),
        (4, Filter::EventType { event_type: EventType::StxTransferEvent }),
        (5, Filter::All),
        (6, Filter::All), // a second subscriber of the same topic
    ];
    for (token, filter) in filters {
        let handover = registry.send(Subscribe { token, filter, sink: sink.clone() }).await.expect("registry answers");
        assert_eq!(handover, 10);
    }
    let stats = registry.send(GetRegistryStats).await.expect("stats");
    assert_eq!((stats.topics, stats.subscriptions), (5, 6));

    let entries: Arc<[LogEntry]> = Arc::from(vec![
        entry(10, EntryKind::Event, Some("C"), EventType::PrintEvent, &["A"]), // already forwarded
        entry(11, EntryKind::Event, Some("C"), EventType::PrintEvent, &["A", "A"]),
        entry(12, EntryKind::Event, None, EventType::StxTransferEvent, &["B"]),
        entry(13, EntryKind::BlockApplied, Some("C"), EventType::PrintEvent, &["A"]),
        entry(14, EntryKind::Rollback, Some("C"), EventType::StxTransferEvent, &["A"]),
    ]);
    registry.do_send(Committed { entries });
    let stats = registry.send(GetRegistryStats).await.expect("stats");
    assert_eq!(stats.forwarded_seq, 14);
    assert_eq!(stats.routed_entries, 3);
    let want = vec![(1, 11), (1, 14), (2, 11), (3, 11), (3, 14), (4, 12), (4, 14), (5, 11), (5, 12), (5, 14), (6, 11), (6, 12), (6, 14)];
    assert_eq!(recorder.wait_for(want.len()).await, want);

    for token in [1, 2, 3, 4, 5] {
        registry.do_send(Unsubscribe { token });
    }
    registry.do_send(Unsubscribe { token: 5 }); // idempotent
    let stats = registry.send(GetRegistryStats).await.expect("stats");
    assert_eq!((stats.topics, stats.subscriptions), (1, 1), "only the `all` topic, still held by token 6");
    registry.do_send(Unsubscribe { token: 6 });
    let stats = registry.send(GetRegistryStats).await.expect("stats");
    assert_eq!((stats.topics, stats.subscriptions, stats.topics_created), (0, 0, 5));
}
