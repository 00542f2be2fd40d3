# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# The end of a run: the command checks, the verdict, the result log row (always), and the
# traps that get there from Ctrl-C, SIGTERM and errors with every fault reverted.

# rb__run_cmd_checks: each command check, recorded as an outcome.
rb__run_cmd_checks() {
  local i name rc out
  for i in "${!RB_CMD_CHECKS[@]}"; do
    name=${RB_CMD_CHECKS[$i]}
    local ref="RB_CMD_ARGV_${i}[@]"
    local argv=("${!ref}")
    if [ -n "$RB_ABORT" ] && [ "$RB_ABORT" != guard ] && [ "$RB_ABORT" != guard-cmd ]; then
      rb__check_line "$name" "" "not run: the run was aborted ($RB_ABORT)"
      continue
    fi
    rc=0
    if declare -F "${argv[0]}" >/dev/null; then
      # A function of the runbook (it judges what the run recorded); in this shell.
      out=$("${argv[@]}" 2>&1) || rc=$?
    else
      out=$(timeout 120 "${argv[@]}" 2>&1) || rc=$?
    fi
    printf '%s\n' "$out" >"$RB_DIR/check-$i.txt"
    if [ "$rc" -eq 0 ]; then
      rb__check_line "$name" pass "$(rb_show "${argv[@]}") exited 0${out:+: $(printf '%s' "$out" | tail -n 1)}"
    else
      rb__check_line "$name" fail "$(rb_show "${argv[@]}") exited $rc: $(printf '%s' "$out" | tail -n 1)"
    fi
  done
}

rb__check_line() {
  local detail=${3//$'\t'/ }
  detail=${detail//$'\n'/ }
  printf 'name=%s\tkind=outcome\tobserved=%s\tdetail=%s\n' "$1" "$2" "$detail" >>"$RB_CHECKS_FILE"
}

# Step 7: load stopped, verdict computed, result log written (always); RB_EXIT is the
# exit code (run in this shell, never a subshell: it reaps the k6 processes it stops).
rb__result() {
  [ "$RB_FINISHED" -eq 0 ] || return 0
  RB_FINISHED=1
  rb__step result
  # The runbook's own background work (probes) stops here on every way to a result.
  if declare -F rb_hook_finish >/dev/null; then
    rb_hook_finish
  fi
  rb__stop_load
  # The events first: command checks may read them.
  if [ "$RB_USES_KUBE" -eq 1 ]; then
    rb_kubectl get events -n "$RB_NAMESPACE" --sort-by=.lastTimestamp >"$RB_DIR/events.txt" 2>&1 || true
  fi
  rb__run_cmd_checks
  rb__step_end result
  local args=(verdict --timeline "$RB_DIR/timeline.tsv" --checks "$RB_CHECKS_FILE" --out "$RB_DIR"
    --experiment "$RB_EXPERIMENT" --run-id "$RB_RUN_ID" --environment "$RB_ENVIRONMENT"
    --result-log "$RB_RESULT_LOG" --band-window-seconds "$RB_BAND_WINDOW" --band-windows "$RB_BAND_WINDOWS")
  local p c rc=0 out
  for p in "${RB_POINTS[@]}"; do
    args+=(--points "$p")
  done
  for c in "${RB_CONFIRMS[@]}"; do
    args+=(--confirm "$c")
  done
  out=$(rb_verdict "${args[@]}" 2>"$RB_DIR/verdict.log") || rc=$?
  case $rc in
    0 | 1 | 5 | 6)
      rb_verdict log --result-log "$RB_RESULT_LOG" --from "$RB_DIR/result.json" >/dev/null ||
        rb_log "COULD NOT WRITE THE RESULT LOG $RB_RESULT_LOG: see above"
      ;;
    *)
      rb_log "the verdict could not be computed (exit $rc): $(tail -n 1 "$RB_DIR/verdict.log")"
      rb_verdict log --result-log "$RB_RESULT_LOG" --experiment "$RB_EXPERIMENT" --environment "$RB_ENVIRONMENT" \
        --result FAIL --notes "no verdict: $(tail -n 1 "$RB_DIR/verdict.log"); run $RB_RUN_ID, see $RB_DIR" >/dev/null ||
        rb_log "COULD NOT WRITE THE RESULT LOG $RB_RESULT_LOG"
      rc=1
      ;;
  esac
  printf '%s\n' "$out"
  # The runbook's own files from the verdict (the game day's debrief.md); never fatal.
  if declare -F rb_hook_result >/dev/null; then
    rb_hook_result || rb_log "rb_hook_result failed: see above"
  fi
  rb_log "run directory: $RB_DIR (summary.md, timeline.svg); result log: $RB_RESULT_LOG"
  RB_EXIT=$rc
}

# Ctrl-C, SIGTERM, SIGHUP: recorded as the operator's abort; the EXIT trap does the rest.
rb__on_signal() {
  trap '' INT TERM HUP
  rb_log "received SIG$1: reverting everything (further signals are ignored until done)"
  if [ -n "$RB_DIR" ]; then
    rb__tl abort operator "$(rb_now)" "SIG$1 from the operator"
    RB_ABORT=${RB_ABORT:-operator}
  fi
  exit 130
}

# The EXIT trap: on every way out. Faults in place are stopped and verified; once the
# run touched anything, the verdict and the result log row are written whatever happened.
rb__on_exit() {
  local rc=$?
  trap '' INT TERM HUP
  set +e
  if [ -n "$RB_DIR" ] && [ "$RB_FINISHED" -eq 0 ] && [ -z "$RB_ABORT" ]; then
    case $rc in
      # Ctrl-C reaches the whole process group: a child killed by it can end the script
      # (set -e) before the INT trap had its turn. That is still the operator's abort.
      129 | 130 | 143)
        rb__tl abort operator "$(rb_now)" "SIG$(kill -l $((rc - 128))) from the operator"
        RB_ABORT=operator
        ;;
    esac
  fi
  if [ -n "$RB_DIR" ] && [ "$RB_FINISHED" -eq 0 ]; then
    if rb__any_fault_active; then
      [ -n "$RB_ABORT" ] || rb__tl abort error "$(rb_now)" "the runbook stopped (exit $rc) with faults in place"
      RB_ABORT=${RB_ABORT:-error}
      rb__stop_all_faults
      rb__tl mark faults-removed "$(rb_now)" "every fault stopped by the exit trap"
    elif [ "$RB_TOUCHED" -eq 1 ] && [ -z "$RB_ABORT" ]; then
      rb__tl abort error "$(rb_now)" "the runbook stopped early (exit $rc)"
      RB_ABORT=error
    fi
    if [ "$RB_TOUCHED" -eq 1 ]; then
      rb__result
      rc=$RB_EXIT
    fi
  fi
  [ "${#RB_LOAD_PIDS[@]}" -eq 0 ] || rb__stop_load
  [ -z "$RB_SLEEP_PID" ] || kill "$RB_SLEEP_PID" 2>/dev/null || true
  [ -z "$RB_TMP" ] || rm -rf "$RB_TMP"
  exit "$rc"
}

