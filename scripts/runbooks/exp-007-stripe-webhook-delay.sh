#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-007: Stripe webhook processing delay (docs/runbooks.md#exp-007).
#
# latency-injector in remote mode (`--service TARGET --endpoint /v1/webhooks/stripe
# --latency-ms L`, docs/remote.md): an ephemeral container in every Running pod of the
# target delays the webhook requests at the server (other paths untouched) for
# --delay-duration (the seed's 120 s). At the injection the runbook creates --orders payment intents (orders
# in PENDING_PAYMENT, with a token of its own: $TOKEN, else one login) and, once the delay
# holds in every pod, a Stripe-like sender (--sender, the lab's lab-stripe: it signs each
# event as Stripe does and retries timeouts and non-2xx answers with back-off) delivers
# payment_intent.succeeded for every PENDING_PAYMENT order. The deliveries are a custom
# fault that ends when the sender has finished: its retries go on after the delay is
# gone, as Stripe's do. --fault-duration (300 s: the seed's "after 5 minutes") caps it:
# a sender still retrying then is stopped. Every delivery, retry and outcome is in
# faults/stripe.ndjson. k6 browses the catalogue
# meanwhile (the abort guard's view of the platform).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-007 "Stripe webhook processing delay" \
  "When the order-payment-service is slow to respond to Stripe webhooks, Stripe retries successfully, and no orders are left in a permanently broken state."
rb_option --target TARGET order-payment-service "the Deployment whose webhook endpoint is delayed (pods labelled app=TARGET)"
rb_option --endpoint ENDPOINT /v1/webhooks/stripe "the path delayed (latency-injector --endpoint)"
rb_option --latency-ms LATENCY 10000 "the delay of each webhook request, in milliseconds" count
rb_option --delay-duration DELAY_S 120 "how long the delay holds (latency-injector -d); --fault-duration caps the deliveries after it" seconds
rb_option --orders ORDERS 10 "payment intents created at the injection (orders in PENDING_PAYMENT to settle)" count
rb_option --orders-url ORDERS_URL "" "the order inspection endpoint (GET URL?status=S, GET URL/summary); default \$BASE_URL/v1/payments/orders"
rb_option --sender SENDER lab-stripe "the Stripe-like sender (lab-stripe's interface: --url URL ... settle --orders-url URL)"
rb_option --sender-timeout-ms SENDER_TIMEOUT 10000 "the sender's per-attempt timeout (Stripe gives up on an attempt after about 10 s)" count
rb_option --sender-attempts ATTEMPTS 8 "deliveries per event before the sender gives up" count
rb_defaults baseline=30 fault=300 recovery=60 vus=5
rb_parse_args "$@"
rb_uses_kube

[[ $ENDPOINT =~ ^/[A-Za-z0-9/._-]*$ ]] || rb_fail 2 "--endpoint must be a path such as /v1/webhooks/stripe, not '$ENDPOINT'"
[ "$DELAY_S" -lt "$RB_FAULT_DURATION" ] ||
  rb_fail 2 "--delay-duration ($DELAY_S s) must be shorter than --fault-duration ($RB_FAULT_DURATION s): the retries need time after the delay"
ORDERS_URL=${ORDERS_URL:-$RB_BASE_URL/v1/payments/orders}
WEBHOOK_URL=$RB_BASE_URL$ENDPOINT
SENDER_BIN=""

rb_load products products.js
rb_fault_tool delay latency-injector "${RB_KUBE_ARGS[@]}" --service "$TARGET" --endpoint "$ENDPOINT" \
  --latency-ms "$LATENCY" -d "${DELAY_S}s"

TOKEN_=""
SENDER_PID=""
SENDER_RC=""
PODS=0
INTENTS=()

rb_hook_preflight() {
  command -v jq >/dev/null 2>&1 || rb_fail 2 "jq not found: this runbook reads the service's JSON answers with it (apt-get install jq)"
  rb__require_bin SENDER_BIN "$SENDER"
  curl -sS -f -m 10 -o /dev/null "$ORDERS_URL/summary" ||
    rb_fail 3 "cannot read $ORDERS_URL/summary (--orders-url): the order checks need it"
  PODS=$(rb_kubectl get pods -n "$RB_NAMESPACE" -l "app=$TARGET" --field-selector=status.phase=Running -o name | wc -l)
  [ "$PODS" -gt 0 ] || rb_fail 2 "no Running pod labelled app=$TARGET in $RB_NAMESPACE"
}

