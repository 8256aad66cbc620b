//! A subscription's history: the pages between its `since` and the handover `seq`, read
//! one ahead of the one being written, then the switch to live.

use super::*;

impl WsSession {
    /// The registry answered with the handover `seq`: reply `subscribed`, then history.
    pub(super) fn start_history(&mut self, token: u64, upto: i64, head_height: Option<i64>, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(id) = self.tokens.get(&token).cloned() else { return };
        let Some(sub) = self.subs.get_mut(&id) else { return };
        Self::send(ctx, ServerMessage::Subscribed { id: &id, head_seq: upto, head_block_height: head_height });
        sub.phase = Phase::History;
        match sub.since.clone() {
            None => self.finish_history(&id, upto, ctx),
            Some(Since::Seq(after)) => self.next_page(token, Cursor::Seq { after }, upto, ctx),
            Some(Since::BlockHeight { height, block_hash: None }) => {
                self.next_page(token, Cursor::CanonicalAbove { height, after: 0 }, upto, ctx)
            }
            Some(Since::BlockHeight { height, block_hash: Some(hash) }) => {
                let store = self.store.clone();
                let filter = sub.filter.clone();
                let work = async move { fork_rollbacks(&store, &filter, &hash, height, upto).await };
                ctx.spawn(work.into_actor(self).map(move |res, act, ctx| {
                    let Some(id) = act.tokens.get(&token).cloned() else { return };
                    match res {
                        Ok((rollbacks, fork_height)) => {
                            act.send_history(&id, &rollbacks, ctx);
                            act.next_page(token, Cursor::CanonicalAbove { height: fork_height, after: 0 }, upto, ctx);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "history read failed");
                            act.end(&id, ResyncReason::StoreUnavailable, ctx);
                        }
                    }
                }));
            }
        }
    }

    /// Reads the history page at `cursor` and writes it. Before writing a page, the read of
    /// the next one starts, so that the store works on it while this one goes out: a
    /// subscription holds at most two pages, the one being written and the one being read.
    pub(super) fn next_page(&mut self, token: u64, cursor: Cursor, upto: i64, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(sub) = self.tokens.get(&token).and_then(|id| self.subs.get(id)) else { return };
        let store = self.store.clone();
        let filter = entry_filter(&sub.filter);
        let limit = self.config.history_page;
        let work = async move { read_page(&store, &filter, cursor, upto, limit).await };
        ctx.spawn(work.into_actor(self).map(move |res: Result<Page, StoreError>, act, ctx| {
            let Some(id) = act.tokens.get(&token).cloned() else { return };
            match res {
                Ok(page) => {
                    if !page.done {
                        act.next_page(token, cursor.after(page.cursor), upto, ctx);
                    }
                    act.send_history(&id, &page.entries, ctx);
                    if page.done {
                        act.finish_history(&id, upto, ctx);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "history read failed");
                    act.end(&id, ResyncReason::StoreUnavailable, ctx);
                }
            }
        }));
    }

    /// History is complete up to `upto`: `caught-up`, then the buffered live entries.
    pub(super) fn finish_history(&mut self, id: &str, upto: i64, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(sub) = self.subs.get_mut(id) else { return };
        sub.last_seq = sub.last_seq.max(upto);
        sub.phase = Phase::Live;
        Self::send(ctx, ServerMessage::CaughtUp { sub: id, seq: upto });
        let buffered = std::mem::take(&mut sub.buffer);
        self.deliver_live(id, &buffered, ctx);
    }

    /// Writes history entries of subscription `id`, skipping any at or below its `last_seq`.
    pub(super) fn send_history(&mut self, id: &str, entries: &[PageEntry], ctx: &mut ws::WebsocketContext<Self>) {
        let Some(sub) = self.subs.get_mut(id) else { return };
        for e in entries {
            if e.seq <= sub.last_seq {
                continue;
            }
            if let Some(frame) = history_frame(&sub.id_json, e.kind, &e.body) {
                ctx.text(frame);
                sub.last_seq = e.seq;
            }
        }
    }
}
