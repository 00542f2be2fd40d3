#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-005: CPU saturation of one pod, the HPA's answer (docs/runbooks.md#exp-005).
#
# cpu-hog runs INSIDE one pod of the target Deployment (so that the pod's cgroup pays, as
# the HPA and metrics-server see it), holding --cpu-percent of the container's CPU limit
# (--of-limit). The runbook delivers it with kubectl (lib/inpod.sh), as the tools' remote
# mode (`cpu-hog --pod`) also does; moving onto that form is pending (docs/runbooks.md): the
# static cpu-hog copied into the pod's /tmp, run there through `kubectl exec` with its own
# --duration as a backstop, stopped with `cpu-hog --stop RUNID` through exec, removed.
# The HPA and the Deployment are sampled once a second meanwhile.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-005 "CPU saturation" \
  "When a pod's CPU is saturated, the HPA triggers additional replicas, and latency returns to acceptable levels within 3 minutes."
rb_option --target TARGET product-service "the Deployment (pods labelled app=TARGET) one of whose pods is loaded"
rb_option --hpa HPA "" "the HorizontalPodAutoscaler of --target (default: the one named as --target)"
rb_option --container CONTAINER "" "the container that runs cpu-hog (default: the pod's default-container annotation, else its first)"
rb_option --cpu-percent CPU 100 "cpu-hog -c: load held, in percent of the container's CPU limit (--of-limit), 1-100" count
rb_option --hog-binary HOG_BIN "" "a statically linked cpu-hog for the pod (default: \$CHAOS_DIST/cpu-hog, else dist/cpu-hog of this checkout)"
rb_option --hpa-within HPA_WITHIN 60 "pass: the HPA asks for more replicas within S seconds of its CPU metric above target" seconds
rb_option --ready-within READY_WITHIN 90 "pass: a new pod Ready within S seconds of the HPA's scale-up" seconds
rb_option --back-within BACK 180 "pass: p95 back in the baseline band within S seconds of the injection" seconds
rb_defaults baseline=60 fault=180 recovery=180 vus=10
rb_parse_args "$@"
rb_uses_kube

