#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# EXP-001: pod failure, single replica (docs/runbooks.md#exp-001).
#
# pod-killer deletes one pod of the target Deployment while k6 browses the catalogue; the
# deletion window runs from the kill until --settle seconds after pod-killer saw the
# workload back to its Ready count (errors a replacement answers once Ready are the
# deletion's too). A baseline that misses the seed's steady state stops the run first.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-001 "Pod failure (single replica)" \
  "Deleting one pod from a multi-replica deployment does not cause any user-visible errors because Kubernetes reschedules the pod and the load balancer routes traffic to healthy pods."
rb_option --target TARGET product-service "the Deployment one of whose pods is deleted"
rb_option --grace-period GRACE 0 "grace period of the deletion in seconds (pod-killer -g; 0: at once, as the original)"
rb_option --reschedule-within RESCHEDULE 30 "pass: the workload back to its Ready count within S seconds of the kill" seconds
rb_option --back-within BACK 60 "pass: p95 back to the baseline band within S seconds of the kill" seconds
rb_option --settle SETTLE 30 "the deletion window lasts until S seconds after the workload recovered" seconds
rb_option --max-errors MAX_ERRORS 5 "pass: fewer errors than N in the deletion window" count
rb_defaults baseline=60 fault=120 recovery=60 vus=10
rb_parse_args "$@"
rb_uses_kube

[[ $GRACE =~ ^[0-9]{1,4}$ ]] || rb_fail 2 "--grace-period must be whole seconds (0-9999), not '$GRACE'"

rb_load products products.js
rb_fault_tool kill pod-killer "${RB_KUBE_ARGS[@]}" --deployment "$TARGET" --count 1 --delay 0 \
  --grace-period "$GRACE" --expect-recovery-within "${RESCHEDULE}s"

rb_check "baseline p95 < 300 ms" window=baseline request=products metric=p95 lt=300
rb_check "baseline error rate < 0.1%" window=baseline request=products metric=error-rate lt=0.1
rb_check "< $MAX_ERRORS errors in the pod deletion window" window="fault+$SETTLE" metric=errors lt="$MAX_ERRORS"
rb_check "pod rescheduled within $RESCHEDULE s" kind=value source=faults/kill.json \
  pointer=/observations/kills/0/recoveredMs scale=0.001 unit=s le="$RESCHEDULE"
rb_check "P95 back to baseline within $BACK s" metric=recovery-seconds from=fault-start le="$BACK"
rb_main
