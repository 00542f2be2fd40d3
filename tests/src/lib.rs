//! Support code for the cross-tool integration tests: the Kubernetes API test server
//! ([`kube_server`]) and
//! [`kube_lab::KubeLab`], which starts one and runs kubectl against it. Per-test helpers live in `tests/common/`.

pub mod kube_lab;
pub mod kube_server;
pub mod lab;
