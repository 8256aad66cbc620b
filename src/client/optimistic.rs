//! Optimistic updates for a signed-in Rust program (PROTOCOL §4): ops that survive the
//! program's restart, a local optimistic view of entities, and callbacks when the chain
//! decides.
//!
//! [`OptimisticClient`] wraps a [`Client`] with an [`OfflineQueue`] on disk and an `ops`
//! subscription. [`OptimisticClient::execute_with_optimistic`] has the call shape of the
//! TypeScript engine's `executeWithOptimistic(kind, optimisticValue, action, onConfirm,
//! onRevert)`: the value shows in [`OptimisticClient::view`] at once, `action` yields the
//! transaction hash (it signs and broadcasts), the op is queued on disk and sent, and the
//! callbacks run when the op's status changes come: `on_confirm` at its first `confirmed`
//! (or `final`), `on_revert` at `reverted` — also after a reorg took a confirmation back.
//!
//! Everything happens as the caller reads [`OptimisticClient::next`]: the queue is marked
//! answered, callbacks run and the view changes there, in the order the server sent them.
//!
//! Queued ops are sent again, in order, on every (re)connection and after a restart of the
//! program; the server applies each `opId` once, so each reaches the log exactly once.

use super::{Client, ClientConfig, ClientEvent, ConnectError, OfflineQueue, QueueError, QueueLimits, Queued};
use crate::ops::Status;
use crate::protocol::{Filter, OpMessage, OpObject, Since};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;

/// The id of the `ops` subscription an [`OptimisticClient`] makes.
pub const OPS_SUBSCRIPTION: &str = "ops";

impl Queued for OpMessage {
    fn op_id(&self) -> &str {
        &self.op_id
    }
}

/// Settings of an [`OptimisticClient`].
#[derive(Debug, Clone)]
pub struct OptimisticConfig {
    pub client: ClientConfig,
    /// The offline queue's journal (see [`OfflineQueue`]).
    pub queue_path: PathBuf,
    pub queue_limits: QueueLimits,
    /// Where the `ops` subscription starts. The default, `seq` 0, replays the address's
    /// whole op history once per start, so a program that was down learns every outcome
    /// it missed; a program that keeps [`OptimisticClient::ops_seq`] can pass it instead.
    pub ops_since: Option<Since>,
}

impl OptimisticConfig {
    /// Defaults around a signed-in client token and a queue file.
    pub fn new(token: impl Into<String>, queue_path: impl Into<PathBuf>) -> OptimisticConfig {
        OptimisticConfig {
            client: ClientConfig { token: Some(token.into()), ..ClientConfig::default() },
            queue_path: queue_path.into(),
            queue_limits: QueueLimits::default(),
            ops_since: Some(Since::Seq(0)),
        }
    }
}

/// The change an op predicts: the fields it sets on an entity (PROTOCOL §4 `entity`,
/// `data`, `baseVersion`).
#[derive(Debug, Clone, PartialEq)]
pub struct Optimistic {
    /// `kind:id` of the entity.
    pub entity: String,
    pub data: Map<String, Value>,
    /// The entity version the program saw; `None`: the current one.
    pub base_version: Option<i64>,
}

type Callback = Box<dyn FnMut(&OpObject) + Send>;

struct Tracked {
    entity: String,
    data: Map<String, Value>,
    /// Local order of the op: later ops win the fields they share in the view.
    order: u64,
    on_confirm: Option<Callback>,
    on_revert: Option<Callback>,
}

#[derive(Debug, thiserror::Error)]
pub enum OptimisticError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The action that was to yield the transaction failed: nothing was sent.
    #[error("the action failed: {0}")]
    Action(String),
}

pub struct OptimisticClient {
    client: Client,
    queue: OfflineQueue<OpMessage>,
    tracked: HashMap<String, Tracked>,
    next_order: u64,
    ops_seq: Option<i64>,
}

impl OptimisticClient {
    /// Opens the queue (sending what it still holds, in order, once connected), connects
    /// and subscribes to the address's op status changes.
    pub fn open(url: &str, config: OptimisticConfig) -> Result<OptimisticClient, OptimisticError> {
        let queue = OfflineQueue::open(&config.queue_path, config.queue_limits)?;
        let client = Client::connect(url, config.client)?;
        client.subscribe(OPS_SUBSCRIPTION, Filter::Ops { address: String::new() }, config.ops_since.clone());
        let ops_seq = match config.ops_since {
            Some(Since::Seq(seq)) => Some(seq),
            _ => None,
        };
        let mut this = OptimisticClient { client, queue, tracked: HashMap::new(), next_order: 0, ops_seq };
        let waiting: Vec<OpMessage> = this.queue.ops().cloned().collect();
        for op in waiting {
            this.track(&op, None, None);
            this.client.send_op(op);
        }
        Ok(this)
    }

    /// Queues `op` on disk and sends it (now, or once connected). It shows in
    /// [`OptimisticClient::view`] until it is settled.
    pub fn submit(&mut self, op: OpMessage) -> Result<(), OptimisticError> {
        self.queue.push(op.clone())?;
        self.track(&op, None, None);
        self.client.send_op(op);
        Ok(())
    }

