//! Builds the application — store, actors, HTTP server — the same way for `serve` and
//! for tests.

use crate::actors::{Shutdown, Supervisor, TopicRegistry};
use crate::config::ServerConfig;
use crate::projections::{ProjectionError, Projector};
use crate::routes::{self, AppState};
use crate::store::{Store, StoreError};
use actix::prelude::*;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

/// An HS256 key shorter than the hash output (32 bytes) is weaker than the algorithm.
const MIN_JWT_SECRET_LEN: usize = 32;

pub struct Application {
    port: u16,
    host: String,
    server: actix_web::dev::Server,
    state: AppState,
    secret_generated: bool,
    deadline: Duration,
    _projector: Addr<Projector>,
}

/// How long before the deadline connections still open are cut, so the process exits by
/// itself rather than by the watchdog.
const CUT_BEFORE_DEADLINE: Duration = Duration::from_secs(1);

/// Stops an [`Application`] gracefully (see [`Stopper::stop`]).
#[derive(Clone)]
pub struct Stopper {
    server: actix_web::dev::ServerHandle,
    shutdown: Shutdown,
    deadline: Duration,
}

impl Stopper {
    /// Stops accepting connections, refuses new webhooks and upgrades (503), lets the
    /// webhooks in flight finish, closes every WebSocket with `resync` (`shutdown`) and
    /// 1012, and resolves once the server stopped. A watchdog ends the process at the
    /// deadline whatever still runs: a transaction cut there is rolled back, and its webhook
    /// was never answered, so Chainhook resends it.
    pub async fn stop(&self) {
        tracing::info!(deadline_secs = self.deadline.as_secs(), "shutting down");
        let deadline = self.deadline;
        let _ = std::thread::Builder::new().name("shutdown-watchdog".into()).spawn(move || {
            std::thread::sleep(deadline);
            tracing::error!("shutdown deadline passed, exiting");
            std::process::exit(1);
        });
        self.shutdown.begin();
        self.server.stop(true).await;
        tracing::info!("stopped");
    }

    /// Begins the stop without the watchdog (tests that run servers in their own process).
    pub async fn stop_in_process(&self) {
        self.shutdown.begin();
        self.server.stop(true).await;
    }
}

impl Application {
    /// Opens the store (migrating it), starts the actors and binds the listener. Must run
    /// inside an actix system.
    pub async fn build(config: ServerConfig) -> Result<Application, StartError> {
        crate::telemetry::metrics::install();
        let store = Store::open(config.database.store_config()?).await?;
        let store = match config.ops_settings()? {
            Some(settings) => store.with_ops(settings),
            None => store,
        };
        store.catch_up_ops().await?;
        let head = store.head().await?;
        let supervisor = Supervisor::new(store.clone(), config.writer_config(), head.head_seq)
            .following_other_nodes(config.cluster_config())
            .start();
        let projector = Projector::new(config.projector_config(store.url().clone())?, supervisor.clone()).start();
        // The registry and the topics run on fan-out threads of their own (see
        // `TopicRegistry::with_topic_arbiters`).
        let fanout: Vec<ArbiterHandle> =
            (0..config.fanout_threads.max(1)).map(|_| Arbiter::new().handle()).collect();
        let source = supervisor.clone().recipient();
        let topic_threads = fanout.clone();
        let topics = TopicRegistry::start_in_arbiter(&fanout[0], move |_| {
            TopicRegistry::new(source).with_topic_arbiters(topic_threads)
        });
        let (webhook_secret, secret_generated) = match &config.chainhook_webhook_secret {
            Some(s) if !s.is_empty() => (s.clone(), false),
            _ => (generate_secret(), true),
        };
        let sign_in = config.sign_in();
        if !sign_in.tokens().is_enabled() {
            tracing::info!("no AUTH_JWT_SECRET: client tokens and wallet sign-in are disabled");
        } else if config.auth_jwt_secret.as_ref().is_some_and(|s| s.len() < MIN_JWT_SECRET_LEN) {
            tracing::warn!(min_len = MIN_JWT_SECRET_LEN, "AUTH_JWT_SECRET is short: anyone who guesses it can sign in as any address");
        }
        let state = AppState {
            store,
            supervisor,
            topics,
            ws: config.ws_config(),
            webhook_secret,
            webhook_body_limit: config.webhook_body_limit,
            sign_in: std::sync::Arc::new(sign_in),
            shutdown: Shutdown::default(),
        };
        let listener = TcpListener::bind(&config.bind_addr)
            .map_err(|source| StartError::Bind { addr: config.bind_addr.clone(), source })?;
        let local = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr: config.bind_addr.clone(), source })?;
        let app_state = state.clone();
        let user_timeout = config.tcp_user_timeout();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(routes::request_id::with_request_id))
                .app_data(web::Data::new(app_state.clone()))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .on_connect(move |conn, _| {
            if let (Some(timeout), Some(tcp)) = (user_timeout, conn.downcast_ref::<actix_web::rt::net::TcpStream>()) {
                set_user_timeout(tcp, timeout);
            }
        })
        .listen(listener)
        .map_err(|source| StartError::Bind { addr: config.bind_addr.clone(), source })?;
        if config.http_workers > 0 {
            server = server.workers(config.http_workers);
        }
        let deadline = config.shutdown_deadline();
        // Connections still open this long after the stop began are cut (the process exits
        // at the deadline anyway, see `Stopper`).
        server = server.shutdown_timeout(deadline.saturating_sub(CUT_BEFORE_DEADLINE).as_secs().max(1));
        let server = server.disable_signals().run();
        Ok(Application {
            port: local.port(),
            host: local.ip().to_string(),
            server,
            state,
            secret_generated,
            deadline,
            _projector: projector,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The token Chainhook must send; generated when none was configured.
    pub fn webhook_secret(&self) -> &str {
        &self.state.webhook_secret
    }

    pub fn webhook_secret_generated(&self) -> bool {
        self.secret_generated
    }

    /// A handle that stops the server (without telling WebSocket clients; see [`Self::stopper`]).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// What stops the server gracefully within its deadline.
    pub fn stopper(&self) -> Stopper {
        Stopper { server: self.server.handle(), shutdown: self.state.shutdown.clone(), deadline: self.deadline }
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// 256 random bits, hex: two v4 UUIDs come from the OS's secure generator.
fn generate_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Bounds how long the kernel keeps a connection whose peer acknowledges nothing or keeps
/// its receive window shut: a WebSocket client that stops reading freezes its session
/// actor (actix-http polls it only as the socket drains), so the socket is where it is cut.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
fn set_user_timeout(tcp: &actix_web::rt::net::TcpStream, timeout: std::time::Duration) {
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(timeout)) {
        tracing::warn!(error = %e, "cannot set TCP_USER_TIMEOUT on a connection");
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia")))]
fn set_user_timeout(_tcp: &actix_web::rt::net::TcpStream, _timeout: std::time::Duration) {}
