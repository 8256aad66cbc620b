//! A signed-in program that queues ops on disk and sends them when it can: the Rust
//! client's optimistic updates and offline queue in a few lines.
//!
//! ```text
//! cargo run --example offline_ops -- ws://127.0.0.1:8080/ws TOKEN ops.jsonl exchange:1 3
//! ```
//!
//! Queues COUNT ops on ENTITY (each setting `n`), prints `queued <opId>` as each is on
//! disk, then reports the server's answers (`ack <opId> <status>`) and the status changes
//! of the address's ops (`status <opId> <status>`) until it is stopped. Started again on
//! the same queue file, it first sends what the last run left unanswered.

use serde_json::{json, Map};
use timebank_realtime::client::{new_op_id, ClientEvent, OptimisticClient, OptimisticConfig};
use timebank_realtime::protocol::OpMessage;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token, queue, entity, count] = args.as_slice() else {
        return Err("usage: offline_ops URL TOKEN QUEUE_FILE ENTITY COUNT".into());
    };
    let count: u32 = count.parse()?;
    let mut client = OptimisticClient::open(url, OptimisticConfig::new(token.clone(), queue))?;
    for n in 0..count {
        let mut data = Map::new();
        data.insert("n".into(), json!(n));
        let op = OpMessage { op_id: new_op_id(), kind: "set".into(), entity: entity.clone(), data, base_version: None, tx_hash: None };
        let op_id = op.op_id.clone();
        client.submit(op)?;
        println!("queued {op_id}");
    }
    while let Some(event) = client.next().await? {
        match event {
            ClientEvent::OpAck(ack) => println!("ack {} {}", ack.op_id, json!(ack.status).as_str().unwrap_or("?")),
            ClientEvent::OpStatus { op, .. } => println!("status {} {}", op.op_id, json!(op.status).as_str().unwrap_or("?")),
            ClientEvent::OpRefused { op_id, code, .. } => println!("refused {op_id} {code}"),
            _ => {}
        }
    }
    Ok(())
}
