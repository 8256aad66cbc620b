//! # timebank-realtime
//!
//! Keeps dApp clients of the Time Banking Protocol in sync with the Stacks chain: a
//! Chainhook node POSTs blocks, the server appends them to one append-only log and fans
//! them out to WebSocket subscribers.
//!
//! # Layout
//!
//! - [`model`]: the event model (pure data) shared by every other module.
//! - [`chainhook`]: Chainhook payload parsing and Clarity value decoding (pure, no I/O).
//! - [`store`]: the append-only log on PostgreSQL or SQLite, and its read queries.
//! - [`actors`]: the runtime topology — supervisor (router), event-store writer, topic
//!   registry, one topic per filter, one session per WebSocket.
//! - [`protocol`]: the WebSocket wire contract (client/server messages, filters).
//! - [`ops`]: optimistic operations' lifecycle and conflict rules (docs/ops.md), pure, built without `server` too.
//! - [`projections`]: derived state (accounts, contracts, entities) folded from the log,
//!   kept current by the projector and rebuilt by `replay`.
//! - [`client`]: a WebSocket client of that contract that reconnects and resumes by `seq`.
//! - [`auth`]: who a client is — client tokens (JWT) and sign-in with a Stacks wallet
//!   (pure: no actix, no diesel).
//! - [`routes`]: HTTP entry points; [`routes::error`] maps failures to statuses.
//! - [`startup`]: builds store, actors and server alike for `serve` and for tests.
//! - [`config`]: settings from flags and environment; [`cli`]: the commands.
//! - [`telemetry`]: structured logs.
//! - [`synth`]: Chainhook payloads built in code (tests, benchmarks).
//!
//! Dependencies point one way: `model` and `chainhook` are pure; `auth` knows only
//! `chainhook` (addresses); `store` knows the model; `actors` use the store and `auth`; `routes` and `projections` sit above the actors; `startup` and
//! `cli` assemble everything. `tests/architecture.rs` keeps it so.
//!
//! # Features
//!
//! `server` (default) builds everything. Without it (`default-features = false`) only
//! [`client`], [`protocol`], [`model`], [`ops`], [`chainhook`] and [`synth`] are built, and neither
//! diesel nor actix is compiled: a Rust program that only subscribes depends on this.

pub mod chainhook;
pub mod client;
pub mod model;
pub mod ops;
pub mod protocol;
pub mod synth;

#[cfg(feature = "server")]
pub mod actors;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod projections;
#[cfg(feature = "server")]
pub mod routes;
#[cfg(feature = "server")]
pub mod startup;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod telemetry;
