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
//! - [`projections`]: derived state (accounts, contracts, entities) folded from the log,
//!   kept current by the projector and rebuilt by `replay`.
//! - [`client`]: a WebSocket client of that contract that reconnects and resumes by `seq`.
//! - [`routes`]: HTTP entry points; [`routes::error`] maps failures to statuses.
//! - [`startup`]: builds store, actors and server alike for `serve` and for tests.
//! - [`config`]: settings from flags and environment; [`cli`]: the commands.
//! - [`telemetry`]: structured logs.
//! - [`synth`]: Chainhook payloads built in code (tests, benchmarks).

pub mod actors;
pub mod chainhook;
pub mod client;
pub mod cli;
pub mod config;
pub mod model;
pub mod projections;
pub mod protocol;
pub mod routes;
pub mod startup;
pub mod store;
pub mod synth;
pub mod telemetry;
