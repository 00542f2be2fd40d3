# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# The abort guard (seed safety rule: stop at once if data loss is detected or the error
# rate exceeds 10%). Once a second while faults are in place: chaos-verdict judges the
# error rate over the sliding window (see docs/runbooks.md), and --guard-cmd, when given,
# is the operator's data-loss check. A trip stops every fault in parallel and records the
# breach, the trip and the moment every fault was gone; the recovery is still validated.

RB_GUARD_LOADS=()

# rb_guard_loads NAME...: the loads the guard judges (default: every load). EXP-002 drives
# the order endpoints into 503s on purpose; its guard watches the rest of the platform.
rb_guard_loads() {
  local name known existing
  for name in "$@"; do
    known=0
    for existing in "${RB_LOAD_NAMES[@]}"; do
      [ "$existing" != "$name" ] || known=1
    done
    [ "$known" -eq 1 ] || rb_fail 2 "internal: rb_guard_loads: no load named '$name' (declare it with rb_load first)"
    RB_GUARD_LOADS+=("$name")
  done
}

# rb__guard_tick: 0 to go on; 1 when the guard tripped (RB_TRIP_BY, RB_TRIP_REASON,
# RB_TRIP_BREACH set).
rb__guard_tick() {
  local out rc=0 args=(guard --state "$RB_DIR/guard/state.json"
    --error-rate "$RB_GUARD_ERROR_RATE" --window "$RB_GUARD_WINDOW"
    --min-samples "$RB_GUARD_MIN_SAMPLES" --breaches "$RB_GUARD_BREACHES")
  local p
  if [ "${#RB_GUARD_LOADS[@]}" -gt 0 ]; then
    for p in "${RB_GUARD_LOADS[@]}"; do
      args+=(--points "$RB_DIR/k6/$p.ndjson")
    done
  else
    for p in "${RB_POINTS[@]}"; do
      args+=(--points "$p")
    done
  fi
  out=$(rb_verdict "${args[@]}" 2>&1) || rc=$?
  printf '%s\n' "$out" >>"$RB_DIR/guard/guard.log"
  case $rc in
    0) ;;
    6)
      printf '%s\n' "$out" >"$RB_DIR/guard/trip.json"
      RB_TRIP_BY=guard
      RB_TRIP_REASON=$(rb_verdict get "$RB_DIR/guard/trip.json" /reason 2>/dev/null || printf 'error rate above %s%%' "$RB_GUARD_ERROR_RATE")
      RB_TRIP_BREACH=$(rb_verdict get "$RB_DIR/guard/trip.json" /breachStartedAt 2>/dev/null || true)
      return 1
      ;;
    129 | 130 | 143)
      # The operator's signal reached the guard (same process group) before our trap.
      rb__on_signal "$(kill -l $((rc - 128)))"
      ;;
    *)
      # A guard that cannot judge is no guard: stop the faults rather than run blind.
      RB_TRIP_BY=error
      RB_TRIP_REASON="the abort guard failed (exit $rc): ${out//$'\n'/ }"
      RB_TRIP_BREACH=""
      return 1
      ;;
  esac
  if [ -n "$RB_GUARD_CMD" ]; then
    rc=0
    out=$(timeout 10 "$RB_GUARD_CMD" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ]; then
      RB_TRIP_BY=guard-cmd
      RB_TRIP_REASON="--guard-cmd $RB_GUARD_CMD failed (exit $rc): $(printf '%s' "$out" | tail -n 1)"
      RB_TRIP_BREACH=""
      return 1
    fi
  fi
  if ! rb__load_alive; then
    # A Ctrl-C reaches k6 too (same process group) and k6 may be gone before this shell's
    # INT trap had its turn (seen once in CI): give a pending signal a point to be handled
    # (its trap records the operator's abort and exits) before calling it an error.
    sleep 0.5
    RB_TRIP_BY=error
    RB_TRIP_REASON="k6 stopped during the observation: no load, no measurement (see k6/*.log)"
    RB_TRIP_BREACH=""
    return 1
  fi
  return 0
}

# rb__abort BY REASON: records the abort and stops every fault in parallel. The first
# abort is the cause; a later one (Ctrl-C during a guard trip) is recorded too.
rb__abort() {
  local by=$1 reason=$2 now
  now=$(rb_now)
  if [ -z "${RB_ABORT:-}" ]; then
    RB_ABORT=$by
    rb_log "ABORT ($by): $reason"
  fi
  rb__tl abort "$by" "$now" "$reason"
  if rb__any_fault_active; then
    rb__stop_all_faults
    rb__tl mark faults-removed "$(rb_now)" "every fault stopped after the abort"
  else
    rb__stop_all_faults
  fi
}

# rb__trip: the guard (or its command) tripped.
rb__trip() {
  [ -z "$RB_TRIP_BREACH" ] || rb__tl mark guard-breach "$RB_TRIP_BREACH" "first breach of the tripping streak"
  rb__tl mark guard-trip "$(rb_now)" "$RB_TRIP_REASON"
  rb__abort "$RB_TRIP_BY" "$RB_TRIP_REASON"
}
