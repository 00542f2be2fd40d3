# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# The run: the seven steps in order, the run directory, the timeline, the checks, the
# result, and the trap that reverts everything and still writes the result.

RB_DIR=""
RB_TMP=""
RB_VERDICT=""
RB_CHECKS_FILE=""
RB_CHECK_LINES=()
RB_CMD_CHECKS=()
RB_POINTS=()
RB_TOUCHED=0
RB_FINISHED=0
RB_EXIT=1
RB_ABORT=""
RB_STEP=0

# rb_check NAME KEY=VALUE...: a named check (docs/runbooks.md: metric, value, outcome,
# manual). Checked by chaos-verdict in preflight, so a typo fails before any injection.
rb_check() {
  local name=$1 field line
  shift
  rb__plain "check name" "$name"
  line="name=$name"
  for field in "$@"; do
    rb__plain "field of check '$name'" "$field"
    line+=$'\t'"$field"
  done
  RB_CHECK_LINES+=("$line")
}

# rb_check_manual NAME: cannot be measured from here; --confirm NAME records it.
rb_check_manual() {
  rb_check "$1" kind=manual
}

# rb_check_cmd NAME -- CMD ARG...: passes when CMD exits 0, run after the recovery (at
# most 120 s); CMD may be a function of the runbook, called in its shell. The last line
# of its output is the check's detail.
rb_check_cmd() {
  local name=$1 i
  shift
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || rb_fail 2 "internal: rb_check_cmd '$name' needs a command"
  rb__plain "check name" "$name"
  i=${#RB_CMD_CHECKS[@]}
  RB_CMD_CHECKS+=("$name")
  declare -ga "RB_CMD_ARGV_$i"
  local -n _rb_cmd="RB_CMD_ARGV_$i"
  _rb_cmd=("$@")
}

rb__print_checks() {
  local line name
  for line in "${RB_CHECK_LINES[@]}"; do
    name=${line%%$'\t'*}
    printf '  - %s  [%s]\n' "${name#name=}" "${line#*$'\t'}"
  done | tr '\t' ' '
  for name in "${RB_CMD_CHECKS[@]}"; do
    printf '  - %s  [command, after the recovery]\n' "$name"
  done
}

# rb__tl EVENT NAME [TIME [TEXT]]: one line of the timeline (tabs and newlines in TEXT
# become spaces).
rb__tl() {
  local text=${4:-}
  text=${text//$'\t'/ }
  text=${text//$'\n'/ }
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "${3:-}" "$text" >>"$RB_DIR/timeline.tsv"
}

# rb_mark KIND TEXT: a moment of the run in its timeline (a checklist step, a game-day
# fault or check); chaos-verdict shows marks in the summary and the chart.
rb_mark() {
  [[ $1 =~ ^[a-z][a-z0-9-]{0,31}$ ]] || rb_fail 2 "internal: mark kind '$1'"
  [ -z "$RB_DIR" ] || rb__tl mark "$1" "$(rb_now)" "$2"
}

# rb__step NAME: announces the step (N of the seed's 7); with a run directory, times it
# in the timeline. A run that stops early goes straight to the result (step 7).
rb__step() {
  local steps=" hypothesis preflight baseline injection observation recovery result " before
  before=${steps%% "$1" *}
  RB_STEP=$(($(wc -w <<<"$before") + 1))
  rb_log "step $RB_STEP/7: $1"
  [ -z "$RB_DIR" ] || rb__tl phase-start "$1" "$(rb_now)"
}

rb__step_end() {
  [ -z "$RB_DIR" ] || rb__tl phase-end "$1" "$(rb_now)"
}

rb__new_run_id() {
  local hex
  hex=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s-%s' "$(date -u +%Y%m%d-%H%M%S)" "$hex"
}

# rb_main: runs the experiment (or prints --help / the --dry-run plan) and exits with
# its result: 0 PASS, 1 FAIL, 5 PARTIAL, 6 ABORTED, 2 bad input, 3 refused.
rb_main() {
  [ -n "$RB_EXPERIMENT" ] || rb_fail 2 "internal: rb_experiment was not called"
  if [ "$RB_HELP" -eq 1 ]; then
    rb__usage
    exit 0
  fi
  rb__require_bin RB_VERDICT chaos-verdict
  [ -n "$RB_RUN_ID" ] || RB_RUN_ID=$(rb__new_run_id)
  RB_SAFETY_ARGS=(--environment "$RB_ENVIRONMENT")
  [ -z "$RB_APPROVED_BY" ] || RB_SAFETY_ARGS+=(--approved-by "$RB_APPROVED_BY")
  [ -z "$RB_ALLOW_PEAK" ] || RB_SAFETY_ARGS+=(--allow-peak-hours "$RB_ALLOW_PEAK")
  RB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/chaos-runbook.XXXXXX")
  trap 'rb__on_exit' EXIT
  trap 'rb__on_signal INT' INT
  trap 'rb__on_signal TERM' TERM
  trap 'rb__on_signal HUP' HUP
  RB_CHECKS_FILE=$RB_TMP/checks.tsv
  rb__write_checks "$RB_CHECKS_FILE"
  if [ "$RB_DRY_RUN" -eq 1 ]; then
    rb__dry_run
    exit 0
  fi
  rb__step hypothesis
  rb__hypothesis
  rb__step preflight
  mkdir -p "$RB_TMP/preflight"
  rb__preflight "$RB_TMP/preflight"
  rb__open_run_dir
  rb__step_end preflight
  rb__baseline
  if [ -z "$RB_ABORT" ] && [ "${RB_GATE_FAILED:-0}" -eq 0 ]; then
    rb__inject
    rb__observe
    rb__recover
  fi
  rb__result
  exit "$RB_EXIT"
}

rb__hypothesis() {
  printf '%s: %s\n\nHypothesis: %s\n\nPass criteria:\n' "$RB_EXPERIMENT" "$RB_TITLE" "$RB_HYPOTHESIS" >&2
  rb__print_checks >&2
  printf '\nFaults and their rollback:\n' >&2
  rb__print_faults >&2
  printf '\n' >&2
}

# rb__open_run_dir: results/<date>-EXP-00N-<runid>/ with its manifest; from here on the
# run touches things, so a result is always written.
rb__open_run_dir() {
  RB_DIR="$RB_RESULTS_DIR/$(date -u +%Y-%m-%d)-$RB_EXPERIMENT-$RB_RUN_ID"
  [ ! -e "$RB_DIR" ] || rb_fail 2 "$RB_DIR already exists: pick another --run-id"
  mkdir -p "$RB_DIR/k6" "$RB_DIR/faults" "$RB_DIR/guard"
  RB_DIR=$(cd "$RB_DIR" && pwd)
  cp -R "$RB_TMP/preflight" "$RB_DIR/preflight"
  printf 'chaos-verdict-timeline\t1\n' >"$RB_DIR/timeline.tsv"
  rb__tl phase-start hypothesis "$(rb_now)"
  rb__tl phase-end hypothesis "$(rb_now)"
  rb__tl phase-start preflight "$(rb_now)"
  RB_CHECKS_FILE=$RB_DIR/checks.tsv
  rb__write_checks "$RB_CHECKS_FILE"
  rb__manifest
  rb_log "run directory: $RB_DIR"
}

rb__write_checks() {
  local line
  {
    printf 'chaos-verdict-checks\t1\n'
    for line in "${RB_CHECK_LINES[@]}"; do
      printf '%s\n' "$line"
    done
  } >"$1"
}

# rb__manifest: what ran, with what, against what (manifest.json).
rb__manifest() {
  local fields=("experiment=$RB_EXPERIMENT" "title=$RB_TITLE" "runId=$RB_RUN_ID" "startedAt=$(rb_now)"
    "environment=$RB_ENVIRONMENT" "namespace=$RB_NAMESPACE" "baseUrl=$RB_BASE_URL"
    "script=$RB_SCRIPT" "chaosVerdict=$("$RB_VERDICT" --version 2>/dev/null || true)"
    "k6=$(k6 version 2>/dev/null | head -n 1 || true)")
  local arg i commit
  for arg in "${RB_ARGS[@]}"; do
    fields+=("flags[]=$arg")
  done
  for i in "${!RB_LOAD_NAMES[@]}"; do
    fields+=("loads[]=${RB_LOAD_NAMES[$i]}: ${RB_LOAD_SCRIPTS[$i]}")
  done
  for i in "${!RB_FAULT_NAMES[@]}"; do
    if [ "${RB_FAULT_KINDS[$i]}" = tool ]; then
      fields+=("tools[]=${RB_FAULT_PATHS[$i]}: $("${RB_FAULT_PATHS[$i]}" --version 2>/dev/null || printf 'unknown version')")
      if [ -s "$RB_DIR/preflight/${RB_FAULT_NAMES[$i]}.json" ]; then
        fields+=("targets.${RB_FAULT_NAMES[$i]}:json=$(rb_verdict get "$RB_DIR/preflight/${RB_FAULT_NAMES[$i]}.json" /targets 2>/dev/null || printf 'null')")
      fi
    fi
    fields+=("rollback[]=${RB_FAULT_NAMES[$i]}: $(rb__rollback "$i")")
  done
  if commit=$(git -C "$RB_REPO" rev-parse HEAD 2>/dev/null); then
    fields+=("gitCommit=$commit")
    [ -z "$(git -C "$RB_REPO" status --porcelain 2>/dev/null | head -n 1)" ] || fields+=("gitDirty=true")
  fi
  if [ "$RB_USES_KUBE" -eq 1 ]; then
    fields+=("kubeContext=${RB_CONTEXT:-$(kubectl config current-context 2>/dev/null || printf 'unknown')}")
  fi
  rb_verdict manifest --out "$RB_DIR/manifest.json" "${fields[@]}"
}

# Step 3: k6 starts, the steady state is measured, and the baseline checks gate the run.
rb__baseline() {
  rb__step baseline
  RB_TOUCHED=1
  rb__start_load
  rb_sleep "$RB_BASELINE"
  rb__step_end baseline
  local gate rc=0
  gate=$(rb_verdict gate "${RB_POINTS[@]/#/--points=}" --timeline "$RB_DIR/timeline.tsv" --checks "$RB_CHECKS_FILE" 2>&1) || rc=$?
  printf '%s\n' "$gate" >"$RB_DIR/baseline-gate.txt"
  if [ "$rc" -ne 0 ]; then
    RB_GATE_FAILED=1
    rb__tl mark baseline-gate "$(rb_now)" "the baseline failed its checks: no injection into an unhealthy system"
    rb_log "baseline checks failed; no injection into an unhealthy system:"
    printf '%s\n' "$gate" | tr '\t' ' ' >&2
  fi
}

# Step 4: the rollback steps are printed, then the faults due at once start.
rb__inject() {
  rb__step injection
  printf 'Rollback, should anything be left behind:\n' >&2
  rb__print_faults >&2
  RB_INJECTED_MS=$(rb_now_ms)
  rb__faults_tick 0
  if declare -F rb_hook_injected >/dev/null; then
    rb_hook_injected
  fi
  rb__step_end injection
}

# Step 5: while faults are in place (or still to come), once a second: start due faults,
# notice ended ones, run the guard. A trip stops everything. The loop keeps a period of
# one second (it sleeps what is left of it), since the guard counts one breach per
# evaluation; whatever rb_hook_tick does shares that second and must not block (a slow
# tick is logged: it delays the guard).
rb__observe() {
  rb__step observation
  local elapsed tick_ms took
  while [ -z "$RB_ABORT" ] && { rb__any_fault_active || rb__any_fault_pending; }; do
    tick_ms=$(rb_now_ms)
    elapsed=$(((tick_ms - RB_INJECTED_MS) / 1000))
    rb__faults_tick "$elapsed"
    if rb__any_fault_active && ! rb__guard_tick; then
      rb__trip
      break
    fi
    if declare -F rb_hook_tick >/dev/null; then
      rb_hook_tick
    fi
    rb__any_fault_active || rb__any_fault_pending || break
    took=$(($(rb_now_ms) - tick_ms))
    if [ "$took" -ge 1000 ]; then
      rb_log "observation tick took $took ms: the abort guard ran late (a slow rb_hook_tick?)"
    else
      rb_sleep "$(printf '%d.%03d' $(((1000 - took) / 1000)) $(((1000 - took) % 1000)))"
    fi
  done
  rb__step_end observation
}

# Step 6: the faults are gone; k6 keeps measuring for --recovery seconds.
rb__recover() {
  rb__step recovery
  if declare -F rb_hook_recovery_tick >/dev/null; then
    local end=$(($(rb_now_ms) + RB_RECOVERY * 1000))
    while [ "$(rb_now_ms)" -lt "$end" ]; do
      rb_hook_recovery_tick
      rb_sleep 1
    done
  else
    rb_sleep "$RB_RECOVERY"
  fi
  if declare -F rb_hook_recovered >/dev/null; then
    rb_hook_recovered
  fi
  rb__step_end recovery
}
