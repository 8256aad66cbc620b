//! Server settings, from flags or the environment (PROTOCOL §0).

use crate::actors::session::{self, WsConfig};
use crate::actors::cluster::{self, ClusterConfig};
use crate::actors::WriterConfig;
use crate::auth::{self, ClientTokens, Network, SignIn, SignInSettings};
use crate::projections::projector::{self, ProjectorConfig};
use crate::projections::{EngineSettings, EntityMapping, ProjectionError};
use crate::ops::{self, Strategy};
use crate::store::{DatabaseUrl, OpsSettings, StoreConfig, StoreError};
use clap::Args;
use std::time::Duration;

/// The embedded default: an SQLite file under `./data/`, no setup needed.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/timebank.db";

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `postgres://…` or `sqlite://PATH`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Read connections in the pool.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,
    /// Milliseconds to wait for a database connection before answering 503.
    #[arg(long, env = "DB_CONNECT_TIMEOUT_MS", default_value_t = 3_000)]
    pub db_connect_timeout_ms: u64,
    /// SQLite: milliseconds a statement waits for a lock held by another process.
    #[arg(long, env = "SQLITE_BUSY_TIMEOUT_MS", default_value_t = 2_000)]
    pub sqlite_busy_timeout_ms: u64,
    /// SQLite: mebibytes of WAL after which the writer makes the WAL start over (the WAL
    /// file stays within about this plus one group commit).
    #[arg(long, env = "SQLITE_WAL_LIMIT_MB", default_value_t = 64)]
    pub sqlite_wal_limit_mb: u32,
    /// Address rows the writer stages before merging them into the address index in one
    /// sorted batch; 0 writes them straight into the index. Unset: 131072 on SQLite, 0 on
    /// PostgreSQL.
    #[arg(long, env = "ADDRESS_MERGE_ROWS")]
    pub address_merge_rows: Option<u64>,
}

impl DatabaseArgs {
    pub fn new(database_url: impl Into<String>) -> Self {
        DatabaseArgs {
            database_url: database_url.into(),
            db_pool_size: 8,
            db_connect_timeout_ms: 3_000,
            sqlite_busy_timeout_ms: 2_000,
            sqlite_wal_limit_mb: 64,
            address_merge_rows: None,
        }
    }