[ "$CPU" -le 100 ] || rb_fail 2 "--cpu-percent must be 1-100 (of the CPU limit), not '$CPU'"
HPA=${HPA:-$TARGET}
[[ $HPA =~ ^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$ ]] || rb_fail 2 "--hpa must be a resource name, not '$HPA'"
[ -z "$CONTAINER" ] || [[ $CONTAINER =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || rb_fail 2 "--container must be a container name, not '$CONTAINER'"
rb_inpod_tool hog cpu-hog "$HOG_BIN"
HOG_BIN=$INPOD_BIN

rb_load products products.js

POD=""
HPA_TARGET=""
HOT_PERCENT=""
HOT_MS=""
DESIRED0=""
READY0=""

rb_hook_preflight() {
  local ref
  ref=$(rb_kubectl get hpa "$HPA" -n "$RB_NAMESPACE" -o 'jsonpath={.spec.scaleTargetRef.kind}/{.spec.scaleTargetRef.name}' 2>&1) ||
    rb_fail 2 "no HorizontalPodAutoscaler $HPA in $RB_NAMESPACE (--hpa): ${ref//$'\n'/ }"
  [ "$ref" = "Deployment/$TARGET" ] || rb_fail 2 "hpa/$HPA scales $ref, not Deployment/$TARGET (--hpa, --target)"
  HPA_TARGET=$(rb_kubectl get hpa "$HPA" -n "$RB_NAMESPACE" -o 'jsonpath={.spec.metrics[?(@.resource.name=="cpu")].resource.target.averageUtilization}')
  [[ $HPA_TARGET =~ ^[0-9]+$ ]] || rb_fail 3 "hpa/$HPA has no CPU averageUtilization target: EXP-005 judges the HPA's CPU answer"
  POD=$(rb_inpod_pick "$TARGET")
  [ -n "$POD" ] || rb_fail 2 "no Running pod labelled app=$TARGET in $RB_NAMESPACE"
  [ -n "$CONTAINER" ] || CONTAINER=$(rb_inpod_container "$POD")
  rb_inpod_check_binary --hog-binary
  # The hog's load as the HPA counts it: percent of the container's CPU request.
  local resources
  resources=$(rb_kubectl get pod "$POD" -n "$RB_NAMESPACE" \
    -o "jsonpath={.spec.containers[?(@.name==\"$CONTAINER\")].resources.limits.cpu} {.spec.containers[?(@.name==\"$CONTAINER\")].resources.requests.cpu}")
  HOT_PERCENT=$(awk -v cpu="$CPU" -v r="$resources" 'function milli(q) { return q ~ /m$/ ? substr(q, 1, length(q) - 1) + 0 : q * 1000 }
    BEGIN { split(r, f, " "); if (f[1] == "" || f[2] == "" || milli(f[2]) <= 0) exit 1; printf "%d", cpu * milli(f[1]) / milli(f[2]) }') ||
    rb_fail 3 "container $CONTAINER of pod/$POD has no CPU limit and request ('$resources'): cpu-hog --of-limit and the HPA's utilization need both"
  rb_log "cpu-hog goes into pod/$POD (container $CONTAINER): $CPU% of its CPU limit is $HOT_PERCENT% of its request; hpa/$HPA targets $HPA_TARGET%"
}

hog_args() {
  HOG_ARGS=(-c "$CPU" --of-limit -k all -d "$((RB_FAULT_DURATION + 60))s")
}

rb_hook_dry_run() {
  hog_args
  rb_inpod_dry_run "$POD" "$CONTAINER" "${HOG_ARGS[@]}"
}

# Copies cpu-hog into the pod and starts it; returns once it says its workers run.
hog_apply() {
  POD=$(rb_inpod_pick "$TARGET")
  [ -n "$POD" ] || {
    echo "no Running pod labelled app=$TARGET"
    return 1
  }
  DESIRED0=$(rb_kubectl get hpa "$HPA" -n "$RB_NAMESPACE" -o 'jsonpath={.status.desiredReplicas}') || return 1
  READY0=$(rb_kubectl get deployment "$TARGET" -n "$RB_NAMESPACE" -o 'jsonpath={.status.readyReplicas}') || return 1
  rb_mark hog-target "pod/$POD; hpa/$HPA wants ${DESIRED0:-0}, $TARGET has ${READY0:-0} Ready"
  hog_args
  rb_inpod_start "$POD" "$CONTAINER" 'started [0-9]+ worker' "${HOG_ARGS[@]}" || return 1
  HOT_MS=$(rb_now_ms)
  rb_mark hog-applied "cpu-hog holds $CPU% of the CPU limit of $POD/$CONTAINER ($HOT_PERCENT% of its request)"
}

hog_verify() {
  rb_inpod_verify report
}

rb_fault_custom hog hog_apply rb_inpod_revert \
  "kubectl exec -n $RB_NAMESPACE POD -c CONTAINER -- /tmp/chaos-cpu-hog-RUNID-hog/cpu-hog --stop RUNID-hog, then kubectl exec ... -- rm -rf /tmp/chaos-cpu-hog-RUNID-hog (RUNID: this run's id; POD: in the timeline's hog-target mark; the in-pod run also ends by itself $((RB_FAULT_DURATION + 60)) s after it started)" \
  "cpu-hog -c $CPU --of-limit -k all inside one pod of $TARGET (copied in and run through kubectl exec) for $RB_FAULT_DURATION s"
rb_fault_verify hog hog_verify

# Once a second while the hog holds: epoch ms, the HPA's CPU utilization, desired and
# current replicas, the Deployment's Ready replicas.
rb_hook_tick() {
  local hpa ready f
  hpa=$(rb_kubectl get hpa "$HPA" -n "$RB_NAMESPACE" \
    -o 'jsonpath={.status.currentMetrics[?(@.resource.name=="cpu")].resource.current.averageUtilization} {.status.desiredReplicas} {.status.currentReplicas}' 2>/dev/null) || hpa="? ? ?"
  ready=$(rb_kubectl get deployment "$TARGET" -n "$RB_NAMESPACE" -o 'jsonpath={.status.readyReplicas}' 2>/dev/null) || ready="?"
  read -r -a f <<<"$hpa"
  printf '%s\t%s\t%s\t%s\t%s\n' "$(rb_now_ms)" "${f[0]:-?}" "${f[1]:-?}" "${f[2]:-?}" "${ready:-0}" >>"$RB_DIR/faults/hpa.tsv"
}

# first_sample CONDITION: the time (epoch ms) of the first sample of faults/hpa.tsv for
# which the awk CONDITION holds ($2 utilization, $3 desired, $4 current, $5 Ready).
first_sample() {
  awk -F'\t' "$1 { print \$1; exit }" "$RB_DIR/faults/hpa.tsv" 2>/dev/null
}

# CPU is above the target from the moment the hog holds its load when that load alone
# (percent of the request) is above it; else from the HPA's first report above it.
hpa_triggered() {
  local hot scaled since
  if [ -n "$HOT_MS" ] && [ "$HOT_PERCENT" -gt "$HPA_TARGET" ]; then
    hot=$HOT_MS
    since="the hog's start ($HOT_PERCENT% of the request)"
  else
    hot=$(first_sample "\$2 ~ /^[0-9]+\$/ && \$2 > $HPA_TARGET")
    since="the HPA's first report above it"
  fi
  scaled=$(first_sample "\$3 ~ /^[0-9]+\$/ && \$3 > ${DESIRED0:-0}")
  [ -n "$hot" ] || { echo "CPU never above $HPA_TARGET%: neither the hog's load nor the HPA's reports (faults/hpa.tsv)"; return 1; }
  [ -n "$scaled" ] || { echo "CPU above $HPA_TARGET% from $since, and the HPA never asked for more than ${DESIRED0:-0} replicas (faults/hpa.tsv)"; return 1; }
  local delay
  delay=$(rb_seconds_between "$hot" "$scaled")
  echo "scale-up asked $delay s after CPU went above $HPA_TARGET% at $since (faults/hpa.tsv)"
  awk -v d="$delay" -v w="$HPA_WITHIN" 'BEGIN { exit !(d <= w) }'
}

new_pod_ready() {
  local scaled ready
  scaled=$(first_sample "\$3 ~ /^[0-9]+\$/ && \$3 > ${DESIRED0:-0}")
  [ -n "$scaled" ] || { echo "no scale-up, so no new pod (faults/hpa.tsv)"; return 1; }
  ready=$(first_sample "\$1 >= $scaled && \$5 ~ /^[0-9]+\$/ && \$5 > ${READY0:-0}")
  [ -n "$ready" ] || { echo "no more than ${READY0:-0} pods Ready while the fault held (faults/hpa.tsv)"; return 1; }
  local delay
  delay=$(rb_seconds_between "$scaled" "$ready")
  echo "a new pod Ready $delay s after the scale-up (faults/hpa.tsv)"
  awk -v d="$delay" -v w="$READY_WITHIN" 'BEGIN { exit !(d <= w) }'
}

rb_check "baseline error rate < 1%" window=baseline request=products metric=error-rate lt=1
rb_check_cmd "HPA triggers within $HPA_WITHIN s of CPU > target" -- hpa_triggered
rb_check_cmd "new pod Ready within $READY_WITHIN s" -- new_pod_ready
rb_check "P95 back to baseline within $BACK s" request=products metric=recovery-seconds from=fault-start le="$BACK"
rb_check "no 5xx increase during scaling" window=fault request=products metric=error-rate-delta lt=1
rb_main