# login: $TOKEN, else one login (LOGIN_EMAIL, LOGIN_PASSWORD, as payment.js).
login() {
  if [ -n "${TOKEN:-}" ]; then
    TOKEN_=$TOKEN
    return 0
  fi
  local file=$RB_DIR/faults/login.json
  jq -n --arg email "${LOGIN_EMAIL:-runbook-exp007@lomash-wood.test}" --arg password "${LOGIN_PASSWORD:-Password123!}" \
    '{email: $email, password: $password}' |
    curl -sS -m 10 -o "$file" -H 'Content-Type: application/json' --data-binary @- "$RB_BASE_URL/v1/auth/login" || return 1
  TOKEN_=$(rb_verdict get "$file" /accessToken 2>/dev/null || rb_verdict get "$file" /token) || return 1
}

# Creates --orders payment intents, waits until the delay holds in every pod of the
# target (at most 120 s; the observation loop, and so the abort guard, waits with it: on
# the lab the ephemeral containers start within 2-3 s), then starts the sender.
deliveries_apply() {
  login || { echo "cannot log in at $RB_BASE_URL/v1/auth/login"; return 1; }
  local n file intent
  for n in $(seq 1 "$ORDERS"); do
    file=$RB_DIR/faults/intent-$n.json
    curl -sS -f -m 15 -o "$file" -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN_" \
      --data '{"amount":1999,"currency":"gbp"}' "$RB_BASE_URL/v1/payments/create-intent" || { echo "create-intent $n failed"; return 1; }
    intent=$(rb_verdict get "$file" /paymentIntentId) || return 1
    INTENTS+=("$intent")
  done
  printf '%s\n' "${INTENTS[@]}" >"$RB_DIR/faults/intents.txt"
  rb_mark orders-created "$ORDERS payment intents in PENDING_PAYMENT (faults/intents.txt)"
  local deadline=$(($(rb_now_ms) + 120000)) applied=0
  while [ "$(rb_now_ms)" -lt "$deadline" ]; do
    applied=$(grep -c 'fault applied in pod' "$RB_DIR/faults/delay.log" 2>/dev/null) || applied=0
    [ "$applied" -lt "$PODS" ] || break
    sleep 0.2
  done
  [ "$applied" -ge "$PODS" ] || { echo "the delay was not applied in $PODS pods within 120 s (faults/delay.log)"; return 1; }
  rb_mark delay-applied "the webhook delay holds in $PODS pods of $TARGET"
  "$SENDER_BIN" --url "$WEBHOOK_URL" --timeout-ms "$SENDER_TIMEOUT" --attempts "$ATTEMPTS" \
    settle --orders-url "$ORDERS_URL" >"$RB_DIR/faults/stripe.ndjson" 2>"$RB_DIR/faults/stripe.log" &
  SENDER_PID=$!
  echo "$SENDER_PID" >"$RB_DIR/faults/stripe.pid"
  rb_mark sender-started "$(basename "$SENDER_BIN") settles every PENDING_PAYMENT order through $WEBHOOK_URL"
}

# The deliveries end when the sender has finished.
deliveries_ended() {
  [ -n "$SENDER_PID" ] || return 1
  ! kill -0 "$SENDER_PID" 2>/dev/null || return 1
  SENDER_RC=0
  wait "$SENDER_PID" 2>/dev/null || SENDER_RC=$?
  echo "sender exited $SENDER_RC"
}

# Reverting: a sender still running is stopped (aborted run, or --fault-duration reached).
deliveries_revert() {
  if [ -n "$SENDER_PID" ] && kill -0 "$SENDER_PID" 2>/dev/null; then
    kill -TERM "$SENDER_PID" 2>/dev/null || true
    wait "$SENDER_PID" 2>/dev/null || true
    echo "sender stopped before it finished"
  fi
  return 0
}

