//! Signing a WebSocket session in, refreshing and ending its identity (see "Identity" in
//! the session's notes).

use super::WsSession;
use crate::auth;
use crate::protocol::{ErrorCode, ServerMessage};
use actix::prelude::*;
use actix_web_actors::ws;

impl WsSession {
    /// Verifies a client token and, when it holds, signs the connection in (or refreshes
    /// its token) and answers `authenticated`; otherwise answers `unauthorized` and keeps
    /// the identity as it was.
    pub(super) fn authenticate(&mut self, token: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let identity = match self.client_tokens.verify(token, auth::unix_now()) {
            Ok(identity) => identity,
            Err(e) => return Self::unauthorized(ctx, &e.to_string()),
        };
        if let Some(bound) = self.bound_address.as_deref().filter(|b| *b != identity.address) {
            let message = format!(
                "this connection acts for {bound}; a token for {} needs a connection of its own",
                identity.address
            );
            return Self::unauthorized(ctx, &message);
        }
        if let Some(timer) = self.identity_expiry.take() {
            ctx.cancel_future(timer);
        }
        self.identity_expiry = Some(ctx.run_later(identity.remaining(), |act, ctx| act.identity_expired(ctx)));
        Self::send(ctx, ServerMessage::Authenticated { address: &identity.address, exp: identity.exp });
        tracing::debug!(address = %identity.address, exp = identity.exp, "websocket signed in");
        self.bound_address = Some(identity.address.clone());
        self.identity = Some(identity);
    }

    /// The token reached its `exp`: the connection is anonymous again.
    fn identity_expired(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.identity_expiry = None;
        if let Some(identity) = self.identity.take() {
            let message = format!(
                "the token for {} expired at {}; send auth with a new token to act for it again",
                identity.address, identity.exp
            );
            Self::unauthorized(ctx, &message);
        }
    }

    pub(super) fn unauthorized(ctx: &mut ws::WebsocketContext<Self>, message: &str) {
        Self::send(ctx, ServerMessage::Error { id: None, code: ErrorCode::Unauthorized, message });
    }
}
