#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-002: database connection pool exhaustion (docs/runbooks.md#exp-002).
#
# The fault: DATABASE_CONNECTION_LIMIT of the target set to --connection-limit with
# `kubectl set env` (its value read first and restored afterwards, whatever it was, or
# removed again when it was not set), the rollout awaited, then a burst of --burst-vus k6
# users on the order endpoints for --burst-duration, then --load-drop seconds of the
# normal load with the limit still low ("recovers when load drops"). A steady payment
# load runs throughout; the abort guard watches a products sentinel (the order endpoints
# answer 503s on purpose here; a failure that spreads beyond them aborts the run).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-002 "Database connection pool exhaustion" \
  "When all Prisma connection pool slots are consumed, new requests return a 503 with a clear error, do not crash the service, and recover when connections are released."
rb_option --target TARGET order-payment-service "the Deployment whose pool is shrunk (its pods: label app=TARGET)"
rb_option --container CONTAINER "" "the container whose environment changes (default: the first)"
rb_option --connection-limit LIMIT 2 "DATABASE_CONNECTION_LIMIT during the fault" count
rb_option --burst-vus BURST_VUS 50 "k6 users of the burst on the order endpoints" count
rb_option --burst-duration BURST 30 "how long the burst lasts" seconds
rb_option --load-drop DROP 15 "seconds of the normal load after the burst, the limit still low" seconds
rb_option --error-pattern PATTERN PrismaClientKnownRequestError "what the target's logs must show when the pool is exhausted"
rb_option --rollout-timeout ROLLOUT 300 "at most this long for each rollout" seconds
rb_defaults baseline=30 fault=900 recovery=60 vus=5
rb_parse_args "$@"
rb_uses_kube

VAR=DATABASE_CONNECTION_LIMIT
rb_load payment payment.js
rb_load sentinel products.js VUS=3
rb_guard_loads sentinel

ORIGINAL=""
ORIGINAL_SET=0
BURST_PID=""
BURST_END_MS=""
PODS_SEEN=()

# read_env OUT: the variable's entry in the Deployment's container spec into ORIGINAL and
# ORIGINAL_SET; refuses a value taken from a ConfigMap or Secret (set env would replace
# the reference with a literal, and restoring it is not what set env does).
read_env() {
  local c=$CONTAINER entry
  if [ -z "$c" ]; then
    c=$(rb_kubectl get deployment "$TARGET" -n "$RB_NAMESPACE" -o 'jsonpath={.spec.template.spec.containers[0].name}') || return 1
    CONTAINER=$c
  fi
  entry=$(rb_kubectl get deployment "$TARGET" -n "$RB_NAMESPACE" \
    -o "jsonpath={.spec.template.spec.containers[?(@.name==\"$c\")].env[?(@.name==\"$VAR\")]}") || return 1
  ORIGINAL="" ORIGINAL_SET=0
  [ -n "$entry" ] || return 0
  printf '%s\n' "$entry" >"$1"
  if rb_verdict get "$1" /valueFrom >/dev/null 2>&1; then
    rb_fail 3 "$VAR of $TARGET/$c comes from a ConfigMap or Secret (valueFrom): change it there by hand; this runbook only restores literal values"
  fi
  ORIGINAL=$(rb_verdict get "$1" /value 2>/dev/null) || ORIGINAL=""
  ORIGINAL_SET=1
}

rb_hook_preflight() {
  [[ $CONTAINER =~ ^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$ ]] || rb_fail 2 "--container must be a container name, not '$CONTAINER'"
  rb_kubectl get deployment "$TARGET" -n "$RB_NAMESPACE" -o name >/dev/null 2>&1 || rb_fail 2 "no Deployment $TARGET in $RB_NAMESPACE"
  read_env "$RB_TMP/env.json" || rb_fail 3 "cannot read the environment of deployment/$TARGET"
  [ -n "$CONTAINER" ] || rb_fail 2 "deployment/$TARGET has no container"
  if [ "$ORIGINAL_SET" -eq 1 ]; then
    rb_log "$VAR of $TARGET/$CONTAINER is now '$ORIGINAL': it is restored to that"
  else
    rb_log "$VAR is not set on $TARGET/$CONTAINER: it is removed again afterwards"
  fi
}

set_env() {
  rb_kubectl set env "deployment/$TARGET" -n "$RB_NAMESPACE" -c "$CONTAINER" "$@" &&
    rb_kubectl rollout status "deployment/$TARGET" -n "$RB_NAMESPACE" --timeout="${ROLLOUT}s"
}

pool_apply() {
  read_env "$RB_DIR/faults/pool-env-before.json" || return 1
  rb_mark env-original "$VAR was $([ "$ORIGINAL_SET" -eq 1 ] && printf "'%s'" "$ORIGINAL" || printf 'not set')"
  set_env "$VAR=$LIMIT" || return 1
  rb_mark rollout-done "$TARGET rolled out with $VAR=$LIMIT"
  rb__tl phase-start burst "$(rb_now)"
  k6 run --quiet --no-usage-report --out "json=$RB_DIR/k6/burst.ndjson" --summary-export "$RB_DIR/k6/burst-summary.json" \
    -e "BASE_URL=$RB_BASE_URL" -e "VUS=$BURST_VUS" -e "DURATION=${BURST}s" -e RATE= -e NAME_PREFIX=burst- \
    "$RB_REPO/scripts/k6/payment.js" >"$RB_DIR/k6/burst.log" 2>&1 &
  BURST_PID=$!
}

