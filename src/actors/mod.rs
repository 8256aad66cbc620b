//! The runtime topology: which actor owns what, and the messages between them.
//!
//! ```text
//! routes ──Ingest──▶ Supervisor ──Append──▶ EventStoreWriter ──▶ store
//!                       ▲  │                      │
//!                       │  └──Committed──▶ listeners (topics, projector)
//!                       └──────Committed──────────┘
//!
//! Supervisor ──Committed──▶ TopicRegistry ──Route──▶ TopicActor (one per filter)
//!                                 ▲ Subscribe/Unsubscribe          │ Deliver (do_send, bounded)
//!                                 └──────────── WsSession ◀────────┘ (one per socket)
//! ```
//!
//! The [`Supervisor`] is the router: it owns the writer (restarting it when it stops)
//! and forwards every committed entry, in `seq` order, to whoever listens. It is fed
//! committed entries by the writer and learns of other nodes' appends to a shared
//! database from [`cluster`]; the [`sequencer`] merges both into one `seq` order.

mod catchup;
pub mod cluster;
pub mod messages;
pub mod registry;
pub mod sequencer;
pub mod session;
pub mod shutdown;
pub mod supervisor;
pub mod topic;
pub mod writer;

pub use cluster::ClusterConfig;
pub use messages::{
    Append, ClusterStats, Committed, GetStats, HeadSeen, HeadSource, Ingest, Listen, SubmitOp, SupervisorStats, WriteError,
};
pub use registry::{GetRegistryStats, RegistryStats, TopicRegistry};
pub use session::{WsConfig, WsSession};
pub use shutdown::Shutdown;
pub use supervisor::Supervisor;
pub use writer::{EventStoreWriter, WriterConfig};
