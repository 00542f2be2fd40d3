#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-006: memory leak until the OOM killer, the pod replaced (docs/runbooks.md#exp-006).
#
# memory-leak in remote mode (`--pod pod/NAME --watch-oom`, docs/remote.md) on one pod of
# the target (the first Running one by name, chosen in preflight), growing at
# --rate-mb-per-second MiB/s towards --limit-mb (the seed: 50 MB/s to 512 MB, above the
# container's limit): the tool copies itself into the pod's container, so that the
# container's cgroup pays and the OOM killer acts as it would on a real leak, and watches
# the pod: the OOM kill, the restart, the time until the pod is Ready again (its report's
# targets[0].details.oom, which the checks read). The fault lasts until the pod is Ready
# again after the kill, or --fault-duration without one; the tool removes its copy.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-006 "Memory leak simulation" \
  "When a pod consumes memory approaching its limit, Kubernetes OOMKills it, and the deployment controller immediately reschedules a new healthy pod. The brief downtime is absorbed by other replicas."
rb_option --target TARGET notification-service "the Deployment (pods labelled app=TARGET) one of whose pods leaks"
rb_option --container CONTAINER "" "memory-leak --container: the container it runs in (default: the pod's default-container annotation, else its first)"
rb_option --rate-mb-per-second LEAK_RATE 50 "memory-leak --rate-mb-per-second: growth in MiB per second" count
rb_option --limit-mb LIMIT_MB 512 "memory-leak --limit-mb: where growth would stop (above the container's limit, so that the OOM killer acts)" count
rb_option --leak-binary LEAK_BIN "" "the memory-leak to run (default: found as every tool: PATH, CHAOS_BIN_DIR, target/, dist/); a static one copies itself into the pod, else \$CHAOS_DIST/memory-leak or dist/memory-leak is copied"
rb_option --replaced-within REPLACED 30 "pass: the pod Ready again within S seconds of the OOM kill (memory-leak's recoveryMs)" seconds
rb_defaults baseline=60 fault=120 recovery=60 vus=10
rb_parse_args "$@"
rb_uses_kube

[ -z "$CONTAINER" ] || [[ $CONTAINER =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || rb_fail 2 "--container must be a container name, not '$CONTAINER'"

rb_load notifications notifications.js
# POD: a placeholder until preflight picks the pod (rb_fault_pod).
rb_fault_tool leak memory-leak "${RB_KUBE_ARGS[@]}" --pod pod/POD ${CONTAINER:+--container "$CONTAINER"} \
  --rate-mb-per-second "$LEAK_RATE" --limit-mb "$LIMIT_MB" --watch-oom -d "${RB_FAULT_DURATION}s"
rb_fault_binary leak "$LEAK_BIN"

POD=""

rb_hook_preflight() {
  POD=$(rb_first_pod "$TARGET")
  [ -n "$POD" ] || rb_fail 2 "no Running pod labelled app=$TARGET in $RB_NAMESPACE"
  rb_fault_pod leak "$POD"
  [ -n "$CONTAINER" ] || CONTAINER=$(rb_pod_container "$POD")
  local limit
  limit=$(rb_kubectl get pod "$POD" -n "$RB_NAMESPACE" -o "jsonpath={.spec.containers[?(@.name==\"$CONTAINER\")].resources.limits.memory}")
  [ -n "$limit" ] || rb_fail 3 "container $CONTAINER of pod/$POD has no memory limit: no OOM kill would end the leak (the node would pay)"
  rb_log "memory-leak goes into pod/$POD (container $CONTAINER, memory limit $limit): $LEAK_RATE MiB/s towards $LIMIT_MB MiB"
}

rb_hook_injected() {
  rb_mark leak-target "pod/$POD container $CONTAINER, $(container_field restartCount || printf '?') restart(s) before"
}

# Once a second while it grows: the moment the tool says the allocator runs in the pod.
LEAK_APPLIED=0
rb_hook_tick() {
  if [ "$LEAK_APPLIED" -eq 0 ] && rb_fault_applied leak; then
    LEAK_APPLIED=1
    rb_mark leak-applied "memory-leak grows $LEAK_RATE MiB/s in $POD/$CONTAINER"
  fi
}

leak_gone() {
  rb_pod_clean leak "$POD" "$CONTAINER"
}
rb_fault_verify leak leak_gone

container_field() {
  rb_kubectl get pod "$POD" -n "$RB_NAMESPACE" -o "jsonpath={.status.containerStatuses[?(@.name==\"$CONTAINER\")].$1}"
}

# The tool's OOM observation (it watched the pod) and the pod's events both say so.
oom_recorded() {
  local killed reason events n
  killed=$(rb_verdict get "$RB_DIR/faults/leak.json" /targets/0/details/oom/oomKilled 2>/dev/null) || killed=""
  reason=$(container_field lastState.terminated.reason) || reason=""
  events=$(rb_kubectl get events -n "$RB_NAMESPACE" --field-selector "involvedObject.name=$POD" \
    -o 'jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>&1) || events=""
  printf '%s\n' "$events" >"$RB_DIR/faults/pod-events.txt"
  n=$(grep -c -i 'oom' "$RB_DIR/faults/pod-events.txt") || n=0
  echo "memory-leak saw $POD/$CONTAINER OOM-killed: ${killed:-no observation} (faults/leak.json); last termination ${reason:-none}; $n OOM event(s) of the pod (faults/pod-events.txt)"
  [ "$killed" = true ] && [ "$n" -gt 0 ]
}

rb_check "baseline error rate < 1%" window=baseline request=notifications metric=error-rate lt=1
rb_check_cmd "OOMKill event recorded in pod events" -- oom_recorded
rb_check "pod replaced within $REPLACED s" kind=value source=faults/leak.json \
  pointer=/targets/0/details/oom/recoveryMs scale=0.001 unit=s le="$REPLACED"
rb_check "no error rate increase visible to end users" window="fault+$REPLACED" request=notifications metric=error-rate-delta lt=1
rb_check_manual "memory metrics in Grafana show the event and recovery"
rb_main
