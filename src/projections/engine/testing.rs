//! Folding without a database, for the given/when/then tests of the projections.
//!
//! `given()` starts a [`Log`] in memory: event entries whose bodies are event objects as
//! the store writes them, rollback entries naming the event they undo, block markers;
//! `seq`s count from 1 in the order they are added. [`when_folded`] folds it through the
//! engine's own loop ([`fold_entries`]) into projections whose rows are kept in a map, as
//! a flush writes them: a state that became empty is deleted. [`Folded::fold_to`] folds
//! in batches and [`Folded::restart`] forgets the cached states (the next batch loads them
//! from the rows), as a projector restarting from its checkpoint does.

use super::fold::fold_entries;
use super::reader::{parse, Parsed};
use super::{Target, Track};
use crate::model::{EventObject, EventType, RollbackObject};
use crate::projections::input::EventView;
use crate::projections::state::Folder;
use crate::projections::{builtin, EntityMapping, ProjectionError};
use crate::model::EntryKind;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

pub(crate) const ALICE: &str = "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH";
pub(crate) const BOB: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM";
pub(crate) const CAROL: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
pub(crate) const CONTRACT: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG.timebank";
pub(crate) const HOUR: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG.timebank::hour";
pub(crate) const BADGE: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG.timebank::badge";

/// An event as a test states it; [`Log::event`] stores it as an event object.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    event_type: EventType,
    contract_id: Option<String>,
    data: Value,
    affected_addresses: Vec<String>,
    block_height: i64,
    success: bool,
}

impl Event {
    fn new(event_type: EventType, contract_id: Option<&str>, data: Value, addresses: &[&str]) -> Event {
        Event {
            event_type,
            contract_id: contract_id.map(str::to_string),
            data,
            affected_addresses: addresses.iter().map(|a| a.to_string()).collect(),
            block_height: 1,
            success: true,
        }
    }

    /// In the block at `height` (1 unless said).
    pub(crate) fn at(mut self, height: i64) -> Event {
        self.block_height = height;
        self
    }

    /// Of a transaction that failed.
    pub(crate) fn failed(mut self) -> Event {
        self.success = false;
        self
    }

    /// Of a transaction calling `contract` (STX events carry the called contract's id).
    pub(crate) fn in_contract(mut self, contract: &str) -> Event {
        self.contract_id = Some(contract.to_string());
        self
    }
}

/// The contract part of `ADDR.contract::asset`.
fn contract_of(asset: &str) -> Option<&str> {
    asset.split_once("::").map(|(c, _)| c)
}

pub(crate) fn stx_transfer(from: &str, to: &str, amount: &str) -> Event {
    let data = json!({"sender": from, "recipient": to, "amount": amount});
    Event::new(EventType::StxTransferEvent, None, data, &[from, to])
}

pub(crate) fn stx_mint(to: &str, amount: &str) -> Event {
    Event::new(EventType::StxMintEvent, None, json!({"recipient": to, "amount": amount}), &[to])
}

pub(crate) fn stx_burn(from: &str, amount: &str) -> Event {
    Event::new(EventType::StxBurnEvent, None, json!({"sender": from, "amount": amount}), &[from])
}

pub(crate) fn stx_lock(who: &str, amount: &str) -> Event {
    let data = json!({"locked_address": who, "locked_amount": amount, "unlock_height": "100"});
    Event::new(EventType::StxLockEvent, None, data, &[who])
}

pub(crate) fn ft_transfer(asset: &str, from: &str, to: &str, amount: &str) -> Event {
    let data = json!({"asset_identifier": asset, "sender": from, "recipient": to, "amount": amount});
    Event::new(EventType::FtTransferEvent, contract_of(asset), data, &[from, to])
}

pub(crate) fn ft_mint(asset: &str, to: &str, amount: &str) -> Event {
    let data = json!({"asset_identifier": asset, "recipient": to, "amount": amount});
    Event::new(EventType::FtMintEvent, contract_of(asset), data, &[to])
}

pub(crate) fn nft_mint(class: &str, id: Value, to: &str) -> Event {
    let data = json!({"asset_class_identifier": class, "asset_identifier": id, "recipient": to});
    Event::new(EventType::NftMintEvent, contract_of(class), data, &[to])
}

pub(crate) fn nft_transfer(class: &str, id: Value, from: &str, to: &str) -> Event {
    let data = json!({"asset_class_identifier": class, "asset_identifier": id, "sender": from, "recipient": to});
    Event::new(EventType::NftTransferEvent, contract_of(class), data, &[from, to])
}

