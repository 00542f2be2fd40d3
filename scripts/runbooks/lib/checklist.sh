# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# Checklists: a guided procedure read from a file (EXP-009's regional failover), run step
# by step with the operator: commands as argument vectors, confirmations, a DNS wait.
#
#   chaos-checklist<TAB>1
#   # comment
#   step<TAB>TITLE                   a new step
#   run<TAB>PROGRAM<TAB>ARG...       a command of the step: an argument vector (no shell);
#                                    ${NAME} inside an argument is replaced by --set NAME=VALUE
#   confirm<TAB>QUESTION             the operator answers y (done) or n (not done)
#   dns<TAB>NAME<TAB>EXPECTED        wait until every resolver answers NAME with EXPECTED
#                                    (the DNS propagation clock starts here)
#
# rb_checklist_load parses and checks a file (bad input: exit 2, naming the line); the
# runner (rb_checklist_run, in a background subshell of the runbook) writes every event to
# DIR/events.tsv and a timeline mark, and its outcome to DIR/result.json.

CL_KINDS=()
CL_STEPS=()
CL_TITLES=()
CL_COUNT=0

# rb_checklist_load FILE SET...: SET are NAME=VALUE pairs for ${NAME}.
rb_checklist_load() {
  local file=$1 line n=0 kind rest fields i=0 header=0 arg
  shift
  [ -r "$file" ] || rb_fail 2 "checklist $file cannot be read"
  CL_KINDS=() CL_STEPS=() CL_TITLES=()
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    [[ -n ${line//[[:space:]]/} && $line != \#* ]] || continue
    if [ "$header" -eq 0 ]; then
      [ "$line" = $'chaos-checklist\t1' ] || rb_fail 2 "$file: the first line must be 'chaos-checklist<TAB>1'"
      header=1
      continue
    fi
    IFS=$'\t' read -r -a fields <<<"$line"
    kind=${fields[0]}
    rest=("${fields[@]:1}")
    case $kind in
      step)
        [ "${#rest[@]}" -eq 1 ] || rb_fail 2 "$file line $n: step<TAB>TITLE"
        CL_TITLES+=("${rest[0]}")
        continue
        ;;
      run) [ "${#rest[@]}" -ge 1 ] || rb_fail 2 "$file line $n: run<TAB>PROGRAM<TAB>ARG..." ;;
      confirm) [ "${#rest[@]}" -eq 1 ] || rb_fail 2 "$file line $n: confirm<TAB>QUESTION" ;;
      dns) [ "${#rest[@]}" -eq 2 ] || rb_fail 2 "$file line $n: dns<TAB>NAME<TAB>EXPECTED" ;;
      *) rb_fail 2 "$file line $n: unknown directive '$kind' (step, run, confirm, dns)" ;;
    esac
    [ "${#CL_TITLES[@]}" -gt 0 ] || rb_fail 2 "$file line $n: '$kind' before the first step"
    for arg in "${!rest[@]}"; do
      rest[arg]=$(rb__cl_subst "$file line $n" "${rest[$arg]}" "$@")
    done
    CL_KINDS+=("$kind")
    CL_STEPS+=("$((${#CL_TITLES[@]} - 1))")
    declare -ga "CL_ARGS_$i"
    local -n _cl_args="CL_ARGS_$i"
    _cl_args=("${rest[@]}")
    i=$((i + 1))
  done <"$file"
  [ "${#CL_TITLES[@]}" -gt 0 ] || rb_fail 2 "$file has no step"
  CL_COUNT=$i
}

# rb__cl_subst WHERE TEXT SET...: TEXT with every ${NAME} replaced; an unknown one is bad input.
rb__cl_subst() {
  local where=$1 text=$2 pair
  shift 2
  for pair in "$@"; do
    text=${text//"\${${pair%%=*}}"/${pair#*=}}
  done
  if [[ $text =~ \$\{([A-Za-z_][A-Za-z0-9_]*)\} ]]; then
    rb_fail 2 "$where: \${${BASH_REMATCH[1]}} has no value: give --set ${BASH_REMATCH[1]}=VALUE"
  fi
  printf '%s' "$text"
}

# rb_checklist_print: the procedure, for --help, --dry-run and the hypothesis.
rb_checklist_print() {
  local s i
  for s in "${!CL_TITLES[@]}"; do
    printf '    step %d/%d: %s\n' $((s + 1)) "${#CL_TITLES[@]}" "${CL_TITLES[$s]}"
    for ((i = 0; i < CL_COUNT; i++)); do
      [ "${CL_STEPS[$i]}" -eq "$s" ] || continue
      local ref="CL_ARGS_${i}[@]"
      local args=("${!ref}")
      case ${CL_KINDS[$i]} in
        run) printf '      run: %s\n' "$(rb_show "${args[@]}")" ;;
        confirm) printf '      confirm: %s\n' "${args[0]}" ;;
        dns) printf '      dns: wait until every resolver answers %s with %s\n' "${args[0]}" "${args[1]}" ;;
      esac
    done
  done
}