    /// `executeWithOptimistic`: shows `optimistic` at once, runs `action` for the
    /// transaction hash (`None`: the op waits for one; attach it with a resend of the same
    /// `opId`), queues and sends the op, and calls `on_confirm` / `on_revert` as the chain
    /// decides. Returns the op's id. When `action` fails the value is taken back and
    /// nothing is sent.
    pub async fn execute_with_optimistic<A, F, C, R>(
        &mut self,
        kind: &str,
        optimistic: Optimistic,
        action: A,
        on_confirm: C,
        on_revert: R,
    ) -> Result<String, OptimisticError>
    where
        A: FnOnce() -> F,
        F: std::future::Future<Output = Result<Option<String>, String>>,
        C: FnMut(&OpObject) + Send + 'static,
        R: FnMut(&OpObject) + Send + 'static,
    {
        let op_id = new_op_id();
        let mut op = OpMessage {
            op_id: op_id.clone(),
            kind: kind.to_string(),
            entity: optimistic.entity,
            data: optimistic.data,
            base_version: optimistic.base_version,
            tx_hash: None,
        };
        self.track(&op, None, None);
        match action().await {
            Ok(tx_hash) => op.tx_hash = tx_hash,
            Err(e) => {
                self.tracked.remove(&op_id);
                return Err(OptimisticError::Action(e));
            }
        }
        if let Err(e) = self.queue.push(op.clone()) {
            self.tracked.remove(&op_id);
            return Err(e.into());
        }
        self.track(&op, Some(Box::new(on_confirm)), Some(Box::new(on_revert)));
        self.client.send_op(op);
        Ok(op_id)
    }

    /// Withdraws an op without a `txHash` (the server answers `op-ack` `reverted`
    /// `cancelled`, or `invalid_op` once it has one).
    pub fn cancel(&self, op_id: &str) {
        self.client.cancel_op(op_id);
    }

    /// A fresh client token for this connection and the next ones.
    pub fn authenticate(&self, token: impl Into<String>) {
        self.client.authenticate(token);
    }

    /// The entity as this program shows it: `chain` (its confirmed fields, e.g. from
    /// `GET /api/entities/{kind}/{id}`) with the fields of this program's unsettled ops on
    /// it laid over, later ops over earlier ones.
    pub fn view(&self, entity: &str, chain: &Map<String, Value>) -> Map<String, Value> {
        let mut ops: Vec<&Tracked> = self.tracked.values().filter(|t| t.entity == entity).collect();
        ops.sort_by_key(|t| t.order);
        let mut fields = chain.clone();
        for t in ops {
            fields.extend(t.data.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        fields
    }

    /// Ops queued on disk and not answered by the server yet.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The last `seq` of the `ops` subscription seen: a program that keeps it can pass it
    /// as [`OptimisticConfig::ops_since`] next time.
    pub fn ops_seq(&self) -> Option<i64> {
        self.ops_seq
    }

    /// Drops the connection as a network failure would (tests, drills).
    pub fn drop_connection(&self) {
        self.client.drop_connection();
    }

    /// The next event of the underlying client, after acting on it: an `op-ack` or a final
    /// refusal takes the op off the disk queue, an op status runs the op's callbacks and
    /// updates the view. `None` once the client gave up.
    pub async fn next(&mut self) -> Result<Option<ClientEvent>, OptimisticError> {
        let Some(event) = self.client.next().await else {
            return Ok(None);
        };
        match &event {
            ClientEvent::OpAck(ack) => {
                // Its status changes, even one decided before the answer, come on the ops
                // subscription.
                self.queue.done(&ack.op_id)?;
            }
            ClientEvent::OpRefused { op_id, .. } => {
                self.queue.done(op_id)?;
                self.tracked.remove(op_id);
            }
            ClientEvent::OpStatus { seq, op, .. } => {
                self.ops_seq = Some(self.ops_seq.map_or(*seq, |s| s.max(*seq)));
                self.settle(op);
            }
            _ => {}
        }
        Ok(Some(event))
    }

    fn settle(&mut self, op: &OpObject) {
        let Some(t) = self.tracked.get_mut(&op.op_id) else { return };
        match op.status {
            Status::Pending => {}
            Status::Confirmed => {
                if let Some(mut f) = t.on_confirm.take() {
                    f(op);
                }
            }
            Status::Final => {
                if let Some(mut f) = t.on_confirm.take() {
                    f(op);
                }
                self.tracked.remove(&op.op_id);
            }
            Status::Reverted => {
                if let Some(mut f) = t.on_revert.take() {
                    f(op);
                }
                self.tracked.remove(&op.op_id);
            }
        }
    }

    fn track(&mut self, op: &OpMessage, on_confirm: Option<Callback>, on_revert: Option<Callback>) {
        let order = match self.tracked.get(&op.op_id) {
            Some(t) => t.order,
            None => {
                self.next_order += 1;
                self.next_order
            }
        };
        self.tracked.insert(
            op.op_id.clone(),
            Tracked { entity: op.entity.clone(), data: op.data.clone(), order, on_confirm, on_revert },
        );
    }
}

/// A fresh `opId`: 128 random bits as a UUID-shaped string (the server accepts
/// `[A-Za-z0-9_-]`, up to 64 characters).
pub fn new_op_id() -> String {
    let mut rng = fastrand::Rng::new();
    let (a, b) = (rng.u64(..), rng.u64(..));
    let hex = format!("{a:016x}{b:016x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}