pub(crate) fn nft_burn(class: &str, id: Value, from: &str) -> Event {
    let data = json!({"asset_class_identifier": class, "asset_identifier": id, "sender": from});
    Event::new(EventType::NftBurnEvent, contract_of(class), data, &[from])
}

/// A print event of `contract` whose decoded value is `value`.
pub(crate) fn print(contract: &str, value: Value) -> Event {
    let data = json!({"contract_identifier": contract, "topic": "print", "value": value});
    Event::new(EventType::PrintEvent, Some(contract), data, &[])
}

/// A log entry as stored.
#[derive(Debug, Clone)]
struct Entry {
    seq: i64,
    kind: EntryKind,
    rollback_of: Option<i64>,
    body: String,
}

/// The log, in memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Log {
    entries: Vec<Entry>,
}

/// An empty log.
pub(crate) fn given() -> Log {
    Log::default()
}

impl Log {
    pub(crate) fn head(&self) -> i64 {
        self.entries.len() as i64
    }

    fn push(&mut self, kind: EntryKind, rollback_of: Option<i64>, body: String) {
        let seq = self.head() + 1;
        self.entries.push(Entry { seq, kind, rollback_of, body });
    }

    /// The log with `event` appended (its `seq` is the new head).
    pub(crate) fn event(mut self, event: Event) -> Log {
        let seq = self.head() + 1;
        let object = EventObject {
            seq,
            tx_hash: format!("0x{seq:064x}"),
            tx_index: 0,
            event_index: 0,
            block_height: event.block_height,
            block_hash: format!("0x{:064x}", event.block_height),
            contract_id: event.contract_id,
            event_type: event.event_type,
            data: event.data,
            affected_addresses: event.affected_addresses,
            success: event.success,
            timestamp: 1_700_000_000,
            rolled_back: false,
        };
        let body = serde_json::to_string(&object).expect("event object encodes");
        self.push(EntryKind::Event, None, body);
        self
    }

    pub(crate) fn events(self, events: impl IntoIterator<Item = Event>) -> Log {
        events.into_iter().fold(self, Log::event)
    }

    /// The log with the rollback entry of event `of` appended (an `of` that is no event
    /// of the log makes a rollback entry the engine must refuse).
    pub(crate) fn rollback_of(mut self, of: i64) -> Log {
        let seq = self.head() + 1;
        let original = self.entries.iter().find(|e| e.seq == of && e.kind == EntryKind::Event);
        let body = match original {
            Some(e) => {
                let event: EventObject = serde_json::from_str(&e.body).expect("event object");
                let object = RollbackObject {
                    seq,
                    rollback_of: of,
                    tx_hash: event.tx_hash,
                    block_height: event.block_height,
                    block_hash: event.block_hash,
                    event_type: event.event_type,
                    contract_id: event.contract_id,
                    affected_addresses: event.affected_addresses,
                };
                serde_json::to_string(&object).expect("rollback object encodes")
            }
            None => json!({"seq": seq, "rollbackOf": of}).to_string(),
        };
        self.push(EntryKind::Rollback, Some(of), body);
        self
    }

    /// The log with a block marker (applied or rolled back) appended.
    pub(crate) fn marker(mut self, kind: EntryKind) -> Log {
        let body = json!({"seq": self.head() + 1, "blockHash": "0x01", "blockHeight": 1}).to_string();
        self.push(kind, None, body);
        self
    }

    /// The log as if event `seq` never happened: its entry becomes a block marker, which
    /// changes no state, so every other entry keeps its `seq`.
    pub(crate) fn without_event(&self, seq: i64) -> Log {
        let mut out = self.clone();
        let entry = out.entries.iter_mut().find(|e| e.seq == seq && e.kind == EntryKind::Event).expect("an event");
        entry.kind = EntryKind::BlockApplied;
        entry.body = json!({"seq": seq, "blockHash": "0x01", "blockHeight": 1}).to_string();
        out
    }

    fn parsed(&self, after: i64, upto: i64) -> Result<Vec<Parsed>, ProjectionError> {
        self.entries
            .iter()
            .filter(|e| e.seq > after && e.seq <= upto)
            .map(|e| Parsed::new(e.seq, e.kind as i16, e.rollback_of, &e.body))
            .collect()
    }

