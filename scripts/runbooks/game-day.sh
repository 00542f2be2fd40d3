#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# The game day (docs/runbooks.md#game-day): 2 or 3 faults from a scenario file, started
# together with their offsets while k6 browses the products and books appointments; a
# restore clock (20 min) from the first fault; a timeline of every fault and check; and
# debrief.md in the run directory, pre-filled for the team's debrief.
#
# Faults (lib/scenario.sh reads the file; each kind reuses the library of its EXP runbook):
# redis-down (lib/redisdown.sh, EXP-003's scale to zero), pod-oom (lib/podoom.sh,
# EXP-006's in-pod memory-leak), booking-surge (a second k6 run of appointments.js,
# ramping to the scenario's peak; its requests are named surge-appointment-book).
# The restore clock: should a fault still be in place when it runs out, every fault is
# stopped then (the game day is lost, the platform is not left broken).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment GAME-DAY "Game day (simultaneous faults, restore clock)" \
  "With 2-3 faults at once (the seed's example: Redis down, one product-service pod OOMKilled, a surge of appointment bookings), the platform keeps serving what does not depend on the failed part, every fault is removed by its documented rollback, and normal operation (health 200, products served, bookings succeed, error rate and p95 back in the baseline band) is restored within the restore clock."
rb_option --scenario SCENARIO redis-oom-surge.conf "the scenario file: a name in scripts/runbooks/scenarios/, or a path (format: docs/runbooks.md#game-day)"
rb_option --restore-clock CLOCK "" "the restore clock from the first fault (default: the scenario's restore-clock, else 20m)" seconds
rb_option --booking-rate BOOKING_RATE 2 "steady appointment bookings per second for the whole run (the surge comes on top)" count
rb_option --replaced-within REPLACED 30 "pod-oom: pass when the container is Ready again within S seconds of the OOM kill" seconds
rb_option --leak-binary LEAK_BIN "" "pod-oom: a statically linked memory-leak for the pod (default: \$CHAOS_DIST/memory-leak, else dist/memory-leak)"
rb_option --rollout-timeout ROLLOUT 300 "redis-down: at most this long for Redis to be back" seconds
rb_defaults baseline=60 fault=300 recovery=120 vus=20
rb_parse_args "$@"
rb_uses_kube

