//! The end of `--help`: examples from the experiment catalogue and the original's forms,
//! and where the documentation is. `tests/tests/help_examples.rs` runs every example
//! command here with `--dry-run`.

pub const AFTER_HELP: &str = "\
Examples:
  # EXP-004 from inside order-payment-service's pod: cut auth-service for 2 minutes,
  # probing it before, during and after
  net-partition -H auth-service -p 3000 -d 2m --probe auth-service:3000
  # fail fast (TCP reset, ICMP unreachable) instead of timing out, for a subnet
  net-partition -H 10.42.0.0/24 -p 3000 --reject -d 60
  # a flaky link: a third of the packets to and from redis lost
  net-partition -H redis -p 6379 --protocol tcp --drop-percent 33 --bidirectional -d 5m
  # remove whatever any run left in this network namespace (safe to repeat)
  net-partition --cleanup

Documentation: man net-partition; docs/net-partition.md and docs/operator-guide.md in
the chaos-tools repository. A saved report in sentences: net-partition summary REPORT.json
Shell completions: net-partition completions bash|zsh|fish (scripts/install.sh installs them)";
