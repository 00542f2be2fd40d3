//! ConfigMaps and Secrets of a pod's namespace, read from the API server's store when a
//! container starts (environment, `envFrom`, volumes).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;

use super::resources::{CONFIG_MAPS, SECRETS};
use crate::kube_server::api::Cluster;
use crate::lab::env::Refs;

pub struct ClusterRefs {
    pub cluster: Arc<Cluster>,
    pub namespace: String,
}

fn strings(object: &Value, field: &str, decode: bool) -> BTreeMap<String, String> {
    object[field]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let text = v.as_str()?;
                    let text = if decode {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(text)
                            .ok()?;
                        String::from_utf8(bytes).ok()?
                    } else {
                        text.to_owned()
                    };
                    Some((k.clone(), text))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Refs for ClusterRefs {
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let store = self.cluster.store();
        let cm = store.get(CONFIG_MAPS, &self.namespace, name)?;
        Some(strings(cm, "data", false))
    }

    fn secret(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let store = self.cluster.store();
        let secret = store.get(SECRETS, &self.namespace, name)?;
        let mut data = strings(secret, "data", true);
        data.extend(strings(secret, "stringData", false));
        Some(data)
    }
}
