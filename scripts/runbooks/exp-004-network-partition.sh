#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-004: network partition order-payment-service -> auth-service (docs/runbooks.md#exp-004).
#
# net-partition in remote mode (`-s SOURCE -t UPSTREAM`, docs/remote.md): an ephemeral
# container in every Running pod of the source cuts the upstream Service's ClusterIP and
# its endpoints, kept current while the run lasts, for --fault-duration; the tool reverts
# it itself (at its duration, on `net-partition --stop RUNID`, on Ctrl-C). k6 creates
# payment intents with a bearer token throughout. While the partition holds, the runbook
# also asks create-intent itself once a second (with a token of its own: $TOKEN, else one
# login as k6 does) and keeps each answer's status and body: what a client is told.
# create-intent fails on purpose here, so the abort guard watches a products sentinel (a
# failure that spreads beyond the payment path aborts the run), as in EXP-002.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-004 "Network partition between services" \
  "When the order-payment-service cannot reach the auth-service (for token verification), requests fail with 401 and a clear error, and the issue self-resolves when connectivity is restored."
rb_option --target TARGET order-payment-service "the source: the Deployment whose pods (label app=TARGET) are cut off"
rb_option --upstream UPSTREAM auth-service "the Service the source can no longer reach"
rb_option --orders-url ORDERS_URL "" "the order inspection endpoint (GET URL/summary: {total}); default \$BASE_URL/v1/payments/orders"
rb_option --log-pattern PATTERN "" "what the source's error log lines must name during the partition (default: the upstream's name)"
rb_defaults baseline=30 fault=120 recovery=60 vus=5
rb_parse_args "$@"
rb_uses_kube

