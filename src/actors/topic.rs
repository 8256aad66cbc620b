//! A TopicActor: one per distinct filter. It turns each batch of matching entries into
//! whole frames once per subscription id (clients mostly reuse the same few ids, so most
//! subscribers share one set of frames) and hands them to each subscribed session without
//! ever waiting for one: a session over its outgoing bound loses that subscription
//! (`Overflowed`), the others go on.

use super::messages::{AddSubscriber, Deliver, Delivery, Overflowed, RemoveSubscriber, Route, SessionSink};
use crate::protocol::{frame_for_sub, Filter};
use crate::telemetry::metrics as m;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

pub struct TopicActor {
    filter: Filter,
    /// Subscribers grouped by their subscription id (as JSON): one group, one set of frames.
    groups: HashMap<Arc<str>, HashMap<u64, SessionSink>>,
    /// The group of each subscription token.
    group_of: HashMap<u64, Arc<str>>,
    /// Entries routed to this topic (observable state for logs and tests).
    routed: u64,
}

impl TopicActor {
    pub fn new(filter: Filter) -> Self {
        TopicActor { filter, groups: HashMap::new(), group_of: HashMap::new(), routed: 0 }
    }

    fn remove(&mut self, token: u64) {
        let Some(id) = self.group_of.remove(&token) else { return };
        if let Some(group) = self.groups.get_mut(&id) {
            group.remove(&token);
            if group.is_empty() {
                self.groups.remove(&id);
            }
        }
    }
}

impl Actor for TopicActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        tracing::debug!(filter = ?self.filter, routed = self.routed, "topic stopped");
    }
}

impl Handler<AddSubscriber> for TopicActor {
    type Result = ();
    fn handle(&mut self, msg: AddSubscriber, _ctx: &mut Context<Self>) {
        self.remove(msg.token);
        let id = msg.sink.sub_json.clone();
        self.groups.entry(id.clone()).or_default().insert(msg.token, msg.sink);
        self.group_of.insert(msg.token, id);
    }
}

impl Handler<RemoveSubscriber> for TopicActor {
    type Result = ();
    fn handle(&mut self, msg: RemoveSubscriber, _ctx: &mut Context<Self>) {
        self.remove(msg.token);
    }
}

impl Handler<Route> for TopicActor {
    type Result = ();

    fn handle(&mut self, msg: Route, _ctx: &mut Context<Self>) {
        if msg.items.is_empty() {
            return;
        }
        let n = msg.items.len();
        self.routed += n as u64;
        let mut delivered = 0;
        let mut gone = Vec::new();
        for (id, group) in self.groups.iter_mut() {
            // Built when the first subscriber of the group takes them.
            let mut frames: Option<Arc<[Delivery]>> = None;
            group.retain(|&token, sink| {
                if !sink.deliver.connected() {
                    gone.push(token);
                    return false;
                }
                if sink.try_reserve(n) {
                    let items = frames.get_or_insert_with(|| {
                        msg.items.iter().map(|r| Delivery { seq: r.seq, frame: frame_for_sub(id, &r.tail).into() }).collect()
                    });
                    sink.deliver.do_send(Deliver { token, items: items.clone() });
                    delivered += n as u64;
                    true
                } else {
                    tracing::info!(token, queued = sink.queued.load(std::sync::atomic::Ordering::Relaxed), "session over its outgoing bound, subscription ends");
                    sink.overflowed.do_send(Overflowed { token });
                    gone.push(token);
                    false
                }
            });
        }
        for token in gone {
            self.remove(token);
        }
        metrics::counter!(m::DELIVERED_ENTRIES).increment(delivered);
    }
}
