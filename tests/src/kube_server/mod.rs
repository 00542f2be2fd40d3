//! A Kubernetes API server stand-in that behaves like a real one where clients notice:
//! HTTPS with its own CA, bearer tokens and client certificates, RBAC from real Role and
//! binding objects, watches with bookmarks, timeouts and 410 Gone, paged and versioned
//! lists, graceful deletion and finalizers, controllers that react after a delay
//! (ReplicaSet, Deployment, StatefulSet, disruption, garbage collection, a simulated
//! scheduler and kubelet), validated Events, and an API Priority and Fairness switch.
//! kubectl 1.32 and kube-rs are its judges; docs/kube-test-server.md lists what it does
//! and what it does differently from a real cluster.
//!
//! Start it in-process with [`BackgroundServer::start`] (tests), through
//! [`Builder`] when adding resources, admission plugins, subresources or controllers
//! (the lab), or with the `kube-test-server` binary.
//!
//! # Layout
//! - `registry.rs`: resource types; `discovery.rs`. `store.rs`: versions and history.
//! - `api/`: create/update/patch/delete semantics, admission, validation, Events.
//! - `auth/`: authentication, RBAC, the access record. `tls.rs`, `kubeconfig.rs`.
//! - `http/`: the filter chain, routing, list, watch, tables, OpenAPI, subresources.
//! - `handlers/`: eviction, scale, TokenRequest, SelfSubjectAccessReview.
//! - `controllers/`: the controller runtime and the built-in controllers.
//! - `fixture.rs`, `objects.rs`, `seed.rs`: what a server starts with.
//! - `throttle.rs`: the 429 switch. `select.rs`: selectors. `meta.rs`, `errors.rs`.

pub mod api;
pub mod auth;
pub mod controllers;
pub mod discovery;
pub mod errors;
pub mod fixture;
pub mod handlers;
pub mod http;
pub mod kubeconfig;
pub mod meta;
pub mod objects;
pub mod registry;
pub mod seed;
pub mod select;
pub mod store;
pub mod throttle;
pub mod tls;

mod server;

pub use controllers::template::READY_AT as READY_AT_ANNOTATION;
pub use fixture::Fixture;
pub use server::{ADMIN_USER, ApiServer, BackgroundServer, Builder, Control};