# ---- The runner (in a background subshell of the runbook) ------------------------------
# Settings: CL_DIG (a dig-compatible program), CL_RESOLVERS (array; empty: the system's),
# CL_DNS_INTERVAL and CL_DNS_TIMEOUT (seconds), CL_FINAL (a function run after the last
# step, inside the clock: EXP-009's smoke test).
CL_DIG=dig
CL_RESOLVERS=()
CL_DNS_INTERVAL=5
CL_DNS_TIMEOUT=600
CL_FINAL=""
CL_CHILD=""
CL_DIR=""
CL_IN=0
CL_ERR=2
CL_START=0
CL_FAILED=0
CL_DONE=0
CL_DNS_SECONDS=""

# rb_checklist_run DIR IN_FD ERR_FD: the procedure, step by step. Every event goes to
# DIR/events.tsv (time, step, kind, status, detail) and the timeline; the outcome to
# DIR/result.json. SIGTERM stops the command in progress and halts the procedure there.
rb_checklist_run() {
  CL_DIR=$1 CL_IN=$2 CL_ERR=$3
  trap 'rb__cl_halt "stopped by the runbook (SIGTERM)"' TERM
  trap 'rb__cl_halt "interrupted (SIGINT)"' INT
  CL_START=$(rb_now_ms)
  local s i
  for s in "${!CL_TITLES[@]}"; do
    rb__cl_event "$s" step started "${CL_TITLES[$s]}"
    rb__cl_say "== step $((s + 1))/${#CL_TITLES[@]}: ${CL_TITLES[$s]}"
    local step_failed=0
    for ((i = 0; i < CL_COUNT; i++)); do
      [ "${CL_STEPS[$i]}" -eq "$s" ] || continue
      rb__cl_directive "$s" "$i" || step_failed=1
    done
    local status="done"
    if [ "$step_failed" -ne 0 ]; then
      CL_FAILED=$((CL_FAILED + 1))
      status=failed
    fi
    CL_DONE=$((CL_DONE + 1))
    rb__cl_event "$s" step "$status" "${CL_TITLES[$s]}"
  done
  if [ -n "$CL_FINAL" ]; then
    "$CL_FINAL" || true
  fi
  rb__cl_result true ""
}

# rb__cl_directive STEP I: one directive; non-zero when it failed and the operator went on.
rb__cl_directive() {
  local s=$1 i=$2 rc answer
  local ref="CL_ARGS_${i}[@]"
  local args=("${!ref}")
  case ${CL_KINDS[$i]} in
    run)
      while :; do
        rb__cl_say "   run: $(rb_show "${args[@]}")"
        rc=0
        rb__cl_exec "${args[@]}" || rc=$?
        rb__cl_event "$s" run "$([ "$rc" -eq 0 ] && echo ok || echo "exit $rc")" "$(rb_show "${args[@]}")"
        [ "$rc" -ne 0 ] || return 0
        answer=$(rb__cl_ask "   the command failed (exit $rc): [r]etry, [c]ontinue anyway, [a]bort the procedure?")
        case $answer in
          r | retry) continue ;;
          c | continue) return 1 ;;
          *) rb__cl_halt "the operator aborted at step $((s + 1)) after a failed command" ;;
        esac
      done
      ;;
    confirm)
      answer=$(rb__cl_ask "   ${args[0]} [y/n]")
      case $answer in
        y | yes)
          rb__cl_event "$s" confirm yes "${args[0]}"
          return 0
          ;;
      esac
      rb__cl_event "$s" confirm "no (${answer:-no answer})" "${args[0]}"
      [ -n "$answer" ] || rb__cl_halt "no answer to '${args[0]}' (end of input)"
      answer=$(rb__cl_ask "   not confirmed: [c]ontinue anyway or [a]bort the procedure?")
      case $answer in
        c | continue) return 1 ;;
        *) rb__cl_halt "the operator aborted at step $((s + 1)): '${args[0]}' not confirmed" ;;
      esac
      ;;
    dns) rb__cl_dns "$s" "${args[0]}" "${args[1]}" ;;
  esac
}

# rb__cl_exec ARG...: a command in the background of the runner, so that SIGTERM can stop
# it; its output is kept in the procedure's log.
rb__cl_exec() {
  "$@" </dev/null >>"$CL_DIR/commands.log" 2>&1 &
  CL_CHILD=$!
  local rc=0
  wait "$CL_CHILD" || rc=$?
  CL_CHILD=""
  return "$rc"
}

