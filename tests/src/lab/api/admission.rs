//! The lab's admission plugins (after the server's own defaults and validation):
//! - pods are bound to the lab's node when created (the lab has one node; nothing to
//!   schedule), so the server's simulated scheduler and kubelet never see them;
//! - Services get their defaults and a ClusterIP from the lab's range (kept on update,
//!   as the real allocator does: `spec.clusterIP` is immutable);
//! - Secrets: `stringData` is folded into `data` (base64), as the API server does.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};

use super::NODE_NAME;
use super::resources::{SECRETS, SERVICES};
use crate::kube_server::api::{Admission, Attributes, Operation};
use crate::kube_server::errors::{ApiError, ApiResult};
use crate::kube_server::meta;
use crate::kube_server::registry::PODS;
use crate::lab::node::Node;

pub struct BindToNode;

impl Admission for BindToNode {
    fn name(&self) -> &'static str {
        "LabNodeBinding"
    }

    fn admit(&self, attrs: &Attributes<'_>, object: &mut Value) -> ApiResult<()> {
        if attrs.resource.gr != PODS
            || attrs.operation != Operation::Create
            || attrs.subresource.is_some()
        {
            return Ok(());
        }
        let unbound = object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if unbound {
            object["spec"]["nodeName"] = NODE_NAME.into();
        }
        Ok(())
    }
}

pub struct ServiceIps {
    pub node: Arc<Node>,
}

impl Admission for ServiceIps {
    fn name(&self) -> &'static str {
        "LabServiceIPs"
    }

    fn admit(&self, attrs: &Attributes<'_>, object: &mut Value) -> ApiResult<()> {
        if attrs.resource.gr != SERVICES {
            return Ok(());
        }
        let spec = &mut object["spec"];
        if spec.get("type").is_none_or(Value::is_null) {
            spec["type"] = "ClusterIP".into();
        }
        if spec["type"] != "ClusterIP" {
            return Err(ApiError::bad_request(format!(
                "the lab serves ClusterIP Services only, not {}",
                spec["type"]
            )));
        }
        if spec.get("sessionAffinity").is_none_or(Value::is_null) {
            spec["sessionAffinity"] = "None".into();
        }
        for port in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if port.get("protocol").is_none_or(Value::is_null) {
                port["protocol"] = "TCP".into();
            }
            if port.get("targetPort").is_none_or(Value::is_null) {
                port["targetPort"] = port["port"].clone();
            }
        }
        let old_ip = attrs
            .old
            .and_then(|o| o.pointer("/spec/clusterIP"))
            .cloned();
        let ip = match (attrs.operation, old_ip) {
            (Operation::Update, Some(ip)) => ip,
            _ if spec["clusterIP"] == "None" => json!("None"),
            _ => {
                let ip = self
                    .node
                    .service_ip(attrs.namespace, meta::name(object))
                    .map_err(|e| ApiError::new(500, "InternalError", format!("{e:#}")))?;
                json!(ip.to_string())
            }
        };
        let spec = &mut object["spec"];
        spec["clusterIP"] = ip.clone();
        spec["clusterIPs"] = json!([ip]);
        spec["ipFamilies"] = json!(["IPv4"]);
        spec["ipFamilyPolicy"] = "SingleStack".into();
        spec["internalTrafficPolicy"] = "Cluster".into();
        if object.get("status").is_none_or(Value::is_null) {
            object["status"] = json!({"loadBalancer": {}});
        }
        Ok(())
    }
}

pub struct SecretData;

impl Admission for SecretData {
    fn name(&self) -> &'static str {
        "LabSecretData"
    }

    fn admit(&self, attrs: &Attributes<'_>, object: &mut Value) -> ApiResult<()> {
        if attrs.resource.gr != SECRETS {
            return Ok(());
        }
        let Some(string_data) = object.get("stringData").and_then(Value::as_object).cloned() else {
            return Ok(());
        };
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default();
            object["data"][k] = base64::engine::general_purpose::STANDARD
                .encode(text)
                .into();
        }
        if let Some(o) = object.as_object_mut() {
            o.remove("stringData");
        }
        if object.get("type").is_none_or(Value::is_null) {
            object["type"] = "Opaque".into();
        }
        Ok(())
    }
}
