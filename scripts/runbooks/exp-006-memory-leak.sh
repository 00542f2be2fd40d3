#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-006: memory leak until the OOM killer, the pod replaced (docs/runbooks.md#exp-006).
#
# memory-leak runs INSIDE one pod of the target (the first Running one by name), growing
# at --rate-mb-per-second MiB/s towards --limit-mb (the seed: 50 MB/s to 512 MB, above the container's
# limit) with --watch-oom, so that the container's cgroup pays and the OOM killer acts as
# it would on a real leak (lib/podoom.sh). Until the tools' remote mode is on main, lib/inpod.sh copies
# and runs it through kubectl exec. The fault ends when the OOM kill ends the in-pod run
# (the kill takes the container, and the exec with it), or after --fault-duration. The
# pod's container status is sampled once a second until the end of the recovery.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-006 "Memory leak simulation" \
  "When a pod consumes memory approaching its limit, Kubernetes OOMKills it, and the deployment controller immediately reschedules a new healthy pod. The brief downtime is absorbed by other replicas."
rb_option --target TARGET notification-service "the Deployment (pods labelled app=TARGET) one of whose pods leaks"
rb_option --container CONTAINER "" "the container that runs memory-leak (default: the pod's default-container annotation, else its first)"
rb_option --rate-mb-per-second LEAK_RATE 50 "memory-leak --rate-mb-per-second: growth in MiB per second" count
rb_option --limit-mb LIMIT_MB 512 "memory-leak --limit-mb: where growth would stop (above the container's limit, so that the OOM killer acts)" count
rb_option --leak-binary LEAK_BIN "" "a statically linked memory-leak for the pod (default: \$CHAOS_DIST/memory-leak, else dist/memory-leak of this checkout)"
rb_option --replaced-within REPLACED 30 "pass: the container back and Ready within S seconds of the OOM kill" seconds
rb_defaults baseline=60 fault=120 recovery=60 vus=10
rb_parse_args "$@"
rb_uses_kube

[ -z "$CONTAINER" ] || [[ $CONTAINER =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || rb_fail 2 "--container must be a container name, not '$CONTAINER'"
# The fault: lib/podoom.sh (shared with the game day).
# shellcheck disable=SC2153  # TARGET is set by rb_option
rb_pod_oom leak "$TARGET" "$CONTAINER" "$LEAK_RATE" "$LIMIT_MB" "$LEAK_BIN"

rb_load notifications notifications.js

rb_hook_preflight() {
  rb_oom_preflight "$RB_FAULT_DURATION" --leak-binary
}

rb_hook_dry_run() {
  rb_oom_dry_run
}

rb_hook_tick() {
  rb_oom_sample
}

rb_hook_recovery_tick() {
  rb_oom_sample
}

rb_check "baseline error rate < 1%" window=baseline request=notifications metric=error-rate lt=1
rb_check_cmd "OOMKill event recorded in pod events" -- rb_oom_recorded
rb_check_cmd "pod replaced within $REPLACED s" -- rb_oom_replaced_within "$REPLACED"
rb_check "no error rate increase visible to end users" window="fault+$REPLACED" request=notifications metric=error-rate-delta lt=1
rb_check_manual "memory metrics in Grafana show the event and recovery"
rb_main