# rb__cl_dns STEP NAME EXPECTED: polls every resolver until all answer EXPECTED.
rb__cl_dns() {
  local s=$1 name=$2 expected=$3 start now r all answers
  start=$(rb_now_ms)
  rb__cl_say "   dns: waiting until $([ "${#CL_RESOLVERS[@]}" -eq 0 ] && echo "the system's resolver answers" || echo "${#CL_RESOLVERS[@]} resolvers answer") $name with $expected (at most $CL_DNS_TIMEOUT s)"
  while :; do
    all=1
    for r in "${CL_RESOLVERS[@]:-}"; do
      answers=$(timeout 10 "$CL_DIG" +short "$name" ${r:+"@$r"} 2>>"$CL_DIR/commands.log") || answers=""
      rb__cl_answers_hold "$answers" "$expected" || all=0
      printf '%s\t%s\t%s\t%s\n' "$(rb_now)" "${r:-system}" "$name" "${answers//$'\n'/ }" >>"$CL_DIR/dns.tsv"
    done
    now=$(rb_now_ms)
    if [ "$all" -eq 1 ]; then
      CL_DNS_SECONDS=$(rb_seconds_between "$start" "$now")
      rb__cl_event "$s" dns "propagated after $CL_DNS_SECONDS s" "$name -> $expected"
      return 0
    fi
    if [ $((now - start)) -ge $((CL_DNS_TIMEOUT * 1000)) ]; then
      rb__cl_event "$s" dns "not propagated after $CL_DNS_TIMEOUT s" "$name -> $expected"
      return 1
    fi
    sleep "$CL_DNS_INTERVAL" &
    CL_CHILD=$!
    wait "$CL_CHILD" || true
    CL_CHILD=""
  done
}

# rb__cl_answers_hold ANSWERS EXPECTED: one line of ANSWERS is EXPECTED (case and a
# trailing dot aside).
rb__cl_answers_hold() {
  local line want=${2%.}
  while IFS= read -r line; do
    line=${line%.}
    [ "${line,,}" != "${want,,}" ] || return 0
  done <<<"$1"
  return 1
}

rb__cl_say() {
  printf '%s\n' "$1" >&"$CL_ERR"
}

# rb__cl_ask PROMPT: the operator's answer (lowercase, trimmed); empty at end of input.
rb__cl_ask() {
  local answer=""
  printf '%s ' "$1" >&"$CL_ERR"
  IFS= read -r answer <&"$CL_IN" || answer=""
  # Not a terminal (answers piped in): show what was answered.
  [ -t "$CL_IN" ] || printf '%s\n' "$answer" >&"$CL_ERR"
  answer=${answer,,}
  printf '%s' "${answer//[[:space:]]/}"
}

rb__cl_event() {
  local detail=${4//$'\t'/ }
  printf '%s\t%s\t%s\t%s\t%s\n' "$(rb_now)" "$(($1 + 1))" "$2" "$3" "$detail" >>"$CL_DIR/events.tsv"
  rb_mark "checklist-$2" "step $(($1 + 1)): $3: $detail"
}

# rb__cl_halt REASON: stops the command in progress, records the halt, ends the runner.
rb__cl_halt() {
  trap '' TERM INT
  [ -z "$CL_CHILD" ] || kill -TERM "$CL_CHILD" 2>/dev/null || true
  [ -z "$CL_CHILD" ] || wait "$CL_CHILD" 2>/dev/null || true
  rb__cl_say "procedure halted: $1"
  rb__cl_result false "$1"
  exit 3
}

# rb__cl_result COMPLETED HALT_REASON: DIR/result.json (completedSeconds only when completed).
rb__cl_result() {
  local fields=("completed:json=$1" "stepsDone:json=$CL_DONE" "steps:json=${#CL_TITLES[@]}"
    "failedSteps:json=$CL_FAILED" "stepsNotDone:json=$((${#CL_TITLES[@]} - CL_DONE + CL_FAILED))" "startedAt=$(date -u -d "@$((CL_START / 1000))" +%Y-%m-%dT%H:%M:%SZ)")
  [ "$1" != true ] || fields+=("completedSeconds:json=$(rb_seconds_between "$CL_START" "$(rb_now_ms)")")
  [ -z "$CL_DNS_SECONDS" ] || fields+=("dnsPropagatedSeconds:json=$CL_DNS_SECONDS")
  [ -z "$2" ] || fields+=("halted=$2")
  rb_verdict manifest --out "$CL_DIR/result.json.tmp" "${fields[@]}" && mv "$CL_DIR/result.json.tmp" "$CL_DIR/result.json"
}
