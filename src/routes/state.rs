//! What every request handler can reach. Built by `startup`, read by the handlers of this
//! module.

use crate::actors::{Shutdown, Supervisor, TopicRegistry, WsConfig};
use crate::auth::SignIn;
use crate::store::Store;
use actix::Addr;
use std::sync::Arc;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub supervisor: Addr<Supervisor>,
    /// Routes committed entries to WebSocket topics.
    pub topics: Addr<TopicRegistry>,
    pub ws: WsConfig,
    pub webhook_secret: String,
    pub webhook_body_limit: usize,
    /// Client tokens (verified at the WebSocket upgrade and by `auth`) and wallet sign-in.
    pub sign_in: Arc<SignIn>,
    /// Begun when the server stops: webhooks and upgrades are refused from then on.
    pub shutdown: Shutdown,
}