    pub fn store_config(&self) -> Result<StoreConfig, StoreError> {
        let mut config = StoreConfig::new(DatabaseUrl::parse(&self.database_url)?);
        config.pool_size = self.db_pool_size.max(1);
        config.connect_timeout = Duration::from_millis(self.db_connect_timeout_ms);
        config.sqlite_busy_timeout = Duration::from_millis(self.sqlite_busy_timeout_ms);
        config.sqlite_wal_limit_bytes = u64::from(self.sqlite_wal_limit_mb.max(1)) << 20;
        config.address_merge_rows = self.address_merge_rows;
        Ok(config)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// `host:port` to listen on; port 0 picks a free port.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:3000")]
    pub bind_addr: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Token Chainhook sends as `Authorization: Bearer <token>`. When unset, a random one
    /// is made and printed at start: unauthenticated deliveries are never accepted.
    #[arg(long, env = "CHAINHOOK_WEBHOOK_SECRET", hide_env_values = true)]
    pub chainhook_webhook_secret: Option<String>,
    /// HS256 key for client tokens; without it no token is valid, sign-in is disabled and
    /// operations answer `unauthorized`.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub auth_jwt_secret: Option<String>,
    /// Lifetime in seconds of the tokens sign-in issues.
    #[arg(long, env = "AUTH_TOKEN_TTL_SECS", default_value_t = auth::TOKEN_TTL_SECS)]
    pub auth_token_ttl_secs: u64,
    /// Seconds a wallet has to sign a sign-in challenge.
    #[arg(long, env = "AUTH_CHALLENGE_TTL_SECS", default_value_t = auth::CHALLENGE_TTL_SECS)]
    pub auth_challenge_ttl_secs: u64,
    /// Sign-in challenges held at once (beyond: 503 until some are used or expire).
    #[arg(long, env = "AUTH_MAX_CHALLENGES", default_value_t = auth::MAX_CHALLENGES)]
    pub auth_max_challenges: usize,
    /// Domain or app name that sign-in messages name (default: the request's `Host`).
    #[arg(long, env = "AUTH_DOMAIN")]
    pub auth_domain: Option<String>,
    /// Network of the addresses that sign in: `mainnet` (`SP…`) or `testnet` (`ST…`).
    #[arg(long, env = "STACKS_NETWORK", default_value = "testnet")]
    pub stacks_network: Network,
    /// Largest webhook body accepted, in bytes (larger: 413).
    #[arg(long, env = "WEBHOOK_BODY_LIMIT", default_value_t = 32 * 1024 * 1024)]
    pub webhook_body_limit: usize,
    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,
    /// Payloads waiting for the writer before the webhook answers 503.
    #[arg(long, env = "WRITER_MAX_PENDING", default_value_t = 4_096)]
    pub writer_max_pending: usize,
    /// Events per group commit.
    #[arg(long, env = "WRITER_MAX_BATCH_EVENTS", default_value_t = 20_000)]
    pub writer_max_batch_events: usize,
    /// JSON file mapping print events to entity changes (default: the built-in mapping,
    /// see `projections::entities`).
    #[arg(long, env = "ENTITY_MAPPING_FILE")]
    pub entity_mapping: Option<std::path::PathBuf>,
    /// Log entries a projection folds between two commits while catching up.
    #[arg(long, env = "PROJECTION_FLUSH_EVERY", default_value_t = 50_000)]
    pub projection_flush_every: i64,
    /// Committed entries queued for the projections at most; past it the projector drops
    /// the queue and reads the log from its checkpoints instead.
    #[arg(long, env = "PROJECTOR_MAX_PENDING", default_value_t = projector::MAX_PENDING_ENTRIES)]
    pub projector_max_pending: usize,
    /// Seconds between the server's WebSocket pings.
    #[arg(long, env = "WS_HEARTBEAT_SECS", default_value_t = session::HEARTBEAT_INTERVAL.as_secs())]
    pub ws_heartbeat_secs: u64,
    /// Seconds a silent WebSocket peer is kept before it is closed.
    #[arg(long, env = "WS_CLIENT_TIMEOUT_SECS", default_value_t = session::CLIENT_TIMEOUT.as_secs())]
    pub ws_client_timeout_secs: u64,
    /// Seconds the server's outgoing data may wait for a peer (unacknowledged, or held back
    /// by a receive window the peer keeps shut) before the kernel drops the connection
    /// (TCP_USER_TIMEOUT, Linux; 0 leaves the system default). A client that stops reading
    /// is disconnected after this long, whatever its sessions are doing.
    #[arg(long, env = "TCP_USER_TIMEOUT_SECS", default_value_t = TCP_USER_TIMEOUT.as_secs())]
    pub tcp_user_timeout_secs: u64,
    /// Largest incoming WebSocket frame in bytes (larger: close 1009).
    #[arg(long, env = "WS_MAX_FRAME_BYTES", default_value_t = session::MAX_FRAME_BYTES)]
    pub ws_max_frame_bytes: usize,
    /// Subscriptions per WebSocket connection.
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS", default_value_t = session::MAX_SUBSCRIPTIONS)]
    pub ws_max_subscriptions: usize,
    /// Entries a connection may have queued and unwritten before its subscriptions end
    /// with `resync` (slow consumer).
    #[arg(long, env = "WS_MAX_QUEUED_ENTRIES", default_value_t = session::MAX_QUEUED_ENTRIES)]
    pub ws_max_queued_entries: usize,
    /// Entries per history query during a WebSocket catch-up.
    #[arg(long, env = "WS_HISTORY_PAGE", default_value_t = session::HISTORY_PAGE)]
    pub ws_history_page: i64,
    /// Milliseconds a live entry may wait in its WebSocket session so that the entries of
    /// several commits leave in one write; 0 writes each batch at once.
    #[arg(long, env = "WS_FLUSH_MS", default_value_t = session::FLUSH_INTERVAL.as_millis() as u64)]
    pub ws_flush_ms: u64,
    /// Threads that frame and hand entries to WebSocket sessions (topics run on them).
    #[arg(long, env = "FANOUT_THREADS", default_value_t = 2)]
    pub fanout_threads: usize,
    /// Milliseconds between checks of the log's head for entries other nodes appended
    /// (PostgreSQL: on the LISTEN connection, making up for a lost notification; SQLite:
    /// the only way to learn of them). 0 turns the check off.
    #[arg(long, env = "CLUSTER_HEAD_CHECK_MS", default_value_t = cluster::HEAD_CHECK.as_millis() as u64)]
    pub cluster_head_check_ms: u64,
    /// Seconds a stop (SIGTERM, SIGINT) may take: webhooks in flight are answered, new ones
    /// refused with 503, WebSocket clients told to reconnect; whatever is still running
    /// then is cut and the process exits. Keep it below the orchestrator's grace period.
    #[arg(long, env = "SHUTDOWN_DEADLINE_SECS", default_value_t = SHUTDOWN_DEADLINE.as_secs())]
    pub shutdown_deadline_secs: u64,
    /// Blocks on top of an op's confirming block that make it `final` (docs/ops.md).
    #[arg(long, env = "OP_FINAL_DEPTH", default_value_t = ops::config::DEFAULT_FINAL_DEPTH)]
    pub op_final_depth: u32,
    /// Block-clock seconds an op may wait for its confirming block.
    #[arg(long, env = "OP_EXPIRY_SECS", default_value_t = ops::config::DEFAULT_EXPIRY_SECS)]
    pub op_expiry_secs: u32,
    /// Block-clock seconds an op may wait for its `txHash`.
    #[arg(long, env = "OP_TX_WAIT_SECS", default_value_t = ops::config::DEFAULT_TX_WAIT_SECS)]
    pub op_tx_wait_secs: u32,
    /// Conflict strategy per entity kind, `kind=strategy,…` (`chain-wins`,
    /// `last-writer-wins`, `merge`); `*=strategy` sets the default (`chain-wins`).
    #[arg(long, env = "OP_STRATEGIES", default_value = "")]
    pub op_strategies: String,
    /// Open (pending or confirmed) ops one address may have; the next is refused.
    #[arg(long, env = "OP_MAX_OPEN_PER_ADDRESS", default_value_t = ops::config::DEFAULT_MAX_OPEN_OPS_PER_ADDRESS)]
    pub op_max_open_per_address: u32,
    /// Largest `data` of an op, in bytes of compact JSON.
    #[arg(long, env = "OP_MAX_DATA_BYTES", default_value_t = session::MAX_OP_DATA_BYTES)]
    pub op_max_data_bytes: usize,
    /// `op` and `op-cancel` messages one connection may send per second.
    #[arg(long, env = "WS_MAX_OPS_PER_SEC", default_value_t = session::MAX_OPS_PER_SEC)]
    pub ws_max_ops_per_sec: u32,
}

/// `OP_STRATEGIES` read: the default strategy if set, and one per entity kind.
pub type Strategies = (Option<Strategy>, Vec<(String, Strategy)>);

/// Reads `OP_STRATEGIES` (`exchange=merge,profile=last-writer-wins`, `*=` for the default).
pub fn parse_strategies(text: &str) -> Result<Strategies, String> {
    let mut default = None;
    let mut kinds = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, name) = part.split_once('=').ok_or_else(|| format!("OP_STRATEGIES: {part:?} is not kind=strategy"))?;
        let strategy: Strategy = serde_json::from_value(serde_json::Value::String(name.trim().to_string()))
            .map_err(|_| format!("OP_STRATEGIES: unknown strategy {name:?} (chain-wins, last-writer-wins, merge)"))?;
        match kind.trim() {
            "" => return Err(format!("OP_STRATEGIES: {part:?} names no entity kind")),
            "*" => default = Some(strategy),
            k => kinds.push((k.to_string(), strategy)),
        }
    }
    Ok((default, kinds))
}

