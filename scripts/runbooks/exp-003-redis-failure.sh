#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-003: Redis failure, the cache layer removed (docs/runbooks.md#exp-003).
#
# --mode scale-to-zero: the seed's `kubectl scale statefulset/redis --replicas=0` (the
# replica count read first and restored, then `rollout status`); --mode latency:
# latency-injector delays every client's traffic to the Redis Service by --latency-ms
# (remote mode, in the Redis pods). k6 browses the products (--vus) and logs in (half as
# many users) meanwhile.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-003 "Redis failure (cache layer removed)" \
  "When Redis becomes unavailable, all services that depend on it for caching gracefully fall back to the database and continue serving requests (with increased latency), without throwing unhandled errors."
rb_option --mode MODE scale-to-zero "scale-to-zero (the StatefulSet scaled to 0) or latency (latency-injector --target)"
rb_option --redis REDIS redis "the Redis StatefulSet and Service"
rb_option --latency-ms LATENCY 5000 "--mode latency: the delay added to Redis traffic" count
rb_option --clients CLIENTS "product-service,auth-service" "the Deployments that use Redis (comma-separated): their pods stay Ready, their logs free of errors"
rb_option --error-log-pattern ERRPAT '"level":"error"|"level":50|"level":60|Unhandled' "an unhandled error in the clients' logs (grep -E)"
rb_option --rollout-timeout ROLLOUT 300 "at most this long for Redis to be back" seconds
rb_defaults baseline=60 fault=60 recovery=60 vus=20
rb_parse_args "$@"
rb_uses_kube

case $MODE in
  scale-to-zero | latency) ;;
  *) rb_fail 2 "--mode must be scale-to-zero or latency, not '$MODE'" ;;
esac
[[ $CLIENTS =~ ^[a-z0-9-]+(,[a-z0-9-]+)*$ ]] || rb_fail 2 "--clients must be Deployment names separated by commas, not '$CLIENTS'"
IFS=, read -r -a CLIENT_LIST <<<"$CLIENTS"

rb_load products products.js
rb_load auth auth.js "VUS=$(((RB_VUS + 1) / 2))"

FAULT_START_MS=""

rb_hook_preflight() {
  rb_kubectl get deployment -n "$RB_NAMESPACE" "${CLIENT_LIST[@]}" -o name >/dev/null 2>&1 ||
    rb_fail 2 "--clients: not every one of ${CLIENTS} is a Deployment in $RB_NAMESPACE"
  [ "$MODE" != scale-to-zero ] || rb_redis_preflight
}

# scale-to-zero: lib/redisdown.sh (shared with the game day).
if [ "$MODE" = scale-to-zero ]; then
  rb_redis_down redis "$REDIS" "$ROLLOUT"
else
  rb_fault_tool redis latency-injector "${RB_KUBE_ARGS[@]}" --target "$REDIS" --latency-ms "$LATENCY" \
    --duration "${RB_FAULT_DURATION}s"
fi

rb_hook_injected() {
  [ -n "$FAULT_START_MS" ] || FAULT_START_MS=${RB_REDIS_APPLY_MS:-$(rb_now_ms)}
}

# While the fault is in place: the clients' pods (their readiness probe is /health).
rb_hook_tick() {
  local c
  for c in "${CLIENT_LIST[@]}"; do
    rb_kubectl get pods -n "$RB_NAMESPACE" -l "app=$c" --no-headers \
      -o 'custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,DELETING:.metadata.deletionTimestamp' \
      >>"$RB_DIR/faults/clients.log" 2>&1 || printf 'unreadable:%s False <none>\n' "$c" >>"$RB_DIR/faults/clients.log"
  done
}

# Pods being deleted (an earlier rollout's) are not the clients' health.
clients_stayed_ready() {
  local name ready deleting total=0 not_ready=0
  while read -r name ready deleting; do
    [ "$deleting" = "<none>" ] || continue
    total=$((total + 1))
    [ "$ready" = True ] || not_ready=$((not_ready + 1))
  done <"$RB_DIR/faults/clients.log"
  echo "$not_ready of $total samples of the clients' pods not Ready (faults/clients.log)"
  [ "$total" -gt 0 ] && [ "$not_ready" -eq 0 ]
}

no_unhandled_errors() {
  local c since n total=0
  since=$((($(rb_now_ms) - FAULT_START_MS) / 1000 + 1))
  for c in "${CLIENT_LIST[@]}"; do
    rb_kubectl logs -n "$RB_NAMESPACE" -l "app=$c" --tail=-1 --prefix --since="${since}s" --max-log-requests=20 \
      >"$RB_DIR/faults/logs-$c.txt" 2>&1 || {
      echo "cannot read the logs of $c"
      return 1
    }
    n=$(grep -c -E -- "$ERRPAT" "$RB_DIR/faults/logs-$c.txt") || n=0
    total=$((total + n))
  done
  echo "$total log lines of $CLIENTS since the injection match '$ERRPAT' (faults/logs-*.txt)"
  [ "$total" -eq 0 ]
}

rb_check "baseline error rate < 1%" window=baseline metric=error-rate lt=1
rb_check_cmd "health endpoints answer 200 (the clients' pods stay Ready)" -- clients_stayed_ready
rb_check "GET /v1/products continues returning data" window=fault request=products metric=error-rate lt=1
rb_check "POST /v1/auth/login continues working" window=fault request=auth-login metric=error-rate lt=1
rb_check_cmd "no unhandled errors (fallback silent or a warning)" -- no_unhandled_errors
rb_check "products p95 < 3x baseline" window=fault request=products metric=p95-ratio lt=3
rb_check "login p95 < 3x baseline" window=fault request=auth-login metric=p95-ratio lt=3
rb_main