[[ $UPSTREAM =~ ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || rb_fail 2 "--upstream must be a Service name, not '$UPSTREAM'"
ORDERS_URL=${ORDERS_URL:-$RB_BASE_URL/v1/payments/orders}
PATTERN=${PATTERN:-$UPSTREAM}

rb_load payment payment.js
rb_load sentinel products.js VUS=3
rb_guard_loads sentinel
rb_fault_tool partition net-partition "${RB_KUBE_ARGS[@]}" -s "$TARGET" -t "$UPSTREAM" -d "${RB_FAULT_DURATION}s"

ORDERS_BEFORE=""
PROBE_TOKEN=""
PROBE_LOGIN_TRIED=0
PROBES=0

# orders_total: the order count the inspection endpoint reports now.
orders_total() {
  local file=$RB_TMP/orders-summary.json
  curl -sS -f -m 10 -o "$file" "$ORDERS_URL/summary" || return 1
  rb_verdict get "$file" /data/total 2>/dev/null || rb_verdict get "$file" /total
}

rb_hook_preflight() {
  command -v jq >/dev/null 2>&1 || rb_fail 2 "jq not found: this runbook reads the service's JSON answers with it (apt-get install jq)"
  rb_kubectl get service "$UPSTREAM" -n "$RB_NAMESPACE" -o name >/dev/null 2>&1 ||
    rb_fail 2 "no Service $UPSTREAM in $RB_NAMESPACE (--upstream)"
  ORDERS_BEFORE=$(orders_total) ||
    rb_fail 3 "cannot read the order count from $ORDERS_URL/summary (--orders-url): the no-partial-write check needs it"
  [[ $ORDERS_BEFORE =~ ^[0-9]+$ ]] || rb_fail 3 "$ORDERS_URL/summary gave no order total ('$ORDERS_BEFORE')"
  rb_log "orders before the run: $ORDERS_BEFORE ($ORDERS_URL/summary)"
}

# probe_token: $TOKEN, else one login (LOGIN_EMAIL, LOGIN_PASSWORD, as payment.js).
probe_token() {
  if [ -n "${TOKEN:-}" ]; then
    PROBE_TOKEN=$TOKEN
    return 0
  fi
  local file=$RB_DIR/faults/probe-login.json
  jq -n --arg email "${LOGIN_EMAIL:-runbook-probe@lomash-wood.test}" --arg password "${LOGIN_PASSWORD:-Password123!}" \
    '{email: $email, password: $password}' |
    curl -sS -m 10 -o "$file" -H 'Content-Type: application/json' --data-binary @- "$RB_BASE_URL/v1/auth/login" || return 1
  PROBE_TOKEN=$(rb_verdict get "$file" /token 2>/dev/null || rb_verdict get "$file" /accessToken 2>/dev/null ||
    rb_verdict get "$file" /data/accessToken 2>/dev/null) || return 1
}

# Once a second while the partition holds: create-intent as a client asks it; the
# status and the body kept (faults/probes.tsv, faults/probe-N.json).
# A login that fails is not tried again (each try could take its 10 s time-out from the
# loop): the clear-message check then fails for want of probes.
# A probe runs in the background, one at a time: while auth-service is cut off an answer
# takes the service's auth time-out (seconds), and the loop this hook shares with the
# abort guard must keep its one-second beat. Its line is written once it answered (the
# answer's time: its start plus curl's total time).
PROBE_PID=""
PROBE_STARTED=""
rb_hook_tick() {
  if [ -z "$PROBE_TOKEN" ]; then
    [ "$PROBE_LOGIN_TRIED" -eq 0 ] || return 0
    PROBE_LOGIN_TRIED=1
    probe_token || {
      rb_log "probe: no token (\$TOKEN unset and the login at $RB_BASE_URL/v1/auth/login failed): create-intent is not probed"
      return 0
    }
  fi
  probe_collect || return 0
  PROBES=$((PROBES + 1))
  PROBE_STARTED=$(rb_now_ms)
  curl -s -m 10 -o "$RB_DIR/faults/probe-$PROBES.json" -w '%{http_code} %{time_total}' -X POST \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $PROBE_TOKEN" \
    --data '{"amount":1999,"currency":"gbp"}' "$RB_BASE_URL/v1/payments/create-intent" \
    >"$RB_DIR/faults/probe-$PROBES.code" 2>/dev/null &
  PROBE_PID=$!
}

# probe_collect: 0 once no probe is in flight (the last one's line in faults/probes.tsv),
# 1 while one is.
probe_collect() {
  local code="" secs=0 at
  [ -n "$PROBE_PID" ] || return 0
  ! kill -0 "$PROBE_PID" 2>/dev/null || return 1
  wait "$PROBE_PID" 2>/dev/null || true
  PROBE_PID=""
  read -r code secs <"$RB_DIR/faults/probe-$PROBES.code" || true
  at=$(awk -v s="$PROBE_STARTED" -v t="${secs:-0}" 'BEGIN { printf "%d", s + t * 1000 }')
  printf '%s\t%s\tprobe-%s.json\n' "$at" "${code:-000}" "$PROBES" >>"$RB_DIR/faults/probes.tsv"
}

# After the recovery, before the checks judge the probes: the last one answered (or
# timed out after 10 s).
rb_hook_recovered() {
  while ! probe_collect; do
    sleep 0.1
  done
}

# On every way to the result (an abort too): a probe still in flight is stopped (a
# background curl ignores the operator's Ctrl-C) and not counted.
rb_hook_finish() {
  [ -n "$PROBE_PID" ] || return 0
  kill "$PROBE_PID" 2>/dev/null || true
  wait "$PROBE_PID" 2>/dev/null || true
  PROBE_PID=""
}

# Every refusal a client saw while the partition held is a 401 or 503 whose JSON body
# says what went wrong (an `error` or `message` of its own, not a bare status text).
clear_refusals() {
  local code file refused=0 bad=()
  [ -s "$RB_DIR/faults/probes.tsv" ] || { echo "no probe answered while the partition held (faults/probes.tsv)"; return 1; }
  while IFS=$'\t' read -r _ code file; do
    [[ $code =~ ^2 ]] && continue
    refused=$((refused + 1))
    local text
    text=$(rb_verdict get "$RB_DIR/faults/$file" /error 2>/dev/null || rb_verdict get "$RB_DIR/faults/$file" /message 2>/dev/null) || text=""
    if [[ ! $code =~ ^(401|503)$ ]] || [ ${#text} -lt 10 ] || [[ $text =~ ^(Internal Server Error|Service Unavailable|Unauthorized)$ ]]; then
      bad+=("$code '${text:-no message}' ($file)")
    fi
  done <"$RB_DIR/faults/probes.tsv"
  [ "$refused" -gt 0 ] || { echo "no probe was refused while the partition held: was auth-service cut off? (faults/probes.tsv)"; return 1; }
  if [ "${#bad[@]}" -gt 0 ]; then
    echo "${#bad[@]} of $refused refusals unclear: ${bad[0]}"
    return 1
  fi
  echo "$refused refusals, each a 401/503 with an error message, e.g. '$text' (faults/probes.tsv)"
}

# The source's error log names the upstream during the run.
logs_name_the_upstream() {
  rb_kubectl logs -n "$RB_NAMESPACE" -l "app=$TARGET" --tail=-1 --prefix --max-log-requests=20 \
    --since-time="$(date -u -d "@$((RB_INJECTED_MS / 1000))" +%Y-%m-%dT%H:%M:%SZ)" >"$RB_DIR/faults/target-logs.txt" 2>&1 || true
  local n
  n=$(grep -i 'error' "$RB_DIR/faults/target-logs.txt" | grep -c -F -- "$PATTERN") || n=0
  echo "$n error log lines of $TARGET since the injection name '$PATTERN' (faults/target-logs.txt)"
  [ "$n" -gt 0 ]
}

# Every order written during the run is one a client was told was created (2xx): an order
# written for a refused request is a partial write. Assumes the runbook's load is the
# only writer of orders meanwhile (staging; the count is read before and after).
no_partial_writes() {
  local after created
  after=$(orders_total) || { echo "cannot read the order count from $ORDERS_URL/summary"; return 1; }
  created=$(grep -F '"metric":"http_req_duration"' "$RB_DIR/k6/payment.ndjson" | grep -F '"type":"Point"' |
    grep -F '"name":"payment-intent"' | grep -c -E '"status":"2[0-9][0-9]"') || created=0
  # The runbook's own probes create intents too (those answered before the partition held).
  local probed written=$((after - ORDERS_BEFORE))
  probed=$(cut -f2 "$RB_DIR/faults/probes.tsv" 2>/dev/null | grep -c '^2') || probed=0
  echo "$written orders written during the run, $((created + probed)) intents answered 2xx ($created to k6, $probed to the probes; $ORDERS_URL/summary, k6/payment.ndjson, faults/probes.tsv)"
  [ "$written" -le $((created + probed)) ]
}

rb_check "baseline error rate < 1%" window=baseline request=payment-intent metric=error-rate lt=1
rb_check "create-intent refused with 401/503 during the partition" window=fault request=payment-intent metric=status:401,503 gt=0
rb_check "no 500, 502, 504 or unanswered create-intent during the partition" window=fault request=payment-intent metric=status:500,502,504,0 eq=0
rb_check_cmd "refusals carry a clear error message" -- clear_refusals
rb_check_cmd "error logged with the upstream ($UPSTREAM) named" -- logs_name_the_upstream
rb_check_cmd "no partially processed orders" -- no_partial_writes
rb_check "requests succeed again after the partition" window=recovery request=payment-intent metric=error-rate lt=1
rb_main
