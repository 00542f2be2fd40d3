# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# Redis down (EXP-003 --mode scale-to-zero, the game day's redis-down): the seed's
# `kubectl scale statefulset/redis --replicas=0`, the replica count read first and
# restored, then `rollout status`; verified by the StatefulSet's Ready count.
#
#   rb_redis_down NAME STATEFULSET ROLLOUT_S   declares the custom fault NAME
#   rb_redis_preflight                         the StatefulSet exists and has replicas
#   rb_redis_back                              Ready replicas = the count read before
#
# One redis-down fault per runbook. Marks: redis-replicas, redis-gone.

RB_REDIS_STS=""
RB_REDIS_ROLLOUT=300
RB_REDIS_REPLICAS=""
# Epoch ms when the fault's apply started (EXP-003 reads the clients' logs from there).
RB_REDIS_APPLY_MS=""

rb_redis_down() {
  local name=$1
  RB_REDIS_STS=$2
  RB_REDIS_ROLLOUT=$3
  rb_fault_custom "$name" rb__redis_apply rb__redis_revert \
    "kubectl scale statefulset/$RB_REDIS_STS -n $RB_NAMESPACE --replicas=<the count read before, printed in the log (usually 1)>, then kubectl rollout status statefulset/$RB_REDIS_STS -n $RB_NAMESPACE" \
    "kubectl scale statefulset/$RB_REDIS_STS -n $RB_NAMESPACE --replicas=0 (and wait for its pods to go)"
  rb_fault_verify "$name" rb_redis_back
}

rb_redis_preflight() {
  RB_REDIS_REPLICAS=$(rb_kubectl get statefulset "$RB_REDIS_STS" -n "$RB_NAMESPACE" -o 'jsonpath={.spec.replicas}' 2>&1) ||
    rb_fail 2 "no StatefulSet $RB_REDIS_STS in $RB_NAMESPACE: ${RB_REDIS_REPLICAS//$'\n'/ }"
  [ "$RB_REDIS_REPLICAS" -gt 0 ] 2>/dev/null || rb_fail 3 "statefulset/$RB_REDIS_STS has $RB_REDIS_REPLICAS replicas already: nothing to remove"
  rb_log "statefulset/$RB_REDIS_STS has $RB_REDIS_REPLICAS replica(s): restored to that"
}

rb__redis_pods() {
  rb_kubectl get pods -n "$RB_NAMESPACE" -l "app=$RB_REDIS_STS" -o name
}

rb__redis_apply() {
  RB_REDIS_APPLY_MS=$(rb_now_ms)
  RB_REDIS_REPLICAS=$(rb_kubectl get statefulset "$RB_REDIS_STS" -n "$RB_NAMESPACE" -o 'jsonpath={.spec.replicas}') || return 1
  rb_mark redis-replicas "statefulset/$RB_REDIS_STS had $RB_REDIS_REPLICAS replica(s)"
  rb_kubectl scale "statefulset/$RB_REDIS_STS" -n "$RB_NAMESPACE" --replicas=0 || return 1
  local tries=0
  while [ -n "$(rb__redis_pods)" ] && [ "$tries" -lt 600 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  [ -z "$(rb__redis_pods)" ] || return 1
  rb_mark redis-gone "no $RB_REDIS_STS pod left"
}

rb__redis_revert() {
  rb_kubectl scale "statefulset/$RB_REDIS_STS" -n "$RB_NAMESPACE" --replicas="$RB_REDIS_REPLICAS" &&
    rb_kubectl rollout status "statefulset/$RB_REDIS_STS" -n "$RB_NAMESPACE" --timeout="${RB_REDIS_ROLLOUT}s"
}

rb_redis_back() {
  local ready
  ready=$(rb_kubectl get statefulset "$RB_REDIS_STS" -n "$RB_NAMESPACE" -o 'jsonpath={.status.readyReplicas}') || return 1
  echo "statefulset/$RB_REDIS_STS: ${ready:-0} of $RB_REDIS_REPLICAS replica(s) Ready"
  [ "${ready:-0}" = "$RB_REDIS_REPLICAS" ]
}
