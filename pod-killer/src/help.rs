//! The end of `--help`: examples from the experiment catalogue and the original's forms,
//! and where the documentation is. `tests/tests/help_examples.rs` runs every example
//! command here with `--dry-run` against the Kubernetes API test server.

pub const AFTER_HELP: &str = "\
Examples:
  # EXP-001: one kill of product-service, pass if it recovers within 30 s
  pod-killer --deployment product-service --delay 0 --count 1 --expect-recovery-within 30s
  # the original's form: 3 kills of auth-service, 30 s apart
  pod-killer -n lomash-wood -s auth-service -c 3 -i 30
  # EXP-003's redis, a StatefulSet (the replacement keeps the name redis-0)
  pod-killer --statefulset redis -c 1 --min-ready 0
  # honour PodDisruptionBudgets; see what would happen first
  pod-killer --deployment product-service --evict --dry-run

The namespace is -n, else CHAOS_NAMESPACE, else the kubeconfig context's namespace, else
lomash-wood. Durations: a bare number is seconds; also 500ms, 30s, 2m, 1h.

Documentation: man pod-killer; docs/pod-killer.md, docs/rbac.yaml and
docs/operator-guide.md in the chaos-tools repository. A saved report in sentences:
pod-killer summary REPORT.json
Shell completions: pod-killer completions bash|zsh|fish (scripts/install.sh installs them)";
