# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# --dry-run: what a run would do, step by step. The read-only steps run for real (the
# safety rules, the cluster and freeze switch, each tool's own --dry-run); nothing else.

rb__dry_run() {
  printf '%s: %s (dry run: nothing is touched)\n\nHypothesis: %s\n\n' "$RB_EXPERIMENT" "$RB_TITLE" "$RB_HYPOTHESIS"
  printf '1/7 hypothesis: print the hypothesis, the checks and every rollback step:\n'
  rb__print_checks
  printf '2/7 preflight (read-only, run now): safety rules, programs%s, tool dry-runs\n' "$([ "$RB_USES_KUBE" -eq 0 ] || printf ', cluster and freeze switch')"
  mkdir -p "$RB_TMP/preflight"
  rb__preflight "$RB_TMP/preflight"
  local i name
  for i in "${!RB_FAULT_NAMES[@]}"; do
    name=${RB_FAULT_NAMES[$i]}
    [ "${RB_FAULT_KINDS[$i]}" = tool ] || continue
    printf '    %s plan: %s\n' "$name" "$(rb_verdict get "$RB_TMP/preflight/$name.json" /plan 2>/dev/null || printf 'none')"
  done
  RB_DIR="$RB_RESULTS_DIR/$(date -u +%Y-%m-%d)-$RB_EXPERIMENT-$RB_RUN_ID"
  printf '3/7 baseline: would create %s, then start:\n' "$RB_DIR"
  for i in "${!RB_LOAD_NAMES[@]}"; do
    rb__k6_argv "$i"
    printf '    %s &\n' "$(rb_show "${RB_K6_ARGV[@]}")"
  done
  printf '    and measure for %s s; the baseline checks gate the injection\n' "$RB_BASELINE"
  printf '4/7 injection: would run\n'
  for i in "${!RB_FAULT_NAMES[@]}"; do
    if [ "${RB_FAULT_KINDS[$i]}" = tool ]; then
      local ref="RB_FAULT_ARGV_${i}[@]"
      local argv=("${!ref}")
      printf '    after %s s: %s &\n' "${RB_FAULT_AFTER[$i]}" "$(rb_show "${RB_FAULT_TOOLS[$i]}" "${argv[@]}" "${RB_SAFETY_ARGS[@]}" --run-id "$(rb__fault_run_id "$i")" --output json --yes)"
    else
      printf '    after %s s: %s (reverted after %s s by %s)\n' "${RB_FAULT_AFTER[$i]}" "${RB_FAULT_WHAT[$i]}" "$(rb__fault_for "$i")" "${RB_FAULT_REVERT[$i]}"
    fi
    printf '      rollback: %s\n' "$(rb__rollback "$i")"
  done
  if declare -F rb_hook_dry_run >/dev/null; then
    rb_hook_dry_run
  fi
  printf '5/7 observation: every second while faults are in place: chaos-verdict guard (abort above %s%% errors over %s s, at least %s requests, %s breaches in a row)%s\n' \
    "$RB_GUARD_ERROR_RATE" "$RB_GUARD_WINDOW" "$RB_GUARD_MIN_SAMPLES" "$RB_GUARD_BREACHES" "${RB_GUARD_CMD:+ and $RB_GUARD_CMD}"
  printf '6/7 recovery: measure for %s s after the faults are gone\n' "$RB_RECOVERY"
  printf '7/7 result: stop k6, run the command checks, chaos-verdict verdict, and a row in %s\n' "$RB_RESULT_LOG"
  RB_DIR=""
}