# The sender is gone. A stopped sender is this shell's child: once it has exited (a
# zombie, which kill -0 still finds) it is reaped here.
deliveries_verify() {
  [ -n "$SENDER_PID" ] || return 0
  local n=0
  while kill -0 "$SENDER_PID" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$SENDER_PID/stat" 2>/dev/null)" != Z ] && [ "$n" -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
  done
  if [ "$(awk '{ print $3 }' "/proc/$SENDER_PID/stat" 2>/dev/null)" = Z ]; then
    wait "$SENDER_PID" 2>/dev/null || true
  fi
  ! kill -0 "$SENDER_PID" 2>/dev/null
}

rb_fault_custom deliveries deliveries_apply deliveries_revert \
  "nothing to undo: the sender's process is stopped (kill the PID in faults/stripe.pid); the orders created stay (payment intents of the run, faults/intents.txt)" \
  "$ORDERS payment intents created, then $SENDER settles every PENDING_PAYMENT order through $WEBHOOK_URL once the delay holds"
rb_fault_ends_when deliveries deliveries_ended
rb_fault_verify deliveries deliveries_verify

# Every event delivered (its last attempt answered 2xx) and the sender says so (exit 0).
all_delivered() {
  local events failed
  events=$(grep -c '"attempts"' "$RB_DIR/faults/stripe.ndjson" 2>/dev/null) || events=0
  failed=$(jq -c 'select(.delivered != true)' "$RB_DIR/faults/stripe.ndjson" 2>/dev/null | head -1)
  echo "$events events, sender exit ${SENDER_RC:-not finished}${failed:+, not delivered: $failed} (faults/stripe.ndjson)"
  [ "$events" -ge "$ORDERS" ] && [ "${SENDER_RC:-x}" = 0 ] && [ -z "$failed" ]
}

# Stripe's retries: events that needed more than one attempt, the first ones timed out.
retries_seen() {
  local retried
  retried=$(jq -c 'select((.attempts | length) > 1)' "$RB_DIR/faults/stripe.ndjson" 2>/dev/null | wc -l)
  echo "$retried events delivered after a retry (faults/stripe.ndjson)"
  [ "$retried" -gt 0 ]
}

# None of the run's orders is still PENDING_PAYMENT: each was settled.
none_pending() {
  local file=$RB_DIR/faults/orders-pending.json stuck
  curl -sS -f -m 10 -o "$file" "$ORDERS_URL?status=PENDING_PAYMENT" || { echo "cannot read $ORDERS_URL?status=PENDING_PAYMENT"; return 1; }
  jq -e '.data | arrays' "$file" >/dev/null 2>&1 || { echo "$ORDERS_URL?status=PENDING_PAYMENT is not {data: [orders]}"; return 1; }
  stuck=$(grep -c -F -x -f <(jq -r '.data[].paymentIntentId' "$file") "$RB_DIR/faults/intents.txt") || stuck=0
  echo "$stuck of the run's $ORDERS orders still PENDING_PAYMENT (faults/orders-pending.json)"
  [ "$stuck" -eq 0 ]
}

# No payment intent has more than one order record.
no_duplicates() {
  local file=$RB_DIR/faults/orders-summary.json dups
  curl -sS -f -m 10 -o "$file" "$ORDERS_URL/summary" || { echo "cannot read $ORDERS_URL/summary"; return 1; }
  dups=$(jq -e '.data.duplicateIntents | arrays | length' "$file" 2>/dev/null) || { echo "$ORDERS_URL/summary has no duplicateIntents list"; return 1; }
  echo "$dups payment intents with more than one order record (faults/orders-summary.json)"
  [ "$dups" -eq 0 ]
}

rb_check "baseline error rate < 1%" window=baseline request=products metric=error-rate lt=1
rb_check_cmd "Stripe retries visible (deliveries retried)" -- retries_seen
rb_check_cmd "all events eventually processed successfully" -- all_delivered
rb_check_cmd "no orders stuck in PENDING_PAYMENT" -- none_pending
rb_check_cmd "no duplicate order records" -- no_duplicates
rb_main
