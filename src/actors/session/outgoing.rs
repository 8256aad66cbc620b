//! What topics hand a session, and how it reaches the WebSocket.
//!
//! Live entries are not written the moment they arrive: the session holds them for at most
//! `WsConfig::flush_interval` and then writes everything held in one go, so that the
//! entries of several commits leave in one socket write instead of one write each (the
//! write, mostly kernel work, is most of the cost of a delivery). Held entries still count
//! against the outgoing bound (`queued` falls only when they are written), so a client that
//! stops reading is cut off with `resync` exactly as before; an interval of zero writes at
//! once.

use super::{Phase, Sub, WsSession};
use crate::actors::messages::{Deliver, Delivery, Overflowed};
use crate::protocol::ResyncReason;
use actix::prelude::*;
use actix_web_actors::ws;
use std::sync::atomic::Ordering;

impl Sub {
    /// Writes live entries, skipping any at or below `last_seq`.
    pub(super) fn write_live(&mut self, items: &[Delivery], ctx: &mut ws::WebsocketContext<WsSession>) {
        for d in items {
            if d.seq <= self.last_seq {
                continue;
            }
            ctx.text(d.frame.clone());
            self.last_seq = d.seq;
        }
    }
}

impl WsSession {
    /// Writes every live batch held since the last flush, in the order they came.
    fn flush(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.flush_timer = None;
        let held = std::mem::take(&mut self.held);
        for msg in &held {
            // A subscription that ended meanwhile (resync, unsubscribe) skips its entries.
            if let Some(sub) = self.tokens.get(&msg.token).and_then(|id| self.subs.get_mut(id)) {
                sub.write_live(&msg.items, ctx);
            }
            self.queued.fetch_sub(msg.items.len(), Ordering::AcqRel);
        }
        self.held = held;
        self.held.clear();
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        let Some(sub) = self.tokens.get(&msg.token).and_then(|id| self.subs.get_mut(id)) else {
            self.queued.fetch_sub(msg.items.len(), Ordering::AcqRel);
            return;
        };
        let over_bound = match sub.phase {
            Phase::Live if self.config.flush_interval.is_zero() => {
                sub.write_live(&msg.items, ctx);
                self.queued.fetch_sub(msg.items.len(), Ordering::AcqRel);
                false
            }
            Phase::Live => {
                self.held.push(msg);
                if self.flush_timer.is_none() {
                    self.flush_timer = Some(ctx.run_later(self.config.flush_interval, |act, ctx| act.flush(ctx)));
                }
                return;
            }
            Phase::Starting | Phase::History => {
                self.queued.fetch_sub(msg.items.len(), Ordering::AcqRel);
                sub.buffer.extend(msg.items.iter().cloned());
                sub.buffer.len() + self.queued.load(Ordering::Acquire) > self.config.max_queued_entries
            }
        };
        if over_bound {
            if let Some(id) = self.tokens.get(&msg.token).cloned() {
                self.end(&id, ResyncReason::SlowConsumer, ctx);
            }
        }
    }
}

/// The server's stop began: end every subscription and close for a restart.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct CloseForRestart;

impl Handler<CloseForRestart> for WsSession {
    type Result = ();

    fn handle(&mut self, _msg: CloseForRestart, ctx: &mut Self::Context) {
        self.close_for_restart(ctx);
    }
}

impl Handler<Overflowed> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Overflowed, ctx: &mut Self::Context) {
        if let Some(id) = self.tokens.get(&msg.token).cloned() {
            self.end(&id, ResyncReason::SlowConsumer, ctx);
        }
    }
}
