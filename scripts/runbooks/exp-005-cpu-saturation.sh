#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-005: CPU saturation of one pod, the HPA's answer (docs/runbooks.md#exp-005).
#
# cpu-hog in remote mode (`--pod pod/NAME`, docs/remote.md) on one pod of the target
# Deployment (the first Running one by name, chosen in preflight): the tool copies itself
# into the pod's container and runs there, so that the container's cgroup pays, as the HPA
# and metrics-server see it, holding --cpu-percent of the container's CPU limit
# (--of-limit) for --fault-duration; it reverts itself (at its duration, on `cpu-hog
# --stop RUNID`, on Ctrl-C) and removes its copy. Its report holds the pod's own report
# (targets[0].details.report), whose apply phase dates the load. The HPA and the
# Deployment are sampled once a second meanwhile.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-005 "CPU saturation" \
  "When a pod's CPU is saturated, the HPA triggers additional replicas, and latency returns to acceptable levels within 3 minutes."
rb_option --target TARGET product-service "the Deployment (pods labelled app=TARGET) one of whose pods is loaded"
rb_option --hpa HPA "" "the HorizontalPodAutoscaler of --target (default: the one named as --target)"
rb_option --container CONTAINER "" "cpu-hog --container: the container it runs in (default: the pod's default-container annotation, else its first)"
rb_option --cpu-percent CPU 100 "cpu-hog -c: load held, in percent of the container's CPU limit (--of-limit), 1-100" count
rb_option --hog-binary HOG_BIN "" "the cpu-hog to run (default: found as every tool: PATH, CHAOS_BIN_DIR, target/, dist/); a static one copies itself into the pod, else \$CHAOS_DIST/cpu-hog or dist/cpu-hog is copied"
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

rb_load products products.js
# POD: a placeholder until preflight picks the pod (rb_fault_pod).
rb_fault_tool hog cpu-hog "${RB_KUBE_ARGS[@]}" --pod pod/POD ${CONTAINER:+--container "$CONTAINER"} \
  -c "$CPU" --of-limit -k all -d "${RB_FAULT_DURATION}s"
rb_fault_binary hog "$HOG_BIN"

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
  POD=$(rb_first_pod "$TARGET")
  [ -n "$POD" ] || rb_fail 2 "no Running pod labelled app=$TARGET in $RB_NAMESPACE"
  rb_fault_pod hog "$POD"
  [ -n "$CONTAINER" ] || CONTAINER=$(rb_pod_container "$POD")
  # The hog's load as the HPA counts it: percent of the container's CPU request.
  local resources
  resources=$(rb_kubectl get pod "$POD" -n "$RB_NAMESPACE" \
    -o "jsonpath={.spec.containers[?(@.name==\"$CONTAINER\")].resources.limits.cpu} {.spec.containers[?(@.name==\"$CONTAINER\")].resources.requests.cpu}")
  HOT_PERCENT=$(awk -v cpu="$CPU" -v r="$resources" 'function milli(q) { return q ~ /m$/ ? substr(q, 1, length(q) - 1) + 0 : q * 1000 }
    BEGIN { split(r, f, " "); if (f[1] == "" || f[2] == "" || milli(f[2]) <= 0) exit 1; printf "%d", cpu * milli(f[1]) / milli(f[2]) }') ||
    rb_fail 3 "container $CONTAINER of pod/$POD has no CPU limit and request ('$resources'): cpu-hog --of-limit and the HPA's utilization need both"
  rb_log "cpu-hog goes into pod/$POD (container $CONTAINER): $CPU% of its CPU limit is $HOT_PERCENT% of its request; hpa/$HPA targets $HPA_TARGET%"
}

# At the injection: what the HPA and the Deployment had before the load.
rb_hook_injected() {
  DESIRED0=$(rb_kubectl get hpa "$HPA" -n "$RB_NAMESPACE" -o 'jsonpath={.status.desiredReplicas}') || DESIRED0=""
  READY0=$(rb_kubectl get deployment "$TARGET" -n "$RB_NAMESPACE" -o 'jsonpath={.status.readyReplicas}') || READY0=""
  rb_mark hog-target "pod/$POD; hpa/$HPA wants ${DESIRED0:-0}, $TARGET has ${READY0:-0} Ready"
}

hog_gone() {
  rb_pod_clean hog "$POD" "$CONTAINER"
}
rb_fault_verify hog hog_gone

# Once a second while the hog holds: epoch ms, the HPA's CPU utilization, desired and
# current replicas, the Deployment's Ready replicas; and the moment the tool says its load
# is in place (a mark; the exact time comes from its report afterwards).
rb_hook_tick() {
  local hpa ready f
  if [ -z "$HOT_MS" ] && rb_fault_applied hog; then
    HOT_MS=$(rb_now_ms)
    rb_mark hog-applied "cpu-hog holds $CPU% of the CPU limit of $POD/$CONTAINER ($HOT_PERCENT% of its request)"
  fi
  hpa=$(rb_kubectl get hpa "$HPA" -n "$RB_NAMESPACE" \
    -o 'jsonpath={.status.currentMetrics[?(@.resource.name=="cpu")].resource.current.averageUtilization} {.status.desiredReplicas} {.status.currentReplicas}' 2>/dev/null) || hpa="? ? ?"
  ready=$(rb_kubectl get deployment "$TARGET" -n "$RB_NAMESPACE" -o 'jsonpath={.status.readyReplicas}' 2>/dev/null) || ready="?"
  read -r -a f <<<"$hpa"
  printf '%s\t%s\t%s\t%s\t%s\n' "$(rb_now_ms)" "${f[0]:-?}" "${f[1]:-?}" "${f[2]:-?}" "${ready:-0}" >>"$RB_DIR/faults/hpa.tsv"
}

# applied_ms: when the load was in place (epoch ms): the end of the apply phase of the
# pod's own report (targets[0].details.report), else the hog-applied mark.
applied_ms() {
  local report=$RB_DIR/faults/hog.json k name at
  for k in 0 1 2 3 4 5 6 7 8 9; do
    name=$(rb_verdict get "$report" "/targets/0/details/report/phases/$k/name" 2>/dev/null) || break
    if [ "$name" = apply ]; then
      at=$(rb_verdict get "$report" "/targets/0/details/report/phases/$k/endedAt" 2>/dev/null) &&
        rb_epoch_ms "$at" && return 0
      break
    fi
  done
  [ -n "$HOT_MS" ] && printf '%s\n' "$HOT_MS"
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
  if [ "$HOT_PERCENT" -gt "$HPA_TARGET" ] && hot=$(applied_ms); then
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