/// Default of `SHUTDOWN_DEADLINE_SECS`: Kubernetes' default grace period is 30 s, Docker's 10 s.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Default of `TCP_USER_TIMEOUT_SECS`: as long as a silent WebSocket peer is kept.
pub const TCP_USER_TIMEOUT: Duration = session::CLIENT_TIMEOUT;

impl ServerConfig {
    /// Defaults for everything but the database; binds to a free loopback port.
    pub fn new(database_url: impl Into<String>) -> Self {
        ServerConfig {
            bind_addr: "127.0.0.1:0".into(),
            database: DatabaseArgs::new(database_url),
            chainhook_webhook_secret: None,
            auth_jwt_secret: None,
            auth_token_ttl_secs: auth::TOKEN_TTL_SECS,
            auth_challenge_ttl_secs: auth::CHALLENGE_TTL_SECS,
            auth_max_challenges: auth::MAX_CHALLENGES,
            auth_domain: None,
            stacks_network: Network::Testnet,
            webhook_body_limit: 32 * 1024 * 1024,
            http_workers: 0,
            writer_max_pending: 4_096,
            writer_max_batch_events: 20_000,
            entity_mapping: None,
            projection_flush_every: 50_000,
            projector_max_pending: projector::MAX_PENDING_ENTRIES,
            ws_heartbeat_secs: session::HEARTBEAT_INTERVAL.as_secs(),
            ws_client_timeout_secs: session::CLIENT_TIMEOUT.as_secs(),
            tcp_user_timeout_secs: TCP_USER_TIMEOUT.as_secs(),
            ws_max_frame_bytes: session::MAX_FRAME_BYTES,
            ws_max_subscriptions: session::MAX_SUBSCRIPTIONS,
            ws_max_queued_entries: session::MAX_QUEUED_ENTRIES,
            ws_history_page: session::HISTORY_PAGE,
            ws_flush_ms: session::FLUSH_INTERVAL.as_millis() as u64,
            fanout_threads: 2,
            cluster_head_check_ms: cluster::HEAD_CHECK.as_millis() as u64,
            shutdown_deadline_secs: SHUTDOWN_DEADLINE.as_secs(),
            op_final_depth: ops::config::DEFAULT_FINAL_DEPTH,
            op_expiry_secs: ops::config::DEFAULT_EXPIRY_SECS,
            op_tx_wait_secs: ops::config::DEFAULT_TX_WAIT_SECS,
            op_strategies: String::new(),
            op_max_open_per_address: ops::config::DEFAULT_MAX_OPEN_OPS_PER_ADDRESS,
            op_max_data_bytes: session::MAX_OP_DATA_BYTES,
            ws_max_ops_per_sec: session::MAX_OPS_PER_SEC,
        }
    }

