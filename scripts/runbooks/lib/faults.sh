# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# Faults: declared up front (so --help and the pre-injection printout list every rollback
# step), started at the injection (or an offset after it), stopped together in parallel,
# and their removal verified.
#
# Two kinds:
# - tool: a chaos-tools binary run in the background with --run-id RUNID-NAME --output json
#   --yes and the safety flags; its JSON report (faults/NAME.json) gives the fault window.
#   Stopped with `TOOL --stop RUNID-NAME` (plus rb_fault_stop_args), then SIGTERM if it
#   lingers; verified by its exit code and the report's revert status.
# - custom: two functions of the runbook, apply and revert (kubectl set env, scale...),
#   reverted after --fault-duration or on abort; verified by an optional verify function.

RB_FAULT_NAMES=()
RB_FAULT_KINDS=()
RB_FAULT_TOOLS=()
RB_FAULT_PATHS=()
RB_FAULT_APPLY=()
RB_FAULT_REVERT=()
RB_FAULT_VERIFY=()
RB_FAULT_ENDS=()
RB_FAULT_DESC=()
RB_FAULT_WHAT=()
RB_FAULT_AFTER=()
RB_FAULT_STATE=()
RB_FAULT_PIDS=()
RB_FAULT_STARTED=()
RB_FAULT_FOR=()
RB_SAFETY_ARGS=()

# rb__fault_index NAME: the index of a declared fault, or exit 2.
rb__fault_index() {
  local i
  for i in "${!RB_FAULT_NAMES[@]}"; do
    if [ "${RB_FAULT_NAMES[$i]}" = "$1" ]; then
      printf '%s' "$i"
      return 0
    fi
  done
  rb_fail 2 "internal: no fault named '$1'"
}

rb__declare_fault() {
  local name=$1 kind=$2
  [[ $name =~ ^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$ ]] || rb_fail 2 "internal: fault name '$name' (a-z, 0-9, '-', at most 16)"
  local existing
  for existing in "${RB_FAULT_NAMES[@]}"; do
    [ "$existing" != "$name" ] || rb_fail 2 "internal: two faults named '$name'"
  done
  RB_FAULT_NAMES+=("$name")
  RB_FAULT_KINDS+=("$kind")
  RB_FAULT_AFTER+=(0)
  RB_FAULT_STATE+=(declared)
  RB_FAULT_VERIFY+=("")
  RB_FAULT_ENDS+=("")
  RB_FAULT_PIDS+=("")
  RB_FAULT_STARTED+=("")
  RB_FAULT_FOR+=("")
}

