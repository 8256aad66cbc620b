//! The server's graceful stop, as the parts that must react to it see it: once it begins,
//! the webhook refuses new deliveries (503, Chainhook resends them to another node or
//! later), readiness fails (load balancers stop routing here), and each WebSocket session
//! ends its subscriptions with `resync` (`shutdown`) and closes with 1012 so its client
//! reconnects elsewhere.

use std::sync::Arc;
use tokio::sync::watch;

/// Shared by everything that reacts to the stop; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    draining: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { draining: Arc::new(watch::Sender::new(false)) }
    }
}

impl Shutdown {
    /// Starts the stop (idempotent).
    pub fn begin(&self) {
        self.draining.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Resolves once the stop began.
    pub fn begun(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.draining.subscribe();
        async move {
            // An error means the sender is gone with the server: nothing to stop then.
            if rx.wait_for(|draining| *draining).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
