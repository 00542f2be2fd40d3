#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-009: regional failover, a timed guided procedure (docs/runbooks.md#exp-009).
#
# The steps come from a checklist file (checklists/regional-failover.tsv: commands run as
# argument vectors, the operator's confirmations, a DNS propagation wait); the RTO clock
# runs from the first step to the end of the smoke test against the failover region's
# URL (health, products, login, a signed Stripe webhook). k6 loads the public URL
# throughout; the abort guard halts the procedure where it is.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-009 "Regional failover (annual)" \
  "The full regional failover procedure can be executed within the RTO of 30 minutes, and the system serves traffic correctly from the failover region (eu-west-2) afterwards."
rb_option --checklist CHECKLIST "$RB_LIB_DIR/checklists/regional-failover.tsv" "the procedure (format: docs/runbooks.md#exp-009)"
rb_option --set SETS "" "NAME=VALUE for \${NAME} in the checklist" list
rb_option --failover-url FAILOVER_URL "" "the failover region's URL the smoke test loads (required)"
rb_option --rto RTO 1800 "pass: procedure and smoke test done within S seconds" seconds
rb_option --dns-within DNS_WITHIN 300 "pass: DNS propagated within S seconds of the Route 53 update" seconds
rb_option --dns-timeout DNS_TIMEOUT 600 "stop waiting for DNS after S seconds (the step fails)" seconds
rb_option --dns-interval DNS_INTERVAL 5 "seconds between DNS polls" seconds
rb_option --resolver RESOLVERS "" "a resolver the DNS answer is checked at (default: the system's)" list
rb_option --dig DIG dig "a dig-compatible program (dig +short NAME @RESOLVER)"
rb_option --smoke-iterations SMOKE_ITERATIONS 3 "iterations of the smoke test" count
rb_option --webhook-check-cmd WEBHOOK_CHECK "" "exits 0 when the test webhooks were processed in the failover region (else a manual check)"
rb_defaults baseline=60 fault=3600 recovery=60 vus=5
rb_parse_args "$@"
rb_destructive

