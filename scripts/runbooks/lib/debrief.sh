# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# debrief.md (the game day): the seed's debrief ("identify gaps in runbooks, monitoring,
# and automation"), pre-filled from the run: scenario, who, result, time to restore
# against the clock, the timeline (every phase, fault, mark and check, in seconds from
# the first fault) and the checks with their observed values; the sections the team
# writes are left empty.

# rb__md TEXT: a Markdown table cell ('|' escaped; empty and null shown as '-').
rb__md() {
  local t=${1//|/\\|}
  [ "$t" != null ] || t=""
  printf '%s' "${t:--}"
}

# rb__result_field POINTER: a value of result.json, or empty.
rb__result_field() {
  rb_verdict get "$RB_DIR/result.json" "$1" 2>/dev/null || true
}

# rb__check_index NAME: the index of a check in result.json, or nothing.
rb__check_index() {
  local i=0 name
  while name=$(rb_verdict get "$RB_DIR/result.json" "/checks/$i/name" 2>/dev/null); do
    if [ "$name" = "$1" ]; then
      printf '%s' "$i"
      return 0
    fi
    i=$((i + 1))
  done
}

# rb_debrief TITLE SCENARIO_FILE CLOCK_S RESTORE_CHECK: writes $RB_DIR/debrief.md; the
# time to restore is RESTORE_CHECK's observed value (a recovery-seconds check).
rb_debrief() {
  local title=$1 file=$2 clock=$3 out="$RB_DIR/debrief.md"
  [ -n "$RB_DIR" ] && [ -f "$RB_DIR/timeline.tsv" ] || return 0
  local result restore="" first_ms idx
  result=$(rb__result_field /result)
  idx=$(rb__check_index "$4")
  [ -z "$idx" ] || restore=$(rb__result_field "/checks/$idx/observed")
  first_ms=$(awk -F'\t' '$1 == "fault-start" { print $3; exit }' "$RB_DIR/timeline.tsv")
  [ -z "$first_ms" ] || first_ms=$(rb_epoch_ms "$first_ms") || first_ms=""
  {
    printf '# Game day debrief: %s\n\n' "$title"
    printf -- '- **Run**: %s, %s, environment %s, namespace %s%s\n' "$RB_RUN_ID" "$(date -u +%Y-%m-%d)" "$RB_ENVIRONMENT" "$RB_NAMESPACE" "${RB_CONTEXT:+, context $RB_CONTEXT}"
    printf -- '- **Scenario**: %s\n' "\`$file\`"
    printf -- '- **Who**: operator %s; observer %s; team: _(names)_\n' "${SUDO_USER:-${USER:-$(id -un 2>/dev/null || printf unknown)}}" "${RB_OBSERVER:-_(none given: --observer NAME)_}"
    printf -- '- **Result**: %s. %s\n' "${result:-no verdict}" "$(rb__result_field /summary)"
    if [ -n "$restore" ] && [ "$restore" != null ]; then
      printf -- '- **Time to restore**: %s s from the first fault (error rate and p95 back in the baseline band%s), against a restore clock of %s s (%s)\n' \
        "$restore" "$(awk -v r="$restore" 'BEGIN { if (r < 1) print ": users saw no lasting degradation" }')" "$clock" \
        "$(awk -v r="$restore" -v c="$clock" 'BEGIN { print (r <= c ? "within the clock" : "the clock ran out") }')"
    else
      printf -- '- **Time to restore**: not measured as restored (%s); restore clock %s s\n' "${idx:+$(rb__result_field "/checks/$idx/detail")}" "$clock"
    fi
    printf -- '- **Faults removed**: %s\n' "$(rb__debrief_removed "$first_ms")"
    printf -- '- **Files**: summary.md, timeline.svg, result.json, faults/, k6/ in this directory\n\n'
    printf '## Timeline\n\nSeconds from the first fault (negative: before it).\n\n'
    printf '| t (s) | time (UTC) | event | name | detail |\n|---|---|---|---|---|\n'
    rb__debrief_timeline "$first_ms"
    printf '\n## Checks\n\n| check | status | expected | observed | detail |\n|---|---|---|---|---|\n'
    rb__debrief_checks
    printf '\n## What went well\n\n- \n\n## Gaps in the runbooks\n\n- \n\n## Gaps in monitoring\n\n- \n\n'
    printf '## Gaps in automation\n\n- \n\n## Actions\n\n| action | owner | due |\n|---|---|---|\n|  |  |  |\n'
  } >"$out"
  rb_log "debrief template: $out"
}

# rb__debrief_removed FIRST_MS: when the last fault's removal was verified.
rb__debrief_removed() {
  local last ms
  last=$(awk -F'\t' '$1 == "cleanup" { at = $3; text = $4 } END { print at }' "$RB_DIR/timeline.tsv")
  if [ -z "$last" ]; then
    printf 'none recorded'
  elif grep -q $'^cleanup\t[^\t]*\t[^\t]*\tfailed' "$RB_DIR/timeline.tsv"; then
    printf 'NOT ALL: see the cleanup lines below and remove what is left by hand'
  elif [ -n "$1" ] && ms=$(rb_epoch_ms "$last"); then
    printf 'every fault removed and verified by +%s s' "$(rb_seconds_between "$1" "$ms")"
  else
    printf 'every fault removed and verified at %s' "$last"
  fi
}

rb__debrief_timeline() {
  local first_ms=$1 ev name at text ms t
  while IFS=$'\t' read -r ev name at text; do
    case $ev in
      chaos-verdict-timeline | fault-report | '#'*) continue ;;
    esac
    t=-
    if [ -n "$first_ms" ] && ms=$(rb_epoch_ms "$at"); then
      t=$(rb_seconds_between "$first_ms" "$ms")
    fi
    printf '| %s | %s | %s | %s | %s |\n' "$t" "$(rb__md "${at#*T}")" "$(rb__md "$ev")" "$(rb__md "$name")" "$(rb__md "$text")"
  done <"$RB_DIR/timeline.tsv"
}

rb__debrief_checks() {
  local i=0 name
  while name=$(rb_verdict get "$RB_DIR/result.json" "/checks/$i/name" 2>/dev/null); do
    local observed unit
    observed=$(rb__md "$(rb__result_field "/checks/$i/observed")")
    unit=$(rb__result_field "/checks/$i/unit")
    [ "$observed" != - ] || unit=""
    printf '| %s | %s | %s | %s %s | %s |\n' "$(rb__md "$name")" \
      "$(rb__md "$(rb__result_field "/checks/$i/status")")" "$(rb__md "$(rb__result_field "/checks/$i/expected")")" \
      "$observed" "$unit" \
      "$(rb__md "$(rb__result_field "/checks/$i/detail")")"
    i=$((i + 1))
  done
}
