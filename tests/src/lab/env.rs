//! A container's environment, as the kubelet builds it: the image's variables, then
//! Service links and `HOSTNAME`, then `envFrom`, then `env` (later wins), with `$(VAR)`
//! expansion in values, `command` and `args` (`$$` is a literal `$`).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};

use super::quantity;

/// The PATH of the images the lab stands in for.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// ConfigMaps and Secrets of the pod's namespace (the API server's, in the lab).
pub trait Refs {
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>>;
    fn secret(&self, name: &str) -> Option<BTreeMap<String, String>>;
}

/// No ConfigMaps or Secrets at all.
pub struct NoRefs;

impl Refs for NoRefs {
    fn config_map(&self, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
    fn secret(&self, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
}

/// What the environment is built from besides the container spec.
pub struct EnvInput<'a> {
    pub pod: &'a Pod,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    pub image_env: &'a [(String, String)],
    /// `<SERVICE>_SERVICE_HOST`, `_PORT`… (enableServiceLinks) and KUBERNETES_*.
    pub service_env: &'a [(String, String)],
    pub refs: &'a dyn Refs,
}

/// The ordered environment (one entry per name, in first-definition order).
pub fn build(container: &Container, input: &EnvInput) -> Result<Vec<(String, String)>> {
    let mut env = Env::default();
    env.set("PATH", DEFAULT_PATH);
    for (k, v) in input.image_env {
        env.set(k, v);
    }
    let hostname = input.pod.metadata.name.clone().unwrap_or_default();
    env.set("HOSTNAME", &hostname);
    for (k, v) in input.service_env {
        env.set(k, v);
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, what, optional) = if let Some(cm) = &from.config_map_ref {
            (
                input.refs.config_map(&cm.name),
                format!("configmap {:?}", cm.name),
                cm.optional,
            )
        } else if let Some(s) = &from.secret_ref {
            (
                input.refs.secret(&s.name),
                format!("secret {:?}", s.name),
                s.optional,
            )
        } else {
            continue;
        };
        match data {
            Some(data) => data
                .iter()
                .for_each(|(k, v)| env.set(&format!("{prefix}{k}"), v)),
            None if optional == Some(true) => {}
            None => bail!("{what} not found"),
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value) = value_of(var, container, input)? {
            let expanded = expand(&value, &env.map);
            env.set(&var.name, &expanded);
        }
    }
    Ok(env.into_vec())
}

#[derive(Default)]
struct Env {
    order: Vec<String>,
    map: BTreeMap<String, String>,
}

impl Env {
    fn set(&mut self, k: &str, v: &str) {
        if self.map.insert(k.to_owned(), v.to_owned()).is_none() {
            self.order.push(k.to_owned());
        }
    }

    fn into_vec(self) -> Vec<(String, String)> {
        let Env { order, mut map } = self;
        order
            .into_iter()
            .filter_map(|k| map.remove(&k).map(|v| (k, v)))
            .collect()
    }
}

fn value_of(var: &EnvVar, container: &Container, input: &EnvInput) -> Result<Option<String>> {
    let Some(from) = &var.value_from else {
        return Ok(Some(var.value.clone().unwrap_or_default()));
    };
    if let Some(field) = &from.field_ref {
        return field_value(&field.field_path, input).map(Some);
    }
    if let Some(res) = &from.resource_field_ref {
        let resources = container.resources.as_ref();
        let (kind, name) = res.resource.split_once('.').unwrap_or(("", ""));
        let map = match kind {
            "limits" => resources.and_then(|r| r.limits.as_ref()),
            "requests" => resources.and_then(|r| r.requests.as_ref()),
            _ => None,
        };
        let q = map.and_then(|m| m.get(name)).map(|q| q.0.clone());
        return Ok(Some(match (name, q) {
            ("cpu", Some(q)) => quantity::cpu_millis(&q)?.div_ceil(1000).to_string(),
            ("memory", Some(q)) => quantity::bytes(&q)?.to_string(),
            (_, q) => q.unwrap_or_default(),
        }));
    }
    let (data, key, optional, what) = if let Some(r) = &from.config_map_key_ref {
        (
            input.refs.config_map(&r.name),
            &r.key,
            r.optional,
            format!("configmap {:?}", r.name),
        )
    } else if let Some(r) = &from.secret_key_ref {
        (
            input.refs.secret(&r.name),
            &r.key,
            r.optional,
            format!("secret {:?}", r.name),
        )
    } else {
        return Ok(None);
    };
    match data.and_then(|d| d.get(key).cloned()) {
        Some(v) => Ok(Some(v)),
        None if optional == Some(true) => Ok(None),
        None => bail!("couldn't find key {key} in {what}"),
    }
}

