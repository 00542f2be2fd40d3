//! The object store: every object as its JSON wire form, one global resourceVersion,
//! a bounded history for resuming watches, and a broadcast of changes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio::sync::broadcast;

use super::select::Selector;

/// How many changes a watch can resume from; older versions get 410 Gone.
const HISTORY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Namespace,
    Pod,
    Deployment,
    ReplicaSet,
    /// core/v1 Event (what `kubectl get events` reads).
    Event,
    /// events.k8s.io/v1 Event.
    EventV1,
    Pdb,
}

impl Kind {
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::Event | Kind::EventV1 => "events",
            Kind::Pdb => "poddisruptionbudgets",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Event | Kind::EventV1 => "Event",
            Kind::Pdb => "PodDisruptionBudget",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Pod | Kind::Event => "v1",
            Kind::Deployment | Kind::ReplicaSet => "apps/v1",
            Kind::EventV1 => "events.k8s.io/v1",
            Kind::Pdb => "policy/v1",
        }
    }

    /// The API group, "" for core (as RBAC messages name it).
    pub fn group(self) -> &'static str {
        self.api_version().rsplit_once('/').map_or("", |(g, _)| g)
    }
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub kind: Kind,
    pub namespace: String,
    pub event_type: &'static str,
    pub object: Value,
}

pub struct Store {
    rv: u64,
    uid: u64,
    objects: BTreeMap<(Kind, String, String), Value>,
    history: VecDeque<Arc<Change>>,
    tx: broadcast::Sender<Arc<Change>>,
}

pub type Shared = Arc<Mutex<Store>>;

/// Locks the store; a poisoned lock (a panicking handler) still holds consistent data
/// because every mutation is a single map operation.
pub fn lock(shared: &Shared) -> MutexGuard<'_, Store> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `time` as RFC 3339 in UTC, with `format` precision (metav1.Time is seconds).
pub fn rfc3339(time: SystemTime, format: SecondsFormat) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp(secs, since.subsec_nanos())
        .map(|t| t.to_rfc3339_opts(format, true))
        .unwrap_or_default()
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now(), SecondsFormat::Secs)
}

fn name_of(object: &Value) -> String {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl Store {
    pub fn new() -> Shared {
        let (tx, _) = broadcast::channel(4096);
        Arc::new(Mutex::new(Store {
            rv: 1000,
            uid: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            tx,
        }))
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Changes after `rv` in `kind`, or None when `rv` is older than the history kept.
    pub fn changes_since(&self, rv: u64, kind: Kind) -> Option<Vec<Arc<Change>>> {
        if self.history.front().is_some_and(|c| c.rv > rv + 1) && rv < self.rv {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|c| c.rv > rv && c.kind == kind)
                .cloned()
                .collect(),
        )
    }

    fn record(&mut self, kind: Kind, namespace: &str, event_type: &'static str, object: Value) {
        let change = Arc::new(Change {
            rv: self.rv,
            kind,
            namespace: namespace.to_owned(),
            event_type,
            object,
        });
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(change);
    }

    fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.uid += 1;
        let mut n = self.uid.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self.rv << 7);
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize];
                n /= ALPHABET.len() as u64;
                c as char
            })
            .collect()
    }

    /// Adds an object: fills name (from generateName), uid, creationTimestamp,
    /// resourceVersion. Err(name) when it already exists.
    pub fn insert(
        &mut self,
        kind: Kind,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, String> {
        if name_of(&object).is_empty() {
            let prefix = object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or("obj-")
                .to_owned();
            let suffix = self.random_suffix();
            object["metadata"]["name"] = Value::String(format!("{prefix}{suffix}"));
        }
        let name = name_of(&object);
        let key = (kind, namespace.to_owned(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(name);
        }
        self.rv += 1;
        self.uid += 1;
        object["apiVersion"] = kind.api_version().into();
        object["kind"] = kind.kind().into();
        let meta = &mut object["metadata"];
        if kind != Kind::Namespace {
            meta["namespace"] = namespace.into();
        }
        meta["uid"] = format!("00000000-0000-4000-8000-{:012x}", self.uid).into();
        meta["resourceVersion"] = self.rv.to_string().into();
        if meta.get("creationTimestamp").is_none_or(Value::is_null) {
            meta["creationTimestamp"] = now_rfc3339().into();
        }
        self.objects.insert(key, object.clone());
        self.record(kind, namespace, "ADDED", object.clone());
        Ok(object)
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&(kind, namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Changes an object in place and bumps its resourceVersion (MODIFIED), unless `f`
    /// left it unchanged.
    pub fn update(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let key = (kind, namespace.to_owned(), name.to_owned());
        let current = self.objects.get(&key)?;
        let mut object = current.clone();
        f(&mut object);
        if &object == current {
            return Some(object);
        }
        self.rv += 1;
        object["metadata"]["resourceVersion"] = self.rv.to_string().into();
        self.objects.insert(key, object.clone());
        self.record(kind, namespace, "MODIFIED", object.clone());
        Some(object)
    }

    /// Removes an object (DELETED carries the final object with a new resourceVersion).
    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let mut object = self
            .objects
            .remove(&(kind, namespace.to_owned(), name.to_owned()))?;
        self.rv += 1;
        object["metadata"]["resourceVersion"] = self.rv.to_string().into();
        self.record(kind, namespace, "DELETED", object.clone());
        Some(object)
    }

    /// Objects of `kind` in `namespace` (all namespaces when None) matching `selector`.
    pub fn list(&self, kind: Kind, namespace: Option<&str>, selector: &Selector) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, ns, _), _)| *k == kind && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
            .filter(|v| selector.matches(v))
            .cloned()
            .collect()
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.objects
            .contains_key(&(Kind::Namespace, String::new(), namespace.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str) -> Value {
        json!({"metadata": {"name": name}})
    }

    #[test]
    fn versions_increase_and_a_watch_resumes_after_a_version() {
        let shared = Store::new();
        let mut s = lock(&shared);
        let a = s.insert(Kind::Pod, "ns", pod("a")).unwrap_or_default();
        let rv_a: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        s.update(Kind::Pod, "ns", "a", |p| {
            p["status"] = json!({"phase": "Running"})
        });
        s.remove(Kind::Pod, "ns", "a");
        let types: Vec<&str> = s
            .changes_since(rv_a, Kind::Pod)
            .unwrap_or_default()
            .iter()
            .map(|c| c.event_type)
            .collect();
        assert_eq!(types, ["MODIFIED", "DELETED"]);
        assert!(s.resource_version() == rv_a + 2);
        assert!(
            s.insert(Kind::Pod, "ns", json!({"metadata": {"generateName": "a-"}}))
                .is_ok()
        );
    }

    #[test]
    fn inserting_an_existing_name_is_a_conflict() {
        let shared = Store::new();
        let mut s = lock(&shared);
        assert!(s.insert(Kind::Pod, "ns", pod("a")).is_ok());
        assert_eq!(
            s.insert(Kind::Pod, "ns", pod("a")).err().as_deref(),
            Some("a")
        );
    }
}
