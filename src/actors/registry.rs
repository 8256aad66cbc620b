//! The TopicRegistry: listens to the Supervisor for committed entries, creates a
//! [`TopicActor`] per distinct filter on demand, routes each delivered entry (events and
//! rollbacks), encoded once as the frame part all subscribers share, to the topics whose
//! filter matches, and drops topics that lost their last subscriber.
//!
//! Routing looks topics up by the entry's contract, event type and addresses (plus the
//! one `all` topic) instead of testing every topic against every entry.

use super::messages::{AddSubscriber, Committed, Listen, RemoveSubscriber, Route, Routed, Subscribe, Unsubscribe};
use super::topic::TopicActor;
use crate::model::EventType;
use crate::protocol::{entry_frame_tail, Filter};
use crate::model::LogEntry;
use crate::telemetry::metrics as m;
use actix::prelude::*;
use std::collections::{HashMap, HashSet};

/// Mailbox capacity of the registry (see `started`).
const REGISTRY_MAILBOX: usize = 1 << 16;

struct Slot {
    addr: Addr<TopicActor>,
    subscribers: HashSet<u64>,
}

pub struct TopicRegistry {
    /// Where committed entries come from (the Supervisor).
    source: Recipient<Listen>,
    /// Entries routed to at least one topic, and topics created (observable state).
    routed: u64,
    topics_created: u64,
    /// The last `seq` routed to topics: the handover point of a new subscription.
    forwarded_seq: i64,
    topics: HashMap<Filter, Slot>,
    by_token: HashMap<u64, Filter>,
    by_contract: HashMap<String, HashSet<Filter>>,
    by_event_type: HashMap<EventType, HashSet<Filter>>,
    by_address: HashMap<String, HashSet<Filter>>,
    /// Threads topics run on, round robin; empty: the registry's own thread.
    topic_arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
}

impl TopicRegistry {
    pub fn new(source: Recipient<Listen>) -> Self {
        TopicRegistry {
            topic_arbiters: Vec::new(),
            next_arbiter: 0,
            source,
            routed: 0,
            topics_created: 0,
            forwarded_seq: 0,
            topics: HashMap::new(),
            by_token: HashMap::new(),
            by_contract: HashMap::new(),
            by_event_type: HashMap::new(),
            by_address: HashMap::new(),
        }
    }

    /// Spreads topics over these threads: per-subscriber framing is the fan-out's CPU
    /// cost, and it must not share a thread with the registry or the writer.
    pub fn with_topic_arbiters(mut self, arbiters: Vec<ArbiterHandle>) -> Self {
        self.topic_arbiters = arbiters;
        self
    }

    fn start_topic(&mut self, filter: Filter) -> Addr<TopicActor> {
        if self.topic_arbiters.is_empty() {
            return TopicActor::new(filter).start();
        }
        let arbiter = &self.topic_arbiters[self.next_arbiter % self.topic_arbiters.len()];
        self.next_arbiter = self.next_arbiter.wrapping_add(1);
        TopicActor::start_in_arbiter(arbiter, move |_| TopicActor::new(filter))
    }

    fn index_key(filter: &Filter) -> Option<IndexKey<'_>> {
        match filter {
            Filter::Contract { contract_id, .. } => Some(IndexKey::Contract(contract_id)),
            Filter::User { address } | Filter::Ops { address } => Some(IndexKey::Address(address)),
            Filter::EventType { event_type } => Some(IndexKey::EventType(*event_type)),
            Filter::All => None,
        }
    }

    fn index(&mut self, filter: &Filter) {
        let f = filter.clone();
        match Self::index_key(filter) {
            Some(IndexKey::Contract(c)) => self.by_contract.entry(c.to_string()).or_default().insert(f),
            Some(IndexKey::Address(a)) => self.by_address.entry(a.to_string()).or_default().insert(f),
            Some(IndexKey::EventType(t)) => self.by_event_type.entry(t).or_default().insert(f),
            None => true,
        };
    }

    fn unindex(&mut self, filter: &Filter) {
        fn remove<K: std::hash::Hash + Eq>(map: &mut HashMap<K, HashSet<Filter>>, key: &K, f: &Filter) {
            if let Some(set) = map.get_mut(key) {
                set.remove(f);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        }
        match Self::index_key(filter) {
            Some(IndexKey::Contract(c)) => remove(&mut self.by_contract, &c.to_string(), filter),
            Some(IndexKey::Address(a)) => remove(&mut self.by_address, &a.to_string(), filter),
            Some(IndexKey::EventType(t)) => remove(&mut self.by_event_type, &t, filter),
            None => {}
        }
    }

    fn record_sizes(&self) {
        metrics::gauge!(m::TOPICS).set(self.topics.len() as f64);
        metrics::gauge!(m::WS_SUBSCRIPTIONS).set(self.by_token.len() as f64);
    }

    /// The filters of live topics that match `entry`.
    fn matching<'a>(&'a self, entry: &'a LogEntry) -> impl Iterator<Item = &'a Filter> + 'a {
        let by_contract = entry.contract_id.as_ref().and_then(|c| self.by_contract.get(c)).into_iter().flatten();
        let by_type = entry.event_type.and_then(|t| self.by_event_type.get(&t)).into_iter().flatten();
        let by_address = entry.affected_addresses.iter().filter_map(|a| self.by_address.get(a)).flatten();
        let all = self.topics.get_key_value(&Filter::All).map(|(f, _)| f);
        by_contract.chain(by_type).chain(by_address).chain(all).filter(|f| f.matches(entry))
    }
}