# The end probe: the burst over, then --load-drop seconds of normal load.
pool_ended() {
  [ -n "$BURST_PID" ] || return 1
  ! kill -0 "$BURST_PID" 2>/dev/null || return 1
  local now
  now=$(rb_now_ms)
  if [ -z "$BURST_END_MS" ]; then
    BURST_END_MS=$now
    rb__tl phase-end burst "$(rb_now)"
    rb__tl phase-start load-dropped "$(rb_now)"
    [ ! -s "$RB_DIR/k6/burst.ndjson" ] || RB_POINTS+=("$RB_DIR/k6/burst.ndjson")
  fi
  [ $((now - BURST_END_MS)) -ge $((DROP * 1000)) ] || return 1
  rb__tl phase-end load-dropped "$(rb_now)"
}

pool_revert() {
  local rc=0
  if [ -n "$BURST_PID" ] && kill -0 "$BURST_PID" 2>/dev/null; then
    kill -TERM "$BURST_PID" 2>/dev/null || true
    wait "$BURST_PID" 2>/dev/null || true
  fi
  # The pods that ran with the low limit are replaced below: keep their logs first.
  {
    rb_kubectl logs -n "$RB_NAMESPACE" -l "app=$TARGET" -c "$CONTAINER" --tail=-1 --prefix --max-log-requests=20
    rb_kubectl logs -n "$RB_NAMESPACE" -l "app=$TARGET" -c "$CONTAINER" --tail=-1 --prefix --previous --max-log-requests=20
  } >"$RB_DIR/faults/pool-logs.txt" 2>&1 || true
  if [ "$ORIGINAL_SET" -eq 1 ]; then
    set_env "$VAR=$ORIGINAL" || rc=1
  else
    set_env "$VAR-" || rc=1
  fi
  return "$rc"
}

# Removal verified: the variable is what it was.
pool_verify() {
  local was=$ORIGINAL was_set=$ORIGINAL_SET
  read_env "$RB_DIR/faults/pool-env-after.json" || return 1
  [ "$ORIGINAL_SET" -eq "$was_set" ] && [ "$ORIGINAL" = "$was" ]
}

rb_fault_custom pool pool_apply pool_revert \
  "kubectl set env deployment/$TARGET -n $RB_NAMESPACE ${CONTAINER:+-c $CONTAINER }$VAR=<the value read before the injection, printed in the log> (or $VAR- if it was not set), then kubectl rollout status deployment/$TARGET -n $RB_NAMESPACE" \
  "kubectl set env deployment/$TARGET $VAR=$LIMIT, rollout awaited, then $BURST_VUS k6 users on POST /v1/payments/create-intent for $BURST s, then $DROP s of the normal load"
rb_fault_ends_when pool pool_ended
rb_fault_verify pool pool_verify

# While the fault is in place: every pod of the target, its restarts and why.
rb_hook_tick() {
  rb_kubectl get pods -n "$RB_NAMESPACE" -l "app=$TARGET" --no-headers \
    -o 'custom-columns=NAME:.metadata.name,RESTARTS:.status.containerStatuses[*].restartCount,WAITING:.status.containerStatuses[*].state.waiting.reason,LAST:.status.containerStatuses[*].lastState.terminated.reason' \
    >>"$RB_DIR/faults/pool-pods.log" 2>&1 || true
}

logs_show_the_error() {
  local n
  n=$(grep -c -- "$PATTERN" "$RB_DIR/faults/pool-logs.txt" 2>/dev/null) || n=0
  echo "$n log lines of $TARGET contain '$PATTERN' (faults/pool-logs.txt)"
  [ "$n" -gt 0 ]
}

no_crash() {
  local name restarts waiting last bad=() events
  while read -r name restarts waiting last; do
    [ -n "$name" ] || continue
    PODS_SEEN+=("$name")
    if [[ $restarts =~ [1-9] ]] || [[ "$waiting $last" =~ (CrashLoopBackOff|OOMKilled|Error) ]]; then
      bad+=("$name restarts=$restarts waiting=$waiting last=$last")
    fi
  done <"$RB_DIR/faults/pool-pods.log"
  events=$(grep -E 'OOMKilling|BackOff' "$RB_DIR/events.txt" 2>/dev/null | grep -F -- "$TARGET-") || events=""
  if [ "${#bad[@]}" -gt 0 ] || [ -n "$events" ]; then
    # The last sample of each pod that restarted, and the events.
    echo "crashed: $(printf '%s\n' "${bad[@]}" | sort -u -k1,1 | paste -sd ';' -) $(printf '%s' "$events" | awk '{print $3, $4}' | sort -u | paste -sd ';' -)"
    return 1
  fi
  echo "no restart, OOMKilled or CrashLoopBackOff in $(printf '%s\n' "${PODS_SEEN[@]}" | sort -u | wc -l) pods seen during the fault"
}

rb_check "baseline error rate < 1%" window=baseline request=payment-intent metric=error-rate lt=1
rb_check "pool exhausted: the burst got 503s" window=burst request=burst-payment-intent metric=status:503 gt=0
rb_check "503s, not crashes or timeouts (no 500, 502, 504 or unanswered request)" window=fault metric=status:500,502,504,0 eq=0
rb_check_cmd "logs contain $PATTERN" -- logs_show_the_error
rb_check "recovers when the load drops (limit still $LIMIT)" window=load-dropped request=payment-intent metric=error-rate lt=1
rb_check_cmd "no OOMKilled or CrashLoopBackOff" -- no_crash
rb_check "back to baseline within 60 s of the limit restored" metric=recovery-seconds le=60
rb_main
