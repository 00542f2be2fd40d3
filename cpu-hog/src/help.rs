//! The end of `--help`: examples from the experiment catalogue and the original's forms,
//! and where the documentation is. `tests/tests/help_examples.rs` runs every example
//! command here with `--dry-run`.

pub const AFTER_HELP: &str = "\
Examples:
  # hold 50% of one CPU for 10 s (the original's -c and -d)
  cpu-hog -c 50 -d 10
  # two workers at 80% of one CPU each for 2 minutes
  cpu-hog -c 80 -k 2 -d 2m
  # EXP-005 inside a product-service pod: 80% of its CPU limit for 3 minutes,
  # no countdown, the JSON report on stdout
  cpu-hog -c 80 --of-limit -d 180 -y --output json
  # as many workers as the CPU limit allows; print the plan, start nothing
  cpu-hog -c 80 -k all -d 3m --dry-run
  # stop a running instance by its run id; stop every instance
  cpu-hog --stop 20261128-100405-3fa9c1
  cpu-hog --cleanup

Documentation: man cpu-hog; docs/cpu-hog.md and docs/operator-guide.md in the chaos-tools
repository. A saved report in sentences: cpu-hog summary REPORT.json
Shell completions: cpu-hog completions bash|zsh|fish (scripts/install.sh installs them)";