# rb_fault_tool NAME TOOL ARG...: a chaos-tools fault.
rb_fault_tool() {
  local name=$1 tool=$2 i
  shift 2
  rb__declare_fault "$name" tool
  i=$((${#RB_FAULT_NAMES[@]} - 1))
  RB_FAULT_TOOLS[i]=$tool
  RB_FAULT_APPLY[i]=""
  RB_FAULT_REVERT[i]=""
  RB_FAULT_DESC[i]=""
  RB_FAULT_WHAT[i]=""
  declare -ga "RB_FAULT_ARGV_$i" "RB_FAULT_STOP_$i"
  local -n _rb_argv="RB_FAULT_ARGV_$i"
  _rb_argv=("$@")
}

# rb_fault_stop_args NAME ARG...: extra arguments for `TOOL --stop RUNID` (remote targeting).
rb_fault_stop_args() {
  local i
  i=$(rb__fault_index "$1")
  shift
  local -n _rb_stop="RB_FAULT_STOP_$i"
  _rb_stop=("$@")
}

# rb_fault_custom NAME APPLY_FN REVERT_FN ROLLBACK_TEXT [WHAT_TEXT]: a fault the runbook
# applies itself; WHAT_TEXT (what it does, for people) is printed instead of APPLY_FN.
rb_fault_custom() {
  local name=$1 apply=$2 revert=$3 desc=$4 what=${5:-$2} i
  declare -F "$apply" >/dev/null || rb_fail 2 "internal: '$apply' is not a function"
  declare -F "$revert" >/dev/null || rb_fail 2 "internal: '$revert' is not a function"
  rb__declare_fault "$name" custom
  i=$((${#RB_FAULT_NAMES[@]} - 1))
  RB_FAULT_TOOLS[i]=""
  RB_FAULT_APPLY[i]=$apply
  RB_FAULT_REVERT[i]=$revert
  RB_FAULT_DESC[i]=$desc
  RB_FAULT_WHAT[i]=$what
}

# rb_fault_verify NAME FN: FN checks, after removal, that nothing of the fault is left.
rb_fault_verify() {
  local i
  declare -F "$2" >/dev/null || rb_fail 2 "internal: '$2' is not a function"
  i=$(rb__fault_index "$1")
  RB_FAULT_VERIFY[i]=$2
}

# rb_fault_ends_when NAME FN: a custom fault that can end by itself (an AWS FIS
# experiment, a guided procedure): FN is called once a second while it is in place and
# returns 0 once it has ended. Its revert function still runs then (to clean up what is
# left: a template, a process); --fault-duration stays the cap after which it is reverted.
rb_fault_ends_when() {
  local i
  declare -F "$2" >/dev/null || rb_fail 2 "internal: '$2' is not a function"
  i=$(rb__fault_index "$1")
  [ "${RB_FAULT_KINDS[$i]}" = custom ] || rb_fail 2 "internal: rb_fault_ends_when is for custom faults ('$1' is a tool)"
  RB_FAULT_ENDS[i]=$2
}

# rb_fault_after NAME SECONDS: start the fault SECONDS after the injection (game day).
rb_fault_after() {
  local i offset
  i=$(rb__fault_index "$1")
  rb__seconds offset "offset of $1" "$2"
  RB_FAULT_AFTER[i]=$offset
}

# rb_fault_for NAME SECONDS: how long custom fault NAME stays (default --fault-duration).
rb_fault_for() {
  local i seconds
  i=$(rb__fault_index "$1")
  rb__seconds seconds "duration of $1" "$2"
  RB_FAULT_FOR[i]=$seconds
}

# rb__fault_for I: how long custom fault I stays, in seconds.
rb__fault_for() {
  printf '%s' "${RB_FAULT_FOR[$1]:-$RB_FAULT_DURATION}"
}

rb__fault_run_id() {
  printf '%s-%s' "${RB_RUN_ID:-RUNID}" "${RB_FAULT_NAMES[$1]}"
}

# rb__rollback I: how fault I is removed, for people (printed before the injection).
rb__rollback() {
  local i=$1
  if [ "${RB_FAULT_KINDS[$i]}" = tool ]; then
    local ref="RB_FAULT_STOP_${i}[@]"
    local stop=("${!ref}")
    printf '%s (the tool reverts what it applied; %s --cleanup removes leftovers of its kind)' \
      "$(rb_show "${RB_FAULT_TOOLS[$i]}" --stop "$(rb__fault_run_id "$i")" "${stop[@]}")" "${RB_FAULT_TOOLS[$i]}"
  else
    printf '%s' "${RB_FAULT_DESC[$i]}"
  fi
}

rb__print_faults() {
  local i
  for i in "${!RB_FAULT_NAMES[@]}"; do
    if [ "${RB_FAULT_KINDS[$i]}" = tool ]; then
      local ref="RB_FAULT_ARGV_${i}[@]"
      local argv=("${!ref}")
      printf '  %s (after %s s): %s\n' "${RB_FAULT_NAMES[$i]}" "${RB_FAULT_AFTER[$i]}" "$(rb_show "${RB_FAULT_TOOLS[$i]}" "${argv[@]}")"
    else
      printf '  %s (after %s s, for %s s): %s\n' "${RB_FAULT_NAMES[$i]}" "${RB_FAULT_AFTER[$i]}" "$(rb__fault_for "$i")" "${RB_FAULT_WHAT[$i]}"
    fi
    printf '    rollback: %s\n' "$(rb__rollback "$i")"
  done
}

# rb__fault_start I: applies fault I now.
rb__fault_start() {
  local i=$1 name=${RB_FAULT_NAMES[$1]}
  RB_FAULT_STARTED[i]=$(rb_now_ms)
  rb__tl fault-start "$name" "$(rb_now)"
  RB_FAULT_STATE[i]=active
  if [ "${RB_FAULT_KINDS[$i]}" = tool ]; then
    local ref="RB_FAULT_ARGV_${i}[@]"
    local argv=("${!ref}")
    local full=("${RB_FAULT_PATHS[$i]}" "${argv[@]}" "${RB_SAFETY_ARGS[@]}" --run-id "$(rb__fault_run_id "$i")" --output json --yes)
    rb_log "injecting $name: $(rb_show "${full[@]}")"
    rb__tl fault-report "$name" "faults/$name.json"
    "${full[@]}" >"$RB_DIR/faults/$name.json" 2>"$RB_DIR/faults/$name.log" &
    RB_FAULT_PIDS[i]=$!
  else
    rb_log "injecting $name: ${RB_FAULT_WHAT[$i]}"
    if ! "${RB_FAULT_APPLY[$i]}" >>"$RB_DIR/faults/$name.log" 2>&1; then
      rb__abort error "applying $name failed (see faults/$name.log)"
    fi
  fi
}

# rb__fault_active I: true while fault I is (or may be) in place.
rb__fault_active() {
  [ "${RB_FAULT_STATE[$1]}" = active ]
}

rb__tool_active() {
  [ "${RB_FAULT_STATE[$1]}" = active ] && [ "${RB_FAULT_KINDS[$1]}" = tool ]
}

rb__any_fault_active() {
  local i
  for i in "${!RB_FAULT_NAMES[@]}"; do
    rb__fault_active "$i" && return 0
  done
  return 1
}

rb__any_fault_pending() {
  local i
  for i in "${!RB_FAULT_NAMES[@]}"; do
    [ "${RB_FAULT_STATE[$i]}" = declared ] && return 0
  done
  return 1
}

# rb__faults_tick ELAPSED_S: starts faults whose offset has come, notices tools that
# ended by themselves, reverts custom faults whose time is up.
rb__faults_tick() {
  local elapsed=$1 i
  for i in "${!RB_FAULT_NAMES[@]}"; do
    case ${RB_FAULT_STATE[$i]} in
      declared)
        if [ "$elapsed" -ge "${RB_FAULT_AFTER[$i]}" ] && [ -z "${RB_ABORT:-}" ]; then
          rb__fault_start "$i"
        fi
        ;;
      active)
        if [ "${RB_FAULT_KINDS[$i]}" = tool ]; then
          kill -0 "${RB_FAULT_PIDS[$i]}" 2>/dev/null || rb__fault_gone "$i"
        elif rb__custom_ended "$i"; then
          rb_log "${RB_FAULT_NAMES[$i]} ended by itself"
          rb__revert_custom "$i" && rb__fault_gone "$i"
        elif [ $(($(rb_now_ms) - RB_FAULT_STARTED[i])) -ge $(($(rb__fault_for "$i") * 1000)) ]; then
          rb__revert_custom "$i" && rb__fault_gone "$i"
        fi
        ;;
    esac
  done
}

# rb__custom_ended I: true when custom fault I has an end probe that says it ended.
rb__custom_ended() {
  local i=$1
  [ -n "${RB_FAULT_ENDS[$i]}" ] || return 1
  "${RB_FAULT_ENDS[$i]}" >>"$RB_DIR/faults/${RB_FAULT_NAMES[$i]}.log" 2>&1
}

# rb__revert_custom I: the runbook's revert function; failure is recorded, not fatal.
rb__revert_custom() {
  local i=$1 name=${RB_FAULT_NAMES[$1]}
  rb_log "reverting $name: ${RB_FAULT_REVERT[$i]}"
  if ! "${RB_FAULT_REVERT[$i]}" >>"$RB_DIR/faults/$name.log" 2>&1; then
    RB_FAULT_STATE[i]="revert-failed"
    rb__tl cleanup "$name" "$(rb_now)" "failed: ${RB_FAULT_REVERT[$i]} failed (see faults/$name.log); revert by hand: $(rb__rollback "$i")"
    rb_log "REVERT FAILED for $name: revert by hand: $(rb__rollback "$i")"
    return 1
  fi
}

# rb__fault_gone I: fault I is no longer in place; records when, then verifies.
rb__fault_gone() {
  local i=$1 name=${RB_FAULT_NAMES[$1]} rc=0 status why=""
  rb__tl fault-end "$name" "$(rb_now)"
  RB_FAULT_STATE[i]=gone
  if [ "${RB_FAULT_KINDS[$i]}" = tool ]; then
    wait "${RB_FAULT_PIDS[$i]}" 2>/dev/null || rc=$?
    status=$(rb_verdict get "$RB_DIR/faults/$name.json" /revert/status 2>/dev/null || printf 'unreadable')
    case $status in
      reverted | not-applied) [ "$rc" -ne 4 ] || why="exit 4 (revert failed)" ;;
      *) why="the report's revert status is '$status' (exit $rc)" ;;
    esac
  fi
  if [ -z "$why" ] && [ -n "${RB_FAULT_VERIFY[$i]}" ]; then
    "${RB_FAULT_VERIFY[$i]}" >>"$RB_DIR/faults/$name.log" 2>&1 || why="${RB_FAULT_VERIFY[$i]} found it still in place"
  fi
  if [ -z "$why" ]; then
    rb__tl cleanup "$name" "$(rb_now)" verified
    rb_log "$name removed (verified)"
  else
    rb__tl cleanup "$name" "$(rb_now)" "failed: $why; remove it by hand: $(rb__rollback "$i")"
    rb_log "REMOVAL NOT VERIFIED for $name: $why; remove it by hand: $(rb__rollback "$i")"
  fi
}

# rb__stop_all_faults: every fault in place, stopped in parallel; returns when each is
# gone (a tool that ignores --stop gets SIGTERM after 10 s, SIGKILL after 20 s) and
# verified. Faults not started yet never start.
rb__stop_all_faults() {
  local i name stoppers=() reverts=() rc
  for i in "${!RB_FAULT_NAMES[@]}"; do
    [ "${RB_FAULT_STATE[$i]}" != declared ] || RB_FAULT_STATE[i]=skipped
    rb__fault_active "$i" || continue
    name=${RB_FAULT_NAMES[$i]}
    if [ "${RB_FAULT_KINDS[$i]}" = tool ]; then
      local ref="RB_FAULT_STOP_${i}[@]"
      local stop=("${!ref}")
      rb_log "stopping $name: $(rb_show "${RB_FAULT_TOOLS[$i]}" --stop "$(rb__fault_run_id "$i")" "${stop[@]}")"
      "${RB_FAULT_PATHS[$i]}" --stop "$(rb__fault_run_id "$i")" "${stop[@]}" --output json \
        >>"$RB_DIR/faults/$name.stop.json" 2>>"$RB_DIR/faults/$name.log" &
      stoppers+=($!)
    else
      # In a subshell so that every revert runs at once; its status comes back by wait.
      (rb__revert_custom "$i") &
      reverts[i]=$!
    fi
  done
  rb__await_tools
  for i in "${!reverts[@]}"; do
    rc=0
    wait "${reverts[$i]}" || rc=$?
    if [ "$rc" -eq 0 ]; then
      rb__fault_gone "$i"
    else
      RB_FAULT_STATE[i]="revert-failed"
    fi
  done
  for i in "${stoppers[@]}"; do
    wait "$i" 2>/dev/null || true
  done
}

# rb__await_tools: polls the stopped tools (every 50 ms) and records each as it goes.
rb__await_tools() {
  local start i waited
  start=$(rb_now_ms)
  while :; do
    local left=0
    for i in "${!RB_FAULT_NAMES[@]}"; do
      rb__tool_active "$i" || continue
      if kill -0 "${RB_FAULT_PIDS[$i]}" 2>/dev/null; then
        left=1
      else
        rb__fault_gone "$i"
      fi
    done
    [ "$left" -eq 1 ] || return 0
    waited=$(($(rb_now_ms) - start))
    for i in "${!RB_FAULT_NAMES[@]}"; do
      rb__tool_active "$i" || continue
      if [ "$waited" -ge 20000 ]; then
        kill -KILL "${RB_FAULT_PIDS[$i]}" 2>/dev/null || true
      elif [ "$waited" -ge 10000 ]; then
        kill -TERM "${RB_FAULT_PIDS[$i]}" 2>/dev/null || true
      fi
    done
    sleep 0.05
  done
}