case $SCENARIO in
  */*) ;;
  *) SCENARIO="$RB_REPO/scripts/runbooks/scenarios/$SCENARIO" ;;
esac
rb_scenario_read "$SCENARIO"
CLOCK=${CLOCK:-${SC_CLOCK:-1200}}

rb_load products products.js
rb_load bookings appointments.js "START_RATE=$BOOKING_RATE" "PEAK_RATE=$BOOKING_RATE" RAMP=1s

SURGE_NAME=""
SURGE_PID=""
SURGE_ARGV=()
GD_TARGETS=()
GD_READY0=()

# The booking surge: appointments.js ramping from the steady rate to PEAK over RAMP, held,
# back down over RAMP, all within the fault's time; its points join the run's once its first request is in.
surge_declare() {
  local i=$1 name=${SC_NAMES[$1]} total hold
  SURGE_NAME=$name
  total=${SC_FOR[$i]:-$RB_FAULT_DURATION}
  if [ -z "${SC_RAMP[$i]}" ]; then
    SC_RAMP[i]=$((total / 4))
    [ "${SC_RAMP[$i]}" -le 30 ] || SC_RAMP[i]=30
    [ "${SC_RAMP[$i]}" -ge 1 ] || SC_RAMP[i]=1
  fi
  hold=$((total - 2 * SC_RAMP[i]))
  [ "$hold" -ge 1 ] || rb_fail 2 "scenario $SC_FILE: $name lasts $total s, not longer than its ramp up and down (2 x ${SC_RAMP[$i]} s): give it a longer for= (or --fault-duration) or a shorter ramp="
  SURGE_ARGV=(k6 run --quiet --no-usage-report
    -e "BASE_URL=$RB_BASE_URL" -e "VUS=$RB_VUS" -e "START_RATE=$BOOKING_RATE" -e "PEAK_RATE=${SC_PEAK[$i]}"
    -e "RAMP=${SC_RAMP[$i]}s" -e "DURATION=${hold}s" -e NAME_PREFIX=surge-
    "$(rb__script_path appointments.js)")
}

surge_apply() {
  local out="$RB_DIR/k6/$SURGE_NAME.ndjson" tries=0
  "${SURGE_ARGV[@]:0:4}" --out "json=$out" --summary-export "$RB_DIR/k6/$SURGE_NAME-summary.json" "${SURGE_ARGV[@]:4}" \
    >"$RB_DIR/k6/$SURGE_NAME.log" 2>&1 &
  SURGE_PID=$!
  until grep -q '"metric":"http_req_duration","type":"Point"' "$out" 2>/dev/null; do
    if ! kill -0 "$SURGE_PID" 2>/dev/null || [ "$tries" -ge 300 ]; then
      echo "the surge's k6 made no request (k6/$SURGE_NAME.log)"
      return 1
    fi
    sleep 0.1
    tries=$((tries + 1))
  done
  RB_POINTS+=("$out")
  rb_mark surge-started "k6 appointments.js ramping to ${SC_PEAK[$(surge_index)]} bookings/s"
}

surge_index() {
  local i
  for i in "${!SC_NAMES[@]}"; do
    [ "${SC_NAMES[$i]}" != "$SURGE_NAME" ] || printf '%s' "$i"
  done
}

# A zombie (ended, not yet reaped) counts as ended.
surge_running() {
  [ -n "$SURGE_PID" ] && [ -r "/proc/$SURGE_PID/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$SURGE_PID/stat" 2>/dev/null
}

surge_ended() {
  ! surge_running
}

surge_revert() {
  local tries=0
  surge_running || return 0
  kill -INT "$SURGE_PID" 2>/dev/null || true
  while surge_running && [ "$tries" -lt 150 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  surge_running || return 0
  kill -KILL "$SURGE_PID" 2>/dev/null || true
}

surge_verify() {
  if surge_running; then
    echo "the surge's k6 (pid $SURGE_PID) still runs"
    return 1
  fi
}

# Every fault of the scenario, with its offset and time, and its own checks.
declare_faults() {
  local i name kind tgt
  for i in "${!SC_NAMES[@]}"; do
    name=${SC_NAMES[$i]}
    kind=${SC_KINDS[$i]}
    tgt=${SC_TARGETS[$i]}
    case $kind in
      redis-down)
        rb_redis_down "$name" "$tgt" "$ROLLOUT"
        rb_check "GET /v1/products served while $tgt is down" window="fault:$name" request=products metric=error-rate lt=5
        rb_check_cmd "$tgt back: statefulset Ready" -- rb_redis_back
        ;;
      pod-oom)
        rb_pod_oom "$name" "$tgt" "" "${SC_RATE[$i]}" "${SC_LIMIT[$i]}" "$LEAK_BIN"
        rb_check_cmd "OOMKill of a $tgt pod recorded" -- rb_oom_recorded
        rb_check_cmd "$tgt pod back within $REPLACED s of the OOM kill" -- rb_oom_replaced_within "$REPLACED"
        ;;
      booking-surge)
        surge_declare "$i"
        rb_fault_custom "$name" surge_apply surge_revert \
          "kill -INT the surge's k6 (its pid is in the log; it also ends by itself)" \
          "k6 appointments.js: bookings ramping from $BOOKING_RATE to ${SC_PEAK[$i]}/s over ${SC_RAMP[$i]} s, held, back down (requests named surge-appointment-book)"
        rb_fault_ends_when "$name" surge_ended
        rb_fault_verify "$name" surge_verify
        rb_check "surge bookings succeed" window="fault:$name" request=surge-appointment-book metric=error-rate lt=1
        ;;
    esac
    [ "${SC_OFFSETS[$i]}" -eq 0 ] || rb_fault_after "$name" "${SC_OFFSETS[$i]}"
    [ -z "${SC_FOR[$i]}" ] || rb_fault_for "$name" "${SC_FOR[$i]}"
    [ "$kind" = redis-down ] || GD_TARGETS+=("$tgt")
  done
}

# The restore clock: from the first fault's start.
first_fault_ms() {
  local i first=""
  for i in "${!RB_FAULT_STARTED[@]}"; do
    [ -n "${RB_FAULT_STARTED[$i]}" ] || continue
    [ -n "$first" ] && [ "$first" -le "${RB_FAULT_STARTED[$i]}" ] || first=${RB_FAULT_STARTED[$i]}
  done
  printf '%s' "$first"
}

rb_hook_preflight() {
  local i
  command -v curl >/dev/null 2>&1 || rb_fail 2 "curl not found: the health check needs it (apt-get install curl)"
  for i in "${!SC_NAMES[@]}"; do
    case ${SC_KINDS[$i]} in
      redis-down) rb_redis_preflight ;;
      pod-oom) rb_oom_preflight "$(rb__fault_for "$(rb__fault_index "${SC_NAMES[$i]}")")" --leak-binary ;;
      booking-surge)
        rb_kubectl get deployment "${SC_TARGETS[$i]}" -n "$RB_NAMESPACE" -o name >/dev/null 2>&1 ||
          rb_fail 2 "scenario $SC_FILE: no Deployment ${SC_TARGETS[$i]} in $RB_NAMESPACE (the surge's target)"
        ;;
    esac
  done
  for i in "${!GD_TARGETS[@]}"; do
    GD_READY0[i]=$(rb_kubectl get deployment "${GD_TARGETS[$i]}" -n "$RB_NAMESPACE" -o 'jsonpath={.status.readyReplicas}') || GD_READY0[i]=""
    [[ ${GD_READY0[$i]} =~ ^[1-9][0-9]*$ ]] || rb_fail 3 "deployment/${GD_TARGETS[$i]} has no Ready replica: no game day on an unhealthy system"
  done
  rb_log "game day '$SC_TITLE': ${#SC_NAMES[@]} faults, restore clock $CLOCK s from the first fault"
}

rb_hook_dry_run() {
  [ -z "$RB_OOM_TARGET" ] || rb_oom_dry_run
  [ -z "$SURGE_NAME" ] || printf '  the surge: %s --out json=RUNDIR/k6/%s.ndjson ... &\n' "$(rb_show "${SURGE_ARGV[@]}")" "$SURGE_NAME"
  printf '  the restore clock: %s s from the first fault; faults still in place then are all stopped\n' "$CLOCK"
}

# Once a second while faults are in place (or to come): the OOM'd pod sampled, and the
# restore clock: when it runs out, every fault is stopped (the game day is lost).
rb_hook_tick() {
  rb_oom_sample
  local first
  first=$(first_fault_ms)
  [ -n "$first" ] || return 0
  if [ $(($(rb_now_ms) - first)) -ge $((CLOCK * 1000)) ] && rb__any_fault_active; then
    rb_mark restore-clock "the restore clock ($CLOCK s) ran out with faults in place: every fault stopped"
    rb_log "the restore clock ran out with faults in place: stopping every fault"
    rb__stop_all_faults
  fi
}

rb_hook_recovery_tick() {
  rb_oom_sample
}

# The checks after the recovery each write a mark, so the timeline holds them too.
health_ok() {
  local code
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$RB_BASE_URL/health") || code=${code:-000}
  rb_mark check "GET /health answered $code"
  echo "GET $RB_BASE_URL/health answered $code"
  [ "$code" = 200 ]
}

# The targets' Deployments have at least the Ready replicas they had before the game day
# (an HPA may have added some, still starting: not a fault left behind).
targets_ready() {
  local i t ready bad=0 out=""
  for i in "${!GD_TARGETS[@]}"; do
    t=${GD_TARGETS[$i]}
    ready=$(rb_kubectl get deployment "$t" -n "$RB_NAMESPACE" -o 'jsonpath={.status.readyReplicas}') || ready="?"
    out+="$t ${ready:-0} Ready (${GD_READY0[$i]} before); "
    [[ ${ready:-0} =~ ^[0-9]+$ ]] && [ "${ready:-0}" -ge "${GD_READY0[$i]}" ] || bad=1
  done
  rb_mark check "${out%; }"
  echo "${out%; }"
  [ "$bad" -eq 0 ]
}

# Every fault removed (verified) within the restore clock of the first fault's start.
faults_removed_in_time() {
  local first last n=0 bad=""
  first=$(awk -F'\t' '$1 == "fault-start" { print $3; exit }' "$RB_DIR/timeline.tsv")
  [ -n "$first" ] || {
    echo "no fault started"
    return 1
  }
  while IFS=$'\t' read -r ev name at text; do
    [ "$ev" = cleanup ] || continue
    n=$((n + 1))
    last=$at
    [ "$text" = verified ] || bad+="$name: $text; "
  done <"$RB_DIR/timeline.tsv"
  [ -z "$bad" ] || {
    echo "not every fault's removal was verified: ${bad%; }"
    return 1
  }
  [ "$n" -eq "${#RB_FAULT_NAMES[@]}" ] || {
    echo "$n of ${#RB_FAULT_NAMES[@]} faults removed"
    return 1
  }
  local took
  took=$(rb_seconds_between "$(rb_epoch_ms "$first")" "$(rb_epoch_ms "$last")")
  echo "every fault removed and verified $took s after the first fault (clock: $CLOCK s)"
  awk -v d="$took" -v c="$CLOCK" 'BEGIN { exit !(d <= c) }'
}

# A fault that would outlast the clock could not be won: bad input, before anything.
clock_covers_faults() {
  local i end
  for i in "${!RB_FAULT_NAMES[@]}"; do
    end=$((RB_FAULT_AFTER[i] + $(rb__fault_for "$i")))
    [ "$end" -le "$CLOCK" ] || rb_fail 2 "scenario $SC_FILE: ${RB_FAULT_NAMES[$i]} would stay until $end s after the injection, past the restore clock ($CLOCK s): shorten it (for=, --fault-duration) or lengthen the clock"
  done
}

rb_check "baseline error rate < 1%" window=baseline metric=error-rate lt=1
declare_faults
clock_covers_faults
RESTORED="service restored within the restore clock (error rate and p95 back in the baseline band)"
rb_check "$RESTORED" metric=recovery-seconds from=fault-start le="$CLOCK"
rb_check_cmd "every fault removed within the restore clock" -- faults_removed_in_time
rb_check_cmd "GET /health answers 200 after the restore" -- health_ok
rb_check_cmd "the targets' pods all Ready after the restore" -- targets_ready
rb_check "GET /v1/products served after the restore" window=after-fault request=products metric=error-rate lt=1
rb_check "bookings succeed after the restore" window=after-fault request=appointment-book metric=error-rate lt=1

# After the verdict: debrief.md, pre-filled (lib/debrief.sh).
rb_hook_result() {
  rb_debrief "$SC_TITLE" "$SC_FILE" "$CLOCK" "$RESTORED"
}
rb_main
