# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# A pod OOM-killed (EXP-006, the game day's pod-oom): memory-leak runs INSIDE one pod of
# the target (the first Running one by name, lib/inpod.sh) with --watch-oom, growing at
# RATE MiB/s towards LIMIT MiB (above the container's limit, so that the OOM killer acts
# as on a real leak). The fault ends when the OOM kill ends the in-pod run (the kill takes
# the container, and the exec with it), or after its duration. The pod's container status
# is sampled once a second (faults/pod.tsv) for the checks.
#
#   rb_pod_oom NAME TARGET CONTAINER RATE LIMIT BINARY   declares the custom fault NAME
#   rb_oom_preflight, rb_oom_dry_run, rb_oom_sample       for the runbook's hooks
#   rb_oom_recorded, rb_oom_replaced_within S             the checks (commands)
#
# One pod-oom fault per runbook (one in-pod fault). Marks: leak-target, leak-applied.

RB_OOM_TARGET=""
RB_OOM_CONTAINER=""
RB_OOM_RATE=50
RB_OOM_LIMIT=512
RB_OOM_POD=""
RB_OOM_RESTARTS0=""
RB_OOM_DURATION=""

# rb_pod_oom NAME TARGET CONTAINER RATE LIMIT BINARY: CONTAINER empty: the pod's default
# container; BINARY empty: the static build (lib/inpod.sh).
rb_pod_oom() {
  local name=$1
  RB_OOM_TARGET=$2
  RB_OOM_CONTAINER=$3
  RB_OOM_RATE=$4
  RB_OOM_LIMIT=$5
  [ -z "$RB_OOM_CONTAINER" ] || [[ $RB_OOM_CONTAINER =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
    rb_fail 2 "the container must be a container name, not '$RB_OOM_CONTAINER'"
  rb_inpod_tool "$name" memory-leak "$6"
  rb_fault_custom "$name" rb__oom_apply rb_inpod_revert \
    "kubectl exec -n $RB_NAMESPACE POD -c CONTAINER -- /tmp/chaos-memory-leak-RUNID-$name/memory-leak --stop RUNID-$name, then kubectl exec ... -- rm -rf /tmp/chaos-memory-leak-RUNID-$name (RUNID: this run's id; POD: in the timeline's leak-target mark; an OOM kill ends it first; the in-pod run also ends by itself 60 s after its time is up)" \
    "memory-leak --rate-mb-per-second $RB_OOM_RATE --limit-mb $RB_OOM_LIMIT --watch-oom inside one pod of $RB_OOM_TARGET (copied in and run through kubectl exec), until the OOM kill"
  rb_fault_ends_when "$name" rb__oom_ended
  rb_fault_verify "$name" rb_inpod_verify
}

# rb_oom_preflight DURATION_S FLAG: a Running pod, its container, a static binary (FLAG
# names the flag that gives another), a memory limit. DURATION_S: how long the fault may
# stay (the in-pod run's own --duration is 60 s more: the backstop).
rb_oom_preflight() {
  RB_OOM_DURATION=$1
  RB_OOM_POD=$(rb_inpod_pick "$RB_OOM_TARGET")
  [ -n "$RB_OOM_POD" ] || rb_fail 2 "no Running pod labelled app=$RB_OOM_TARGET in $RB_NAMESPACE"
  [ -n "$RB_OOM_CONTAINER" ] || RB_OOM_CONTAINER=$(rb_inpod_container "$RB_OOM_POD")
  rb_inpod_check_binary "$2"
  local mem_limit
  mem_limit=$(rb_kubectl get pod "$RB_OOM_POD" -n "$RB_NAMESPACE" -o "jsonpath={.spec.containers[?(@.name==\"$RB_OOM_CONTAINER\")].resources.limits.memory}")
  [ -n "$mem_limit" ] || rb_fail 3 "container $RB_OOM_CONTAINER of pod/$RB_OOM_POD has no memory limit: no OOM kill would end the leak (the node would pay)"
  rb_log "memory-leak goes into pod/$RB_OOM_POD (container $RB_OOM_CONTAINER, memory limit $mem_limit): $RB_OOM_RATE MiB/s towards $RB_OOM_LIMIT MiB"
}

rb__oom_args() {
  RB_OOM_ARGS=(--rate-mb-per-second "$RB_OOM_RATE" --limit-mb "$RB_OOM_LIMIT" --watch-oom -d "$((${RB_OOM_DURATION:-$RB_FAULT_DURATION} + 60))s")
}

rb_oom_dry_run() {
  rb__oom_args
  rb_inpod_dry_run "$RB_OOM_POD" "$RB_OOM_CONTAINER" "${RB_OOM_ARGS[@]}"
}

rb__oom_container_field() {
  rb_kubectl get pod "$RB_OOM_POD" -n "$RB_NAMESPACE" -o "jsonpath={.status.containerStatuses[?(@.name==\"$RB_OOM_CONTAINER\")].$1}"
}

rb__oom_apply() {
  RB_OOM_POD=$(rb_inpod_pick "$RB_OOM_TARGET")
  [ -n "$RB_OOM_POD" ] || {
    echo "no Running pod labelled app=$RB_OOM_TARGET"
    return 1
  }
  RB_OOM_RESTARTS0=$(rb__oom_container_field restartCount) || return 1
  rb_mark leak-target "pod/$RB_OOM_POD container $RB_OOM_CONTAINER, $RB_OOM_RESTARTS0 restart(s) before"
  rb__oom_args
  rb_inpod_start "$RB_OOM_POD" "$RB_OOM_CONTAINER" 'allocator started' "${RB_OOM_ARGS[@]}" || return 1
  rb_mark leak-applied "memory-leak grows $RB_OOM_RATE MiB/s in $RB_OOM_POD/$RB_OOM_CONTAINER"
}

# The fault is over once the in-pod run ended (an OOM kill takes its container).
rb__oom_ended() {
  ! rb_inpod_running
}

# rb_oom_sample: once a second from the injection to the end of the recovery: epoch ms,
# the container's restart count, Ready, its last termination's reason and end.
rb_oom_sample() {
  [ -n "$RB_OOM_POD" ] || return 0
  local line f c=$RB_OOM_CONTAINER
  line=$(rb_kubectl get pod "$RB_OOM_POD" -n "$RB_NAMESPACE" -o "jsonpath={.status.containerStatuses[?(@.name==\"$c\")].restartCount} {.status.containerStatuses[?(@.name==\"$c\")].ready} {.status.containerStatuses[?(@.name==\"$c\")].lastState.terminated.reason} {.status.containerStatuses[?(@.name==\"$c\")].lastState.terminated.finishedAt}" 2>/dev/null) || line="? ? ? ?"
  read -r -a f <<<"$line"
  printf '%s\t%s\t%s\t%s\t%s\n' "$(rb_now_ms)" "${f[0]:-?}" "${f[1]:-?}" "${f[2]:--}" "${f[3]:--}" >>"$RB_DIR/faults/pod.tsv"
}

# rb_oom_recorded: the container's last termination is OOMKilled and the pod has an OOM
# event (faults/pod-events.txt).
rb_oom_recorded() {
  local events reason n
  reason=$(rb__oom_container_field lastState.terminated.reason) || reason=""
  events=$(rb_kubectl get events -n "$RB_NAMESPACE" --field-selector "involvedObject.name=$RB_OOM_POD" \
    -o 'jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>&1) || events=""
  printf '%s\n' "$events" >"$RB_DIR/faults/pod-events.txt"
  n=$(grep -c -i 'oom' "$RB_DIR/faults/pod-events.txt") || n=0
  echo "last termination of $RB_OOM_POD/$RB_OOM_CONTAINER: ${reason:-none}; $n OOM event(s) of the pod (faults/pod-events.txt)"
  [ "$reason" = OOMKilled ] && [ "$n" -gt 0 ]
}

# rb_oom_replaced_within S: the container Ready again within S seconds of the OOM kill.
rb_oom_replaced_within() {
  local killed ready_ms delay
  killed=$(awk -F'\t' -v r="${RB_OOM_RESTARTS0:-0}" '$2 ~ /^[0-9]+$/ && $2 > r && $4 == "OOMKilled" { print $5; exit }' "$RB_DIR/faults/pod.tsv" 2>/dev/null)
  [ -n "$killed" ] || {
    echo "no OOM kill of $RB_OOM_POD/$RB_OOM_CONTAINER seen (faults/pod.tsv)"
    return 1
  }
  ready_ms=$(awk -F'\t' -v r="${RB_OOM_RESTARTS0:-0}" '$2 ~ /^[0-9]+$/ && $2 > r && $3 == "true" { print $1; exit }' "$RB_DIR/faults/pod.tsv")
  [ -n "$ready_ms" ] || {
    echo "OOM-killed at $killed and not Ready again by the end of the recovery (faults/pod.tsv)"
    return 1
  }
  delay=$(rb_seconds_between "$(rb_epoch_ms "$killed")" "$ready_ms")
  echo "OOM-killed at $killed, Ready again $delay s later (faults/pod.tsv; the kill time has whole seconds)"
  awk -v d="$delay" -v w="$1" 'BEGIN { exit !(d <= w) }'
}
