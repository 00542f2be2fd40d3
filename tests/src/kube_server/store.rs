//! The object store, as etcd plus the watch cache look to a client: every object as its
//! JSON wire form, one global resourceVersion, and per resource a bounded history of
//! changes. A watch or a list at an older version is served from that history; a version
//! older than what the history keeps is "too old" (410 Gone), as after an etcd compaction.
//!
//! The store knows versions, not semantics: defaults, validation, graceful deletion and
//! generations live in `api/`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::meta;
use super::registry::GroupResource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as a watch sends it; `prev` lets a list be served at an older version.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub gr: GroupResource,
    pub event_type: EventType,
    /// The object after the change (for DELETED: its last state, at the new version).
    pub object: Value,
    pub prev: Option<Value>,
}

impl Change {
    pub fn namespace(&self) -> &str {
        meta::namespace(&self.object)
    }
}

#[derive(Debug, Default)]
struct History {
    changes: VecDeque<Arc<Change>>,
    /// Changes up to this version are no longer kept.
    compacted: u64,
}

type Key = (String, String);

pub struct Store {
    rv: u64,
    serial: u64,
    objects: HashMap<GroupResource, BTreeMap<Key, Value>>,
    history: HashMap<GroupResource, History>,
    /// Changes kept per resource.
    limit: usize,
    tx: broadcast::Sender<Arc<Change>>,
    rv_tx: watch::Sender<u64>,
}

/// The version a client asked for is older than the history kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    pub oldest: u64,
}

/// The first resourceVersion the store hands out is above this.
const FIRST_RV: u64 = 1000;

impl Store {
    pub fn new(history_limit: usize) -> Store {
        let (tx, _) = broadcast::channel(8192);
        let (rv_tx, _) = watch::channel(FIRST_RV);
        Store {
            rv: FIRST_RV,
            serial: 0,
            objects: HashMap::new(),
            history: HashMap::new(),
            limit: history_limit.max(1),
            tx,
            rv_tx,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Follows the current resourceVersion (for reads that wait for a newer one).
    pub fn versions(&self) -> watch::Receiver<u64> {
        self.rv_tx.subscribe()
    }

    /// A fresh UID, unique within this server.
    pub fn next_uid(&mut self) -> String {
        self.serial += 1;
        let n = self.serial;
        format!(
            "{:08x}-{:04x}-4000-8000-{n:012x}",
            0x6b74_7300_u64 + n,
            n & 0xffff
        )
    }

    /// Five characters from the API server's generateName alphabet.
    pub fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.serial += 1;
        let mut n = self.serial.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self.rv << 7);
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize];
                n /= ALPHABET.len() as u64;
                c as char
            })
            .collect()
    }

    fn key(object: &Value) -> Key {
        (
            meta::namespace(object).to_owned(),
            meta::name(object).to_owned(),
        )
    }

    fn record(
        &mut self,
        gr: GroupResource,
        event_type: EventType,
        object: Value,
        prev: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            gr,
            event_type,
            object,
            prev,
        });
        let history = self.history.entry(gr).or_default();
        history.changes.push_back(change.clone());
        while history.changes.len() > self.limit {
            if let Some(dropped) = history.changes.pop_front() {
                history.compacted = dropped.rv;
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(change);
        self.rv_tx.send_replace(self.rv);
    }

    fn bump(&mut self, object: &mut Value) {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = self.rv.to_string().into();
    }

    /// Stores a new object (its metadata already complete except the version).
    pub fn insert(&mut self, gr: GroupResource, mut object: Value) -> Result<Value, Value> {
        let key = Store::key(&object);
        if let Some(existing) = self.objects.get(&gr).and_then(|m| m.get(&key)) {
            return Err(existing.clone());
        }
        self.bump(&mut object);
        self.objects
            .entry(gr)
            .or_default()
            .insert(key, object.clone());
        self.record(gr, EventType::Added, object.clone(), None);
        Ok(object)
    }

    pub fn get(&self, gr: GroupResource, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&gr)?
            .get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Replaces an object with `object` (same namespace and name); no change when equal.
    pub fn replace(&mut self, gr: GroupResource, mut object: Value) -> Option<Value> {
        let key = Store::key(&object);
        let current = self.objects.get(&gr)?.get(&key)?.clone();
        object["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        if object == current {
            return Some(current);
        }
        self.bump(&mut object);
        self.objects
            .entry(gr)
            .or_default()
            .insert(key, object.clone());
        self.record(gr, EventType::Modified, object.clone(), Some(current));
        Some(object)
    }

    /// Removes an object; DELETED carries its last state at a new version.
    pub fn remove(&mut self, gr: GroupResource, namespace: &str, name: &str) -> Option<Value> {
        let key = (namespace.to_owned(), name.to_owned());
        let prev = self.objects.get_mut(&gr)?.remove(&key)?;
        let mut object = prev.clone();
        self.bump(&mut object);
        self.record(gr, EventType::Deleted, object.clone(), Some(prev));
        Some(object)
    }

    /// Current objects of `gr` in `namespace` (all when None), in key order.
    pub fn list(&self, gr: GroupResource, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .get(&gr)
            .map(|m| {
                m.iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn oldest(&self, gr: GroupResource) -> u64 {
        self.history.get(&gr).map_or(0, |h| h.compacted)
    }

    /// Changes of `gr` after `rv`, or TooOld when some of them are no longer kept.
    pub fn changes_since(&self, gr: GroupResource, rv: u64) -> Result<Vec<Arc<Change>>, TooOld> {
        let oldest = self.oldest(gr);
        if rv < oldest {
            return Err(TooOld { oldest });
        }
        Ok(self
            .history
            .get(&gr)
            .map(|h| h.changes.iter().filter(|c| c.rv > rv).cloned().collect())
            .unwrap_or_default())
    }

    /// The objects of `gr` as they were at `rv` (undoing the newer changes).
    pub fn list_at(
        &self,
        gr: GroupResource,
        namespace: Option<&str>,
        rv: u64,
    ) -> Result<Vec<Value>, TooOld> {
        let newer = self.changes_since(gr, rv)?;
        let mut state: BTreeMap<Key, Value> = self.objects.get(&gr).cloned().unwrap_or_default();
        for change in newer.iter().rev() {
            let key = Store::key(&change.object);
            match &change.prev {
                Some(prev) => {
                    state.insert(key, prev.clone());
                }
                None => {
                    state.remove(&key);
                }
            }
        }
        Ok(state
            .into_iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
            .collect())
    }

    /// Forgets every change up to now, as an etcd compaction does: watches and lists at
    /// an older version get 410 Gone.
    pub fn compact(&mut self) {
        let rv = self.rv;
        for history in self.history.values_mut() {
            history.changes.clear();
            history.compacted = rv;
        }
        for gr in self.objects.keys() {
            self.history.entry(*gr).or_default().compacted = rv;
        }
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.get(super::registry::NAMESPACES, "", namespace)
            .is_some()
    }
}

/// The store shared by handlers and controllers.
pub type Shared = Arc<Mutex<Store>>;

/// Locks the store; a poisoned lock (a panicking handler) still holds consistent data
/// because every mutation is one map operation plus its history record.
pub fn lock(shared: &Mutex<Store>) -> MutexGuard<'_, Store> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