    /// The ops rules' settings; `None` when ops are off (no `AUTH_JWT_SECRET`: no client
    /// can sign in, so none can send an op).
    pub fn ops_settings(&self) -> Result<Option<OpsSettings>, ProjectionError> {
        if self.auth_jwt_secret.as_deref().is_none_or(str::is_empty) {
            return Ok(None);
        }
        let (default, kinds) = parse_strategies(&self.op_strategies).map_err(ProjectionError::Config)?;
        let mut rules = ops::Config {
            final_depth: self.op_final_depth,
            expiry_secs: self.op_expiry_secs.max(1),
            tx_wait_secs: self.op_tx_wait_secs.max(1),
            max_open_ops_per_address: self.op_max_open_per_address.max(1),
            ..ops::Config::default()
        };
        if let Some(d) = default {
            rules.default_strategy = d;
        }
        for (kind, strategy) in kinds {
            rules.kinds.insert(kind, ops::KindRule { strategy: Some(strategy), fields: None });
        }
        Ok(Some(OpsSettings { rules, mapping: EntityMapping::load(self.entity_mapping.as_deref())? }))
    }

    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_secs(self.shutdown_deadline_secs.max(1))
    }

    pub fn cluster_config(&self) -> ClusterConfig {
        ClusterConfig {
            head_check: (self.cluster_head_check_ms > 0).then(|| Duration::from_millis(self.cluster_head_check_ms)),
            ..ClusterConfig::default()
        }
    }

    pub fn writer_config(&self) -> WriterConfig {
        WriterConfig {
            max_pending_payloads: self.writer_max_pending.max(1),
            max_batch_events: self.writer_max_batch_events.max(1),
        }
    }

    /// What the server's projector folds with; reads the entity mapping file when one is
    /// configured.
    pub fn projector_config(&self, url: DatabaseUrl) -> Result<ProjectorConfig, ProjectionError> {
        let settings = EngineSettings { flush_every: self.projection_flush_every.max(1), ..EngineSettings::default() };
        Ok(ProjectorConfig {
            max_pending_entries: self.projector_max_pending.max(1),
            ..ProjectorConfig::new(url, EntityMapping::load(self.entity_mapping.as_deref())?, settings)
        })
    }

    /// Client tokens and wallet sign-in, from the `AUTH_*` settings and `STACKS_NETWORK`.
    pub fn sign_in(&self) -> SignIn {
        let tokens = ClientTokens::new(self.auth_jwt_secret.as_deref());
        SignIn::new(
            std::sync::Arc::new(tokens),
            SignInSettings {
                network: self.stacks_network,
                token_ttl_secs: self.auth_token_ttl_secs.max(1),
                challenge_ttl_secs: self.auth_challenge_ttl_secs.max(1),
                max_challenges: self.auth_max_challenges.max(1),
                domain: self.auth_domain.clone().filter(|d| !d.is_empty()),
            },
        )
    }

    /// `None`: leave the system default.
    pub fn tcp_user_timeout(&self) -> Option<Duration> {
        (self.tcp_user_timeout_secs > 0).then(|| Duration::from_secs(self.tcp_user_timeout_secs))
    }

    pub fn ws_config(&self) -> WsConfig {
        WsConfig {
            heartbeat_interval: Duration::from_secs(self.ws_heartbeat_secs.max(1)),
            client_timeout: Duration::from_secs(self.ws_client_timeout_secs.max(1)),
            max_frame_bytes: self.ws_max_frame_bytes.max(1024),
            max_subscriptions: self.ws_max_subscriptions.max(1),
            max_queued_entries: self.ws_max_queued_entries.max(1),
            history_page: self.ws_history_page.clamp(1, crate::store::read::MAX_PAGE),
            max_ops_per_sec: self.ws_max_ops_per_sec.max(1),
            max_op_data_bytes: self.op_max_data_bytes.max(2),
            flush_interval: Duration::from_millis(self.ws_flush_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_strategies_read_per_kind_and_default() {
        let (default, kinds) = parse_strategies(" exchange=merge, profile=last-writer-wins ,*=chain-wins").expect("parses");
        assert_eq!(default, Some(Strategy::ChainWins));
        assert_eq!(kinds, vec![("exchange".to_string(), Strategy::Merge), ("profile".to_string(), Strategy::LastWriterWins)]);
        assert_eq!(parse_strategies(""), Ok((None, Vec::new())));
        for bad in ["exchange", "exchange=fastest", "=merge"] {
            assert!(parse_strategies(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ops_are_on_with_a_jwt_secret_and_read_their_settings() {
        let mut c = ServerConfig::new("sqlite://x.db");
        assert!(c.ops_settings().expect("ok").is_none());
        c.auth_jwt_secret = Some("s".repeat(32));
        c.op_final_depth = 2;
        c.op_strategies = "exchange=merge".into();
        let s = c.ops_settings().expect("ok").expect("on");
        assert_eq!(s.rules.final_depth, 2);
        assert_eq!(s.rules.strategy("exchange"), Strategy::Merge);
        assert_eq!(s.rules.strategy("profile"), Strategy::ChainWins);
    }
}
