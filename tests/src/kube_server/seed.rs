//! Puts a fixture into a new cluster: the bootstrap RBAC policy, nodes, namespaces with
//! their `default` ServiceAccount, workloads with Ready pods, PDBs; then one synchronous
//! pass of the controllers so that statuses are right before the first request.

use serde_json::Value;

use super::api::Cluster;
use super::auth;
use super::controllers::deployment::{Deployments, replica_set_for};
use super::controllers::disruption::Disruption;
use super::controllers::replicaset::ReplicaSets;
use super::controllers::statefulset::{self, StatefulSets};
use super::controllers::{Reconciler, pods, template};
use super::errors::{ApiError, ApiResult};
use super::fixture::{Fixture, WorkloadFixture};
use super::meta;
use super::objects;
use super::registry::{
    CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, DEPLOYMENTS, GroupResource, NAMESPACES, NODES, PDBS,
    PODS, REPLICA_SETS, SERVICE_ACCOUNTS, STATEFUL_SETS,
};

fn create(
    cluster: &Cluster,
    gr: GroupResource,
    namespace: &str,
    object: &Value,
) -> ApiResult<Value> {
    let rt = *cluster.resource(gr)?;
    cluster.create(&rt, namespace, object)
}

/// A seeded pod: scheduled, Running and Ready at once.
fn ready_pod(cluster: &Cluster, pod: &Value, node: &str, n: usize) -> ApiResult<()> {
    let created = create(cluster, PODS, meta::namespace(pod), pod)?;
    let ip = format!("10.244.200.{}", n % 250 + 2);
    cluster.modify(PODS, meta::namespace(&created), meta::name(&created), |p| {
        p["spec"]["nodeName"] = node.into();
        meta::set_condition(p, "PodScheduled", "True", None);
        pods::mark_running(p, &ip);
        pods::mark_ready(p);
    })?;
    Ok(())
}

fn seed_deployment(
    cluster: &Cluster,
    ns: &str,
    w: &WorkloadFixture,
    node: &str,
    n: &mut usize,
) -> ApiResult<()> {
    let deployment = create(cluster, DEPLOYMENTS, ns, &objects::deployment(w))?;
    let rs = create(
        cluster,
        REPLICA_SETS,
        ns,
        &replica_set_for(&deployment, i64::from(w.replicas), 1),
    )?;
    cluster.modify(DEPLOYMENTS, ns, &w.name, |d| {
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1".into();
    })?;
    let template = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    for _ in 0..w.replicas {
        ready_pod(cluster, &template::pod(&template, &rs, None, &[]), node, *n)?;
        *n += 1;
    }
    Ok(())
}

fn seed_stateful_set(
    cluster: &Cluster,
    ns: &str,
    w: &WorkloadFixture,
    node: &str,
    n: &mut usize,
) -> ApiResult<()> {
    let set = create(cluster, STATEFUL_SETS, ns, &objects::stateful_set(w))?;
    let revision = statefulset::revision(&set);
    for ordinal in 0..i64::from(w.replicas) {
        ready_pod(
            cluster,
            &statefulset::pod_for(&set, ordinal, &revision),
            node,
            *n,
        )?;
        *n += 1;
    }
    Ok(())
}

pub fn seed(cluster: &Cluster, fixture: &Fixture) -> ApiResult<()> {
    for (kind, object) in auth::bootstrap_policy() {
        let gr = if kind == "roles" {
            CLUSTER_ROLES
        } else {
            CLUSTER_ROLE_BINDINGS
        };
        create(cluster, gr, "", &object)?;
    }
    for node in &fixture.nodes {
        create(cluster, NODES, "", &objects::node(node))?;
    }
    let workloads = fixture
        .namespaces
        .iter()
        .any(|n| !n.deployments.is_empty() || !n.statefulsets.is_empty());
    let node = match fixture.nodes.first() {
        Some(node) => node.as_str(),
        None if workloads => {
            return Err(ApiError::bad_request(
                "the fixture has workloads but no node to run their pods",
            ));
        }
        None => "",
    };
    let mut n = 0;
    for ns in &fixture.namespaces {
        create(cluster, NAMESPACES, "", &objects::namespace(&ns.name))?;
        let sa = serde_json::json!({"metadata": {"name": "default"}});
        create(cluster, SERVICE_ACCOUNTS, &ns.name, &sa)?;
        for w in &ns.deployments {
            seed_deployment(cluster, &ns.name, w, node, &mut n)?;
        }
        for w in &ns.statefulsets {
            seed_stateful_set(cluster, &ns.name, w, node, &mut n)?;
        }
        for w in ns.deployments.iter().chain(&ns.statefulsets) {
            if let Some(spec) = &w.pdb {
                create(cluster, PDBS, &ns.name, &objects::pdb(w, spec))?;
            }
        }
    }
    settle(cluster);
    Ok(())
}

/// One synchronous pass of the status-writing controllers.
fn settle(cluster: &Cluster) {
    fn pass(cluster: &Cluster, r: &dyn Reconciler) {
        for key in r.resync(cluster) {
            let _: Option<_> = r.reconcile(cluster, &key);
        }
    }
    pass(cluster, &ReplicaSets);
    pass(cluster, &Deployments);
    pass(cluster, &StatefulSets);
    pass(cluster, &Disruption);
}
