//! The end of `--help`: examples from the experiment catalogue and the original's forms,
//! and where the documentation is. `tests/tests/help_examples.rs` runs every example
//! command here with `--dry-run`.

pub const AFTER_HELP: &str = "\
Examples:
  # no privilege: a proxy putting 500 ms in front of redis; point clients at :6380
  latency-injector --listen 127.0.0.1:6380 --upstream 127.0.0.1:6379 -l 500ms -d 2m
  # EXP-003 from inside a client's pod: every connection to redis 5 s slower
  latency-injector --target redis:6379 --latency-ms 5000 -d 60
  # EXP-007 inside order-payment-service's pod: the Stripe webhook 10 s slower
  latency-injector --endpoint /v1/webhooks/stripe --latency 10s -d 2m
  # 200 ms ± 50 ms on 30% of the HTTP requests through an explicit proxy
  latency-injector --listen 127.0.0.1:8081 --upstream 127.0.0.1:8080 --http \\
    -l 200 -j 50 --probability 30
  # remove whatever any run left in this network namespace (safe to repeat)
  latency-injector --cleanup

Durations: --latency and --jitter take a bare number of milliseconds, or 500ms, 5s, 1m;
the other durations a bare number of seconds. Sizes: 4MiB, 512KiB (MB means MiB).

Documentation: man latency-injector; docs/latency-injector.md and docs/operator-guide.md
in the chaos-tools repository. A saved report in sentences: latency-injector summary REPORT.json
Shell completions: latency-injector completions bash|zsh|fish (scripts/install.sh installs them)";
