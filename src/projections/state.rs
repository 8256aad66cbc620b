//! The working set of one projection: typed per-key states cached in memory, loaded from
//! the projection's rows on first use and written back (dirty keys only) with the
//! checkpoint.

use super::input::Input;
use super::ProjectionError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

/// The fold's hash maps use foldhash: several times faster than SipHash on the short keys
/// of the hot loop, and seeded per process, so crafted keys cannot force collisions.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Loads a key's stored state (JSON) from the generation being folded.
pub type Loader<'a> = dyn FnMut(&str) -> Result<Option<String>, ProjectionError> + 'a;

/// A projection: a deterministic fold of the log, keyed.
///
/// `apply` must be a pure function of the input and the states it reads: live folding,
/// replay from zero and replay from a snapshot all call it with the same entries in the
/// same order, which is what makes them reach the same state.
pub trait Projection: Send + 'static {
    type State: Serialize + DeserializeOwned + Default + Send;

    /// Stable name: the key of its `projections` row and of its rows.
    fn name(&self) -> &'static str;

    /// Version of the code (and of any data it folds with, such as the entity mapping).
    /// A stored generation built by another version is rebuilt, beside it, on start.
    fn version(&self) -> i64;

    /// Folds one event applied or undone.
    fn apply(
        &self,
        input: &Input<'_>,
        states: &mut States<'_, '_, Self::State>,
    ) -> Result<(), ProjectionError>;

    /// A state that is the same as no state at all; its row is deleted rather than written,
    /// so undoing every event of a key leaves exactly what never applying them leaves.
    fn is_empty(_state: &Self::State) -> bool {
        false
    }
}

/// Cached states plus what is needed to load missing ones.
pub struct States<'s, 'l, S> {
    cache: &'s mut Cache<S>,
    load: &'s mut Loader<'l>,
}

impl<S: DeserializeOwned + Default> States<'_, '_, S> {
    /// The state of `key`, loaded (or defaulted) on first use, marked dirty.
    pub fn get_mut(&mut self, key: &str) -> Result<&mut S, ProjectionError> {
        if !self.cache.map.contains_key(key) {
            let state = if self.cache.complete {
                S::default()
            } else {
                match (self.load)(key)? {
                    Some(json) => serde_json::from_str(&json)
                        .map_err(|e| ProjectionError::Corrupt(format!("state of {key:?}: {e}")))?,
                    None => S::default(),
                }
            };
            self.cache.map.insert(key.to_string(), (state, false));
        }
        let (state, dirty) = self
            .cache
            .map
            .get_mut(key)
            .ok_or_else(|| ProjectionError::Corrupt("state vanished from the cache".into()))?;
        if !*dirty {
            *dirty = true;
            self.cache.dirty.push(key.to_string());
        }
        Ok(state)
    }
}

/// In-memory states of one projection for one generation.
pub struct Cache<S> {
    /// key → (state, changed since the last flush)
    map: FastMap<String, (S, bool)>,
    /// The keys whose flag is set, each once.
    dirty: Vec<String>,
    /// Every stored key of the generation is in `map` (a generation built by this cache
    /// from empty): a miss means "no state yet", not "load it".
    complete: bool,
}

impl<S> Cache<S> {
    pub fn new(complete: bool) -> Self {
        Cache {
            map: FastMap::default(),
            dirty: Vec::new(),
            complete,
        }
    }
}

/// What the engine needs of a projection, with its state type erased.
pub trait Folder: Send {
    fn name(&self) -> &'static str;
    fn version(&self) -> i64;
    fn apply(&mut self, input: &Input<'_>, load: &mut Loader<'_>) -> Result<(), ProjectionError>;
    /// Dirty keys as (key, Some(json)) to write or (key, None) to delete; clears dirtiness.
    fn take_dirty(&mut self) -> Result<Vec<(String, Option<String>)>, ProjectionError>;
    /// Forgets every cached state; `complete` as for a generation that starts empty.
    fn reset(&mut self, complete: bool);
    /// Seeds the cache with every row of a generation (it becomes complete).
    fn seed(&mut self, rows: Vec<(String, String)>) -> Result<(), ProjectionError>;
    fn cached(&self) -> usize;
    /// Drops clean states (after a flush) once the cache grows past `max`; the cache then
    /// loads on miss again.
    fn trim(&mut self, max: usize);
}

/// A [`Projection`] and its cache.
pub struct Fold<P: Projection> {
    projection: P,
    cache: Cache<P::State>,
}

impl<P: Projection> Fold<P> {
    pub fn new(projection: P) -> Self {
        Fold {
            projection,
            cache: Cache::new(false),
        }
    }
}

impl<P: Projection> Folder for Fold<P> {
    fn name(&self) -> &'static str {
        self.projection.name()
    }

    fn version(&self) -> i64 {
        self.projection.version()
    }

    fn apply(&mut self, input: &Input<'_>, load: &mut Loader<'_>) -> Result<(), ProjectionError> {
        let mut states = States {
            cache: &mut self.cache,
            load,
        };
        self.projection.apply(input, &mut states)
    }

    fn take_dirty(&mut self) -> Result<Vec<(String, Option<String>)>, ProjectionError> {
        let mut out = Vec::with_capacity(self.cache.dirty.len());
        for key in std::mem::take(&mut self.cache.dirty) {
            let Some((state, dirty)) = self.cache.map.get_mut(&key) else {
                continue;
            };
            *dirty = false;
            let value = if P::is_empty(state) {
                None
            } else {
                Some(
                    serde_json::to_string(state)
                        .map_err(|e| ProjectionError::Corrupt(e.to_string()))?,
                )
            };
            out.push((key, value));
        }
        // Deterministic write order: fewer lock-order surprises, reproducible statements.
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn reset(&mut self, complete: bool) {
        self.cache = Cache::new(complete);
    }

    fn seed(&mut self, rows: Vec<(String, String)>) -> Result<(), ProjectionError> {
        let mut cache = Cache::new(true);
        for (key, json) in rows {
            let state = serde_json::from_str(&json)
                .map_err(|e| ProjectionError::Corrupt(format!("state of {key:?}: {e}")))?;
            cache.map.insert(key, (state, false));
        }
        self.cache = cache;
        Ok(())
    }

    fn cached(&self) -> usize {
        self.cache.map.len()
    }

    fn trim(&mut self, max: usize) {
        if self.cache.map.len() > max && self.cache.dirty.is_empty() {
            self.cache = Cache::new(false);
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