fn field_value(path: &str, input: &EnvInput) -> Result<String> {
    let meta = &input.pod.metadata;
    let spec = input.pod.spec.as_ref();
    let label = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "status.podIP" => input.pod_ip.to_owned(),
        "status.hostIP" => input.host_ip.to_owned(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".to_owned()),
        p => {
            let key = |prefix: &str| {
                p.strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix("['"))
                    .and_then(|r| r.strip_suffix("']"))
                    .map(str::to_owned)
            };
            if let Some(k) = key("metadata.labels") {
                label(&meta.labels, &k)
            } else if let Some(k) = key("metadata.annotations") {
                label(&meta.annotations, &k)
            } else {
                return Err(anyhow::anyhow!("unsupported fieldRef {p:?}"))
                    .context("building the container's environment");
            }
        }
    })
}

/// Kubernetes' `$(VAR)` expansion: defined names are replaced, undefined ones are left
/// as written, `$$` becomes `$`.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&rest[i..i + 3 + end]),
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes() {
        let vars: BTreeMap<String, String> = [("A".to_owned(), "1".to_owned())].into();
        assert_eq!(expand("x$(A)y", &vars), "x1y");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("cost $5", &vars), "cost $5");
        assert_eq!(expand("$(A", &vars), "$(A");
    }

    #[test]
    fn env_overrides_image_and_expands() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p-1", "namespace": "lomash-wood", "labels": {"app": "x"}},
            "spec": {"containers": []}
        }))
        .unwrap();
        let container: Container = serde_json::from_value(serde_json::json!({
            "name": "app",
            "env": [
                {"name": "LAB_ROLE", "value": "auth-service"},
                {"name": "URL", "value": "http://$(HOSTNAME):3000"},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}
            ]
        }))
        .unwrap();
        let image_env = vec![("LAB_ROLE".to_owned(), "product-service".to_owned())];
        let input = EnvInput {
            pod: &pod,
            pod_ip: "198.51.100.2",
            host_ip: "203.0.113.130",
            image_env: &image_env,
            service_env: &[],
            refs: &NoRefs,
        };
        let env: BTreeMap<_, _> = build(&container, &input).unwrap().into_iter().collect();
        assert_eq!(env["LAB_ROLE"], "auth-service");
        assert_eq!(env["URL"], "http://p-1:3000");
        assert_eq!(env["IP"], "198.51.100.2");
        assert_eq!(env["APP"], "x");
        assert_eq!(env["PATH"], DEFAULT_PATH);
    }

    #[test]
    fn a_missing_config_map_is_an_error_unless_optional() {
        let pod: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}})).unwrap();
        let input = EnvInput {
            pod: &pod,
            pod_ip: "",
            host_ip: "",
            image_env: &[],
            service_env: &[],
            refs: &NoRefs,
        };
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "envFrom": [{"configMapRef": {"name": "cfg"}}]
        }))
        .unwrap();
        assert!(build(&c, &input).unwrap_err().to_string().contains("cfg"));
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "envFrom": [{"configMapRef": {"name": "cfg", "optional": true}}]
        }))
        .unwrap();
        assert!(build(&c, &input).is_ok());
    }
}