if [ "$RB_HELP" -eq 0 ]; then
  [[ $FAILOVER_URL =~ ^https?://[^[:space:]/]+ ]] || rb_fail 2 "--failover-url must be the failover region's http(s) URL, not '$FAILOVER_URL'"
  for pair in "${SETS[@]}"; do
    [[ $pair =~ ^[A-Za-z_][A-Za-z0-9_]*=.*$ ]] || rb_fail 2 "--set takes NAME=VALUE, not '$pair'"
  done
  for r in "${RESOLVERS[@]}"; do
    [[ $r =~ ^[A-Za-z0-9.:-]+$ ]] || rb_fail 2 "--resolver must be an address or host name, not '$r'"
  done
  if [ -n "$WEBHOOK_CHECK" ] && ! [ -x "$WEBHOOK_CHECK" ]; then
    rb_fail 2 "--webhook-check-cmd must be an executable file, not '$WEBHOOK_CHECK'"
  fi
  [ -n "${STRIPE_WEBHOOK_SECRET:-}" ] || rb_fail 2 "export STRIPE_WEBHOOK_SECRET (the failover endpoint's signing secret, whsec_...): unsigned test webhooks are refused (400)"
  rb_checklist_load "$CHECKLIST" "${SETS[@]}"
fi
CL_DIG=$DIG
CL_RESOLVERS=("${RESOLVERS[@]}")
CL_DNS_INTERVAL=$DNS_INTERVAL
CL_DNS_TIMEOUT=$DNS_TIMEOUT
CL_FINAL=failover_smoke

rb_load products products.js

# The operator's terminal, kept for the procedure's prompts (the library sends the
# fault's own output to its log).
exec {OPERATOR_IN}<&0 {OPERATOR_ERR}>&2
PROCEDURE_PID=""

rb_hook_preflight() {
  if printf '%s\n' "${CL_KINDS[@]}" | grep -qx dns; then
    command -v "$DIG" >/dev/null 2>&1 || rb_fail 2 "$DIG not found: install dig (bind9-dnsutils) or give --dig PATH"
  fi
}

rb_hook_dry_run() {
  printf '    the procedure (%s), clock %s s, then the smoke test against %s:\n' "$CHECKLIST" "$RTO" "$FAILOVER_URL"
  rb_checklist_print
  printf '      smoke: %s\n' "$(rb_show k6 run -e "BASE_URL=$FAILOVER_URL" -e NAME_PREFIX=failover- -e "ITERATIONS=$SMOKE_ITERATIONS" "$RB_REPO/scripts/k6/smoke.js")"
  printf '      webhook: %s\n' "$(rb_show k6 run -e "BASE_URL=$FAILOVER_URL" -e NAME_PREFIX=failover- -e VUS=1 -e DURATION=3s "$RB_REPO/scripts/k6/webhooks.js")"
}

# failover_k6 NAME SCRIPT NAME=VALUE...: one k6 run against the failover region, its points
# beside the main load's.
failover_k6() {
  local name=$1 script=$2 pair argv
  shift 2
  argv=(k6 run --quiet --no-usage-report --out "json=$RB_DIR/k6/$name.ndjson"
    --summary-export "$RB_DIR/k6/$name-summary.json" -e "BASE_URL=$FAILOVER_URL" -e NAME_PREFIX=failover- -e RATE=)
  for pair in "$@"; do
    argv+=(-e "$pair")
  done
  rb__cl_exec "${argv[@]}" "$RB_REPO/scripts/k6/$script"
}

# After the last step, inside the clock: the smoke test and a test webhook.
failover_smoke() {
  rb__cl_say "== smoke test against $FAILOVER_URL"
  failover_k6 failover-smoke smoke.js "ITERATIONS=$SMOKE_ITERATIONS" || rb__cl_say "   k6 smoke failed to run"
  failover_k6 failover-webhook webhooks.js VUS=1 DURATION=3s || rb__cl_say "   k6 webhook failed to run"
  rb__cl_event "${#CL_TITLES[@]}" smoke "done" "$FAILOVER_URL"
}

procedure_apply() {
  mkdir -p "$RB_DIR/procedure" || return 1
  cp "$CHECKLIST" "$RB_DIR/procedure/checklist.tsv" || return 1
  rb_checklist_run "$RB_DIR/procedure" "$OPERATOR_IN" "$OPERATOR_ERR" <&"$OPERATOR_IN" &
  PROCEDURE_PID=$!
}

# The end probe: the procedure ended (done or halted); its k6 points join the verdict's.
procedure_ended() {
  [ -n "$PROCEDURE_PID" ] || return 1
  ! kill -0 "$PROCEDURE_PID" 2>/dev/null || return 1
  smoke_points
}

smoke_points() {
  local name file
  for name in failover-smoke failover-webhook; do
    file=$RB_DIR/k6/$name.ndjson
    if [ -s "$file" ] && [[ " ${RB_POINTS[*]} " != *" $file "* ]]; then
      RB_POINTS+=("$file")
    fi
  done
}

# The revert: halt the procedure where it is (the command in progress is stopped). What
# its steps changed stays: failing back is the failback procedure, not a revert.
procedure_revert() {
  [ -n "$PROCEDURE_PID" ] || return 0
  kill -TERM "$PROCEDURE_PID" 2>/dev/null || true
  local tries=0
  while kill -0 "$PROCEDURE_PID" 2>/dev/null && [ "$tries" -lt 100 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  ! kill -0 "$PROCEDURE_PID" 2>/dev/null
}

procedure_verify() {
  [ -z "$PROCEDURE_PID" ] || ! kill -0 "$PROCEDURE_PID" 2>/dev/null
}

rb_fault_custom failover procedure_apply procedure_revert \
  "the procedure is halted where it is (its commands are stopped); what its steps changed stays: follow the failback section of multi-region.md" \
  "the guided failover procedure of $(basename "$CHECKLIST") ($RTO s RTO clock), then the smoke test against ${FAILOVER_URL:-the failover URL}"
rb_fault_ends_when failover procedure_ended
rb_fault_verify failover procedure_verify
rb_hook_recovered() {
  smoke_points
}

rb_check "baseline error rate < 1%" window=baseline metric=error-rate lt=1
rb_check "procedure and smoke test done within the RTO ($RTO s)" kind=value source=procedure/result.json pointer=/completedSeconds unit=s le="$RTO"
rb_check "every step done and confirmed" kind=value source=procedure/result.json pointer=/stepsNotDone unit=steps eq=0
rb_check "DNS fully propagated within $DNS_WITHIN s of the Route 53 update" kind=value source=procedure/result.json pointer=/dnsPropagatedSeconds unit=s le="$DNS_WITHIN"
rb_check "failover region: health endpoints answer 200" window=run request=failover-health metric=error-rate eq=0
rb_check "failover region: products served" window=run request=failover-products metric=error-rate eq=0
rb_check "failover region: login works" window=run request=failover-auth-login metric=error-rate eq=0
rb_check "failover region: Stripe webhooks received" window=run request=failover-stripe-webhook metric=error-rate eq=0
if [ -n "$WEBHOOK_CHECK" ]; then
  rb_check_cmd "failover region: Stripe webhooks processed" -- "$WEBHOOK_CHECK"
else
  rb_check_manual "failover region: Stripe webhooks processed (Stripe dashboard: the test deliveries succeeded)"
fi
rb_main