    /// The events the rollback entries of `entries` undo, read from the log by `seq`.
    fn originals(&self, entries: &[Parsed]) -> Result<HashMap<i64, EventView>, ProjectionError> {
        let mut out = HashMap::new();
        for of in entries.iter().filter_map(|e| e.rollback_of) {
            if let Some(original) = self.entries.iter().find(|e| e.seq == of && e.kind == EntryKind::Event) {
                out.insert(of, parse(of, &original.body)?);
            }
        }
        Ok(out)
    }
}

/// Every built-in projection, with the default entity mapping.
pub(crate) fn all_projections() -> Vec<Box<dyn Folder>> {
    builtin(EntityMapping::default())
}

/// The built-in projection called `name`.
pub(crate) fn projection(name: &str) -> Vec<Box<dyn Folder>> {
    all_projections().into_iter().filter(|f| f.name() == name).collect()
}

/// Projections folded from a log in memory, with the rows a flush would have written.
pub(crate) struct Folded {
    folders: Vec<Box<dyn Folder>>,
    tracks: Vec<Track>,
    /// (projection, key) → state JSON.
    rows: BTreeMap<(String, String), String>,
}

/// `folders` folded over the whole `log` in one batch.
pub(crate) fn when_folded(folders: Vec<Box<dyn Folder>>, log: &Log) -> Folded {
    let mut folded = Folded::new(folders);
    folded.fold_to(log, log.head()).expect("the log folds");
    folded
}

impl Folded {
    /// Projections at checkpoint 0, with no rows.
    pub(crate) fn new(mut folders: Vec<Box<dyn Folder>>) -> Folded {
        for f in &mut folders {
            f.reset(true);
        }
        let tracks = folders
            .iter()
            .map(|_| Track { generation: 1, flushed: 0, cursor: 0, target: Target::Active, enabled: true })
            .collect();
        Folded { folders, tracks, rows: BTreeMap::new() }
    }

    /// Folds the log's entries after the oldest checkpoint up to `upto` as one batch,
    /// then writes the changed states as rows.
    pub(crate) fn fold_to(&mut self, log: &Log, upto: i64) -> Result<(), ProjectionError> {
        let after = self.tracks.iter().map(|t| t.cursor).min().unwrap_or(0);
        self.fold_entries_of(log, after, upto)
    }

    /// Folds the log's entries `after+1..=upto` as one batch, whatever the checkpoints.
    pub(crate) fn fold_entries_of(&mut self, log: &Log, after: i64, upto: i64) -> Result<(), ProjectionError> {
        let entries = log.parsed(after, upto)?;
        let originals = log.originals(&entries)?;
        let Folded { folders, tracks, rows } = self;
        let mut load = |name: &'static str, _generation: i64, key: &str| {
            Ok(rows.get(&(name.to_string(), key.to_string())).cloned())
        };
        fold_entries(&entries, &originals, folders, tracks, &mut load)?;
        self.flush()
    }

    fn flush(&mut self) -> Result<(), ProjectionError> {
        for (folder, track) in self.folders.iter_mut().zip(self.tracks.iter_mut()) {
            for (key, value) in folder.take_dirty()? {
                let at = (folder.name().to_string(), key);
                match value {
                    Some(json) => self.rows.insert(at, json),
                    None => self.rows.remove(&at),
                };
            }
            track.flushed = track.cursor;
        }
        Ok(())
    }

    /// Forgets every cached state, as a restart does: later folds load states from rows.
    pub(crate) fn restart(&mut self) {
        for f in &mut self.folders {
            f.reset(false);
        }
    }

    /// Each projection's checkpoint (the last `seq` folded), in folding order.
    pub(crate) fn checkpoints(&self) -> Vec<i64> {
        self.tracks.iter().map(|t| t.flushed).collect()
    }

    /// Every row, (projection, key) → state JSON.
    pub(crate) fn rows(&self) -> &BTreeMap<(String, String), String> {
        &self.rows
    }

    /// The rows of one projection, key → state JSON.
    pub(crate) fn rows_of(&self, projection: &str) -> BTreeMap<String, String> {
        self.rows.iter().filter(|((p, _), _)| p == projection).map(|((_, k), v)| (k.clone(), v.clone())).collect()
    }

    /// The stored state of `key` in `projection`, if it has a row.
    pub(crate) fn state<S: DeserializeOwned>(&self, projection: &str, key: &str) -> Option<S> {
        let json = self.rows.get(&(projection.to_string(), key.to_string()))?;
        Some(serde_json::from_str(json).expect("stored state parses"))
    }
}