enum IndexKey<'a> {
    Contract(&'a str),
    Address(&'a str),
    EventType(EventType),
}

impl Actor for TopicRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Sessions `send` Subscribe and `do_send` Unsubscribe; `send` only keeps FIFO
        // order with later messages while the mailbox has room, so give it plenty (each
        // queued message is small, and sessions are bounded by connections).
        ctx.set_mailbox_capacity(REGISTRY_MAILBOX);
        // Nothing is handled until the supervisor answered where live forwarding starts.
        let listen = self.source.send(Listen { recipient: ctx.address().recipient() });
        ctx.wait(listen.into_actor(self).map(|res, act, ctx| match res {
            Ok(seq) => act.forwarded_seq = seq,
            Err(e) => {
                tracing::error!(error = %e, "supervisor gone, topic registry stops");
                ctx.stop();
            }
        }));
    }
}

impl Handler<Committed> for TopicRegistry {
    type Result = ();

    fn handle(&mut self, msg: Committed, _ctx: &mut Context<Self>) {
        let mut batches: HashMap<&Filter, Vec<Routed>> = HashMap::new();
        let mut last = self.forwarded_seq;
        let mut routed = 0;
        for entry in msg.entries.iter() {
            if entry.seq <= last {
                continue;
            }
            last = entry.seq;
            // Encoded once for every topic and subscriber it reaches; `None` for the
            // kinds that are not delivered.
            let mut tail = None;
            for filter in self.matching(entry) {
                let batch = batches.entry(filter).or_default();
                if batch.last().is_some_and(|d| d.seq == entry.seq) {
                    continue; // an address listed twice
                }
                let Some(tail) = tail.get_or_insert_with(|| {
                    routed += 1;
                    entry_frame_tail(entry)
                }) else {
                    break;
                };
                batch.push(Routed { seq: entry.seq, tail: tail.clone() });
            }
        }
        for (filter, items) in batches {
            if let Some(slot) = self.topics.get(filter) {
                slot.addr.do_send(Route { items });
            }
        }
        self.forwarded_seq = last;
        self.routed += routed;
    }
}

impl Handler<Subscribe> for TopicRegistry {
    type Result = i64;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) -> i64 {
        if !self.topics.contains_key(&msg.filter) {
            let addr = self.start_topic(msg.filter.clone());
            self.topics_created += 1;
            self.index(&msg.filter);
            self.topics.insert(msg.filter.clone(), Slot { addr, subscribers: HashSet::new() });
        }
        if let Some(slot) = self.topics.get_mut(&msg.filter) {
            // Sent before any later Route to this topic, so the topic delivers every
            // entry after `forwarded_seq` to the new subscriber.
            slot.addr.do_send(AddSubscriber { token: msg.token, sink: msg.sink });
            slot.subscribers.insert(msg.token);
        }
        self.by_token.insert(msg.token, msg.filter);
        self.record_sizes();
        self.forwarded_seq
    }
}

impl Handler<Unsubscribe> for TopicRegistry {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Context<Self>) {
        let Some(filter) = self.by_token.remove(&msg.token) else { return };
        let empty = match self.topics.get_mut(&filter) {
            Some(slot) => {
                slot.subscribers.remove(&msg.token);
                slot.addr.do_send(RemoveSubscriber { token: msg.token });
                slot.subscribers.is_empty()
            }
            None => false,
        };
        if empty {
            // Dropping the last address stops the topic once its mailbox is empty.
            self.topics.remove(&filter);
            self.unindex(&filter);
        }
        self.record_sizes();
    }
}

/// What the registry holds now, for readiness checks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryStats {
    pub forwarded_seq: i64,
    pub topics: usize,
    pub subscriptions: usize,
    pub topics_created: u64,
    pub routed_entries: u64,
}

/// Ask the registry for its [`RegistryStats`].
#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub struct GetRegistryStats;

impl Handler<GetRegistryStats> for TopicRegistry {
    type Result = MessageResult<GetRegistryStats>;

    fn handle(&mut self, _msg: GetRegistryStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(RegistryStats {
            forwarded_seq: self.forwarded_seq,
            topics: self.topics.len(),
            subscriptions: self.by_token.len(),
            topics_created: self.topics_created,
            routed_entries: self.routed,
        })
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
