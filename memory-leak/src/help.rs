//! The end of `--help`: examples from the experiment catalogue and the original's forms,
//! and where the documentation is. `tests/tests/help_examples.rs` runs every example
//! command here with `--dry-run`.

pub const AFTER_HELP: &str = "\
Examples:
  # EXP-006, the runbook's form: grow at 50 MiB/s to 512 MiB in this container;
  # the OOM kill is the expected end
  memory-leak --rate-mb-per-second 50 --limit-mb 512MB --watch-oom -y --output json
  # the original's form: 256 MiB over 30 s, held 60 s (-h is help here; the
  # original's -h is --hold-seconds)
  memory-leak -m 256 -r 30 --hold-seconds 60
  # grow to 95% of this container's memory limit in 20 s, hold 30 s
  memory-leak --limit-percent 95 --ramp-seconds 20s --hold-seconds 30s
  # what would happen, touching nothing
  memory-leak --rate-mb-per-second 50 --limit-mb 1GiB --dry-run
  # stop every running instance and end allocators left behind
  memory-leak --cleanup

Sizes: a bare number is MiB; MB, MiB and Mi all mean MiB (1,048,576 bytes), GB, GiB
and Gi mean GiB. Durations: a bare number is seconds; also 500ms, 30s, 2m, 1h.

Documentation: man memory-leak; docs/memory-leak.md and docs/operator-guide.md in the
chaos-tools repository. A saved report in sentences: memory-leak summary REPORT.json
Shell completions: memory-leak completions bash|zsh|fish (scripts/install.sh installs them)";
