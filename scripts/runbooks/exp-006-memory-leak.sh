#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-006: memory leak until the OOM killer, the pod replaced (docs/runbooks.md#exp-006).
#
# memory-leak runs INSIDE one pod of the target (the first Running one by name), growing
# at --rate-mb-per-second MiB/s towards --limit-mb (the seed: 50 MB/s to 512 MB, above the container's
# limit) with --watch-oom, so that the container's cgroup pays and the OOM killer acts as
# it would on a real leak. Until the tools' remote mode is on main, lib/inpod.sh copies
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
rb_inpod_tool leak memory-leak "$LEAK_BIN"
LEAK_BIN=$INPOD_BIN

rb_load notifications notifications.js

POD=""
RESTARTS0=""

rb_hook_preflight() {
  POD=$(rb_inpod_pick "$TARGET")
  [ -n "$POD" ] || rb_fail 2 "no Running pod labelled app=$TARGET in $RB_NAMESPACE"
  [ -n "$CONTAINER" ] || CONTAINER=$(rb_inpod_container "$POD")
  rb_inpod_check_binary --leak-binary
  local limit
  limit=$(rb_kubectl get pod "$POD" -n "$RB_NAMESPACE" -o "jsonpath={.spec.containers[?(@.name==\"$CONTAINER\")].resources.limits.memory}")
  [ -n "$limit" ] || rb_fail 3 "container $CONTAINER of pod/$POD has no memory limit: no OOM kill would end the leak (the node would pay)"
  rb_log "memory-leak goes into pod/$POD (container $CONTAINER, memory limit $limit): $LEAK_RATE MiB/s towards $LIMIT_MB MiB"
}

leak_args() {
  LEAK_ARGS=(--rate-mb-per-second "$LEAK_RATE" --limit-mb "$LIMIT_MB" --watch-oom -d "$((RB_FAULT_DURATION + 60))s")
}

rb_hook_dry_run() {
  leak_args
  rb_inpod_dry_run "$POD" "$CONTAINER" "${LEAK_ARGS[@]}"
}

container_field() {
  rb_kubectl get pod "$POD" -n "$RB_NAMESPACE" -o "jsonpath={.status.containerStatuses[?(@.name==\"$CONTAINER\")].$1}"
}

leak_apply() {
  POD=$(rb_inpod_pick "$TARGET")
  [ -n "$POD" ] || {
    echo "no Running pod labelled app=$TARGET"
    return 1
  }
  RESTARTS0=$(container_field restartCount) || return 1
  rb_mark leak-target "pod/$POD container $CONTAINER, $RESTARTS0 restart(s) before"
  leak_args
  rb_inpod_start "$POD" "$CONTAINER" 'allocator started' "${LEAK_ARGS[@]}" || return 1
  rb_mark leak-applied "memory-leak grows $LEAK_RATE MiB/s in $POD/$CONTAINER"
}

# The fault is over once the in-pod run ended (an OOM kill takes its container).
leak_ended() {
  ! rb_inpod_running
}

rb_fault_custom leak leak_apply rb_inpod_revert \
  "kubectl exec -n $RB_NAMESPACE POD -c CONTAINER -- /tmp/chaos-memory-leak-RUNID-leak/memory-leak --stop RUNID-leak, then kubectl exec ... -- rm -rf /tmp/chaos-memory-leak-RUNID-leak (RUNID: this run's id; POD: in the timeline's leak-target mark; an OOM kill ends it first; the in-pod run also ends by itself $((RB_FAULT_DURATION + 60)) s after it started)" \
  "memory-leak --rate-mb-per-second $LEAK_RATE --limit-mb $LIMIT_MB --watch-oom inside one pod of $TARGET (copied in and run through kubectl exec), until the OOM kill or $RB_FAULT_DURATION s"
rb_fault_ends_when leak leak_ended
rb_fault_verify leak rb_inpod_verify

# Once a second from the injection to the end of the recovery: epoch ms, the container's
# restart count, Ready, its last termination's reason and end.
sample_pod() {
  local line f
  line=$(rb_kubectl get pod "$POD" -n "$RB_NAMESPACE" -o "jsonpath={.status.containerStatuses[?(@.name==\"$CONTAINER\")].restartCount} {.status.containerStatuses[?(@.name==\"$CONTAINER\")].ready} {.status.containerStatuses[?(@.name==\"$CONTAINER\")].lastState.terminated.reason} {.status.containerStatuses[?(@.name==\"$CONTAINER\")].lastState.terminated.finishedAt}" 2>/dev/null) || line="? ? ? ?"
  read -r -a f <<<"$line"
  printf '%s\t%s\t%s\t%s\t%s\n' "$(rb_now_ms)" "${f[0]:-?}" "${f[1]:-?}" "${f[2]:--}" "${f[3]:--}" >>"$RB_DIR/faults/pod.tsv"
}

rb_hook_tick() {
  [ -z "$POD" ] || sample_pod
}

rb_hook_recovery_tick() {
  [ -z "$POD" ] || sample_pod
}

oom_recorded() {
  local events reason
  reason=$(container_field lastState.terminated.reason) || reason=""
  events=$(rb_kubectl get events -n "$RB_NAMESPACE" --field-selector "involvedObject.name=$POD" \
    -o 'jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>&1) || events=""
  printf '%s\n' "$events" >"$RB_DIR/faults/pod-events.txt"
  local n
  n=$(grep -c -i 'oom' "$RB_DIR/faults/pod-events.txt") || n=0
  echo "last termination of $POD/$CONTAINER: ${reason:-none}; $n OOM event(s) of the pod (faults/pod-events.txt)"
  [ "$reason" = OOMKilled ] && [ "$n" -gt 0 ]
}

replaced_in_time() {
  local killed back delay
  killed=$(awk -F'\t' -v r="${RESTARTS0:-0}" '$2 ~ /^[0-9]+$/ && $2 > r && $4 == "OOMKilled" { print $5; exit }' "$RB_DIR/faults/pod.tsv" 2>/dev/null)
  [ -n "$killed" ] || {
    echo "no OOM kill of $POD/$CONTAINER seen (faults/pod.tsv)"
    return 1
  }
  back=$(awk -F'\t' -v r="${RESTARTS0:-0}" '$2 ~ /^[0-9]+$/ && $2 > r && $3 == "true" { print $1; exit }' "$RB_DIR/faults/pod.tsv")
  [ -n "$back" ] || {
    echo "OOM-killed at $killed and not Ready again by the end of the recovery (faults/pod.tsv)"
    return 1
  }
  delay=$(rb_seconds_between "$(rb_epoch_ms "$killed")" "$back")
  echo "OOM-killed at $killed, Ready again $delay s later (faults/pod.tsv; the kill time has whole seconds)"
  awk -v d="$delay" -v w="$REPLACED" 'BEGIN { exit !(d <= w) }'
}

rb_check "baseline error rate < 1%" window=baseline request=notifications metric=error-rate lt=1
rb_check_cmd "OOMKill event recorded in pod events" -- oom_recorded
rb_check_cmd "pod replaced within $REPLACED s" -- replaced_in_time
rb_check "no error rate increase visible to end users" window="fault+$REPLACED" request=notifications metric=error-rate-delta lt=1
rb_check_manual "memory metrics in Grafana show the event and recovery"
rb_main
