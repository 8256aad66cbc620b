//! A TopicActor: one per distinct filter. It hands each matching entry, already encoded
//! as the frame part every subscriber shares, to each subscribed session without ever waiting for one: a session over its outgoing
//! bound loses that subscription (`Overflowed`), the others go on.

use super::messages::{AddSubscriber, Deliver, Delivery, Overflowed, RemoveSubscriber, Route, SessionSink};
use crate::protocol::Filter;
use crate::telemetry::metrics as m;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

pub struct TopicActor {
    filter: Filter,
    subscribers: HashMap<u64, SessionSink>,
    /// Entries routed to this topic (observable state for logs and tests).
    routed: u64,
}

impl TopicActor {
    pub fn new(filter: Filter) -> Self {
        TopicActor { filter, subscribers: HashMap::new(), routed: 0 }
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
        self.subscribers.insert(msg.token, msg.sink);
    }
}

impl Handler<RemoveSubscriber> for TopicActor {
    type Result = ();
    fn handle(&mut self, msg: RemoveSubscriber, _ctx: &mut Context<Self>) {
        self.subscribers.remove(&msg.token);
    }
}

impl Handler<Route> for TopicActor {
    type Result = ();

    fn handle(&mut self, msg: Route, _ctx: &mut Context<Self>) {
        let items: Arc<[Delivery]> = msg.items.into();
        if items.is_empty() {
            return;
        }
        self.routed += items.len() as u64;
        let n = items.len();
        let mut delivered = 0;
        self.subscribers.retain(|&token, sink| {
            if !sink.deliver.connected() {
                return false;
            }
            if sink.try_reserve(n) {
                sink.deliver.do_send(Deliver { token, items: items.clone() });
                delivered += n as u64;
                true
            } else {
                tracing::info!(token, queued = sink.queued.load(std::sync::atomic::Ordering::Relaxed), "session over its outgoing bound, subscription ends");
                sink.overflowed.do_send(Overflowed { token });
                false
            }
        });
        metrics::counter!(m::DELIVERED_ENTRIES).increment(delivered);
    }
}
