# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# Declarations (what the runbook is) and the command line (what this run is).

# What the runbook declares.
RB_EXPERIMENT=""
RB_TITLE=""
RB_HYPOTHESIS=""
RB_DESTRUCTIVE=0
RB_USES_KUBE=0
RB_OPT_FLAGS=()
RB_OPT_VARS=()
RB_OPT_KINDS=()
RB_OPT_HELP=()

# What the command line sets (defaults from the seed; rb_defaults changes them).
RB_HELP=0
RB_DRY_RUN=0
RB_ENVIRONMENT=${CHAOS_ENVIRONMENT:-staging}
RB_NAMESPACE=lomash-wood
RB_CONTEXT=""
RB_BASE_URL=${BASE_URL:-}
RB_BASELINE=60
RB_FAULT_DURATION=60
RB_RECOVERY=60
RB_VUS=10
RB_RATE=""
RB_K6_SCRIPT=""
RB_K6_ENV=()
RB_RESULT_LOG=${CHAOS_RESULT_LOG:-chaos-results.md}
RB_RESULTS_DIR=results
RB_RUN_ID=""
RB_APPROVED_BY=""
RB_OBSERVER=""
RB_ALLOW_PEAK=""
RB_PROTECTED=()
RB_FREEZE_NAMESPACE=""
RB_CONFIRMS=()
RB_GUARD_CMD=""
RB_GUARD_ERROR_RATE=10
RB_GUARD_WINDOW=10
RB_GUARD_MIN_SAMPLES=20
RB_GUARD_BREACHES=3
RB_BAND_WINDOW=5
RB_BAND_WINDOWS=3
RB_ARGS=()
# --namespace and --context as the tools and kubectl take them (set by rb_parse_args).
RB_KUBE_ARGS=()

# rb_experiment ID TITLE HYPOTHESIS
rb_experiment() {
  [[ $1 =~ ^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$ ]] || rb_fail 2 "internal: '$1' is not an experiment id like EXP-001"
  RB_EXPERIMENT=$1
  RB_TITLE=$2
  RB_HYPOTHESIS=$3
}

# rb_destructive: the seed's destructive experiments (EXP-008, EXP-009) need --approved-by.
rb_destructive() {
  RB_DESTRUCTIVE=1
}

# rb_uses_kube: preflight checks the cluster and the freeze switch; events are collected.
rb_uses_kube() {
  RB_USES_KUBE=1
}

# rb_defaults KEY=VALUE...: this runbook's defaults (baseline, fault, recovery, vus, rate,
# band-window, band-windows), from the seed; flags still override them.
rb_defaults() {
  local pair
  for pair in "$@"; do
    case $pair in
      baseline=*) rb__seconds RB_BASELINE baseline "${pair#*=}" ;;
      fault=*) rb__seconds RB_FAULT_DURATION fault "${pair#*=}" ;;
      recovery=*) rb__seconds RB_RECOVERY recovery "${pair#*=}" ;;
      vus=*) rb__count RB_VUS vus "${pair#*=}" ;;
      rate=*) rb__count RB_RATE rate "${pair#*=}" ;;
      band-window=*) rb__seconds RB_BAND_WINDOW band-window "${pair#*=}" ;;
      band-windows=*) rb__count RB_BAND_WINDOWS band-windows "${pair#*=}" ;;
      *) rb_fail 2 "internal: unknown default '$pair'" ;;
    esac
  done
}

# rb_option FLAG VAR DEFAULT HELP [text|seconds|count|switch|list]: a flag of this
# runbook. A list flag may be repeated: VAR is an array of the values in order (DEFAULT
# is ignored; it starts empty).
rb_option() {
  local flag=$1 var=$2 default=$3 help=$4 kind=${5:-text}
  [[ $flag =~ ^--[a-z][a-z0-9-]*$ ]] || rb_fail 2 "internal: '$flag' is not a --flag"
  # A runbook flag named as a common one would silently shadow it (EXP-006's leak rate
  # once took --rate, k6's): refused. The common flags are rb__common_flag's case labels.
  if grep -Eq -- "(^|[ |])$flag( \||\))" <<<"$(declare -f rb__common_flag)"; then
    rb_fail 2 "internal: $flag is a common flag of every runbook"
  fi
  RB_OPT_FLAGS+=("$flag")
  RB_OPT_VARS+=("$var")
  RB_OPT_KINDS+=("$kind")
  RB_OPT_HELP+=("$help")
  if [ "$kind" = list ]; then
    rb__set "$var" ""
    declare -ga "$var=()"
  else
    rb__set "$var" "$default"
  fi
}

# rb__option_value I VALUE: sets runbook option I, checked by its kind.
rb__option_value() {
  local i=$1 value=$2
  case ${RB_OPT_KINDS[$i]} in
    switch) rb__set "${RB_OPT_VARS[$i]}" 1 ;;
    seconds) rb__seconds "${RB_OPT_VARS[$i]}" "${RB_OPT_FLAGS[$i]}" "$value" ;;
    count) rb__count "${RB_OPT_VARS[$i]}" "${RB_OPT_FLAGS[$i]}" "$value" ;;
    list)
      rb__plain "${RB_OPT_FLAGS[$i]}" "$value"
      local -n _rb_list="${RB_OPT_VARS[$i]}"
      _rb_list+=("$value")
      ;;
    *) rb__plain "${RB_OPT_FLAGS[$i]}" "$value" && rb__set "${RB_OPT_VARS[$i]}" "$value" ;;
  esac
}

# rb_parse_args "$@": the common flags and the runbook's own. Bad input: exit 2.
rb_parse_args() {
  RB_ARGS=("$@")
  local arg flag value has_value opt
  while [ $# -gt 0 ]; do
    arg=$1
    shift
    flag=${arg%%=*}
    value=""
    has_value=0
    if [[ $arg == --*=* ]]; then
      value=${arg#*=}
      has_value=1
    fi
    opt=$(rb__option_index "$flag")
    if rb__is_switch "$flag" "$opt"; then
      [ "$has_value" -eq 0 ] || rb_fail 2 "$flag takes no value"
    elif [ "$has_value" -eq 0 ]; then
      [ $# -gt 0 ] || rb_fail 2 "$flag needs a value (see --help)"
      value=$1
      shift
    fi
    case $flag in
      -h | --help) RB_HELP=1 ;;
      --dry-run) RB_DRY_RUN=1 ;;
      *)
        if [ -n "$opt" ]; then
          rb__option_value "$opt" "$value"
        else
          rb__common_flag "$flag" "$value"
        fi
        ;;
    esac
  done
  rb__check_args
  RB_KUBE_ARGS=(--namespace "$RB_NAMESPACE")
  [ -z "$RB_CONTEXT" ] || RB_KUBE_ARGS+=(--context "$RB_CONTEXT")
}

# rb__option_index FLAG: the index of a runbook flag, or nothing.
rb__option_index() {
  local i
  for i in "${!RB_OPT_FLAGS[@]}"; do
    if [ "$1" = "${RB_OPT_FLAGS[$i]}" ]; then
      printf '%s' "$i"
      return 0
    fi
  done
}

# rb__is_switch FLAG OPTION_INDEX: true for flags without a value.
rb__is_switch() {
  case $1 in
    -h | --help | --dry-run) return 0 ;;
  esac
  [ -n "$2" ] && [ "${RB_OPT_KINDS[$2]}" = switch ]
}

# rb__common_flag FLAG VALUE: a flag every runbook has.
rb__common_flag() {
  local flag=$1 value=$2
  rb__plain "$flag" "$value"
  case $flag in
    --environment) RB_ENVIRONMENT=$value ;;
    --namespace | -n) RB_NAMESPACE=$value ;;
    --context) RB_CONTEXT=$value ;;
    --base-url) RB_BASE_URL=$value ;;
    --baseline) rb__seconds RB_BASELINE "$flag" "$value" ;;
    --fault-duration) rb__seconds RB_FAULT_DURATION "$flag" "$value" ;;
    --recovery) rb__seconds RB_RECOVERY "$flag" "$value" ;;
    --vus) rb__count RB_VUS "$flag" "$value" ;;
    --rate) rb__count RB_RATE "$flag" "$value" ;;
    --k6-script) RB_K6_SCRIPT=$value ;;
    --k6-env)
      [[ $value =~ ^[A-Z_][A-Z0-9_]*=.*$ ]] || rb_fail 2 "--k6-env takes NAME=VALUE, not '$value'"
      RB_K6_ENV+=("$value")
      ;;
    --result-log) RB_RESULT_LOG=$value ;;
    --results-dir) RB_RESULTS_DIR=$value ;;
    --run-id) RB_RUN_ID=$value ;;
    --approved-by) RB_APPROVED_BY=$value ;;
    --observer) RB_OBSERVER=$value ;;
    --allow-peak-hours) RB_ALLOW_PEAK=$value ;;
    --protected-namespace) RB_PROTECTED+=("$value") ;;
    --freeze-namespace) RB_FREEZE_NAMESPACE=$value ;;
    --confirm) RB_CONFIRMS+=("$value") ;;
    --guard-cmd) RB_GUARD_CMD=$value ;;
    --guard-error-rate) rb__number RB_GUARD_ERROR_RATE "$flag" "$value" ;;
    --guard-window) rb__seconds RB_GUARD_WINDOW "$flag" "$value" ;;
    --guard-min-samples) rb__count RB_GUARD_MIN_SAMPLES "$flag" "$value" ;;
    --guard-breaches) rb__count RB_GUARD_BREACHES "$flag" "$value" ;;
    --band-window) rb__seconds RB_BAND_WINDOW "$flag" "$value" ;;
    --band-windows) rb__count RB_BAND_WINDOWS "$flag" "$value" ;;
    *) rb_fail 2 "unknown flag '$flag' (see --help)" ;;
  esac
}

# rb__check_args: values that need more than their own flag to be judged.
rb__check_args() {
  case $RB_ENVIRONMENT in
    staging | production | development) ;;
    *) rb_fail 2 "--environment must be staging, production or development, not '$RB_ENVIRONMENT'" ;;
  esac
  if [ "$RB_HELP" -eq 0 ]; then
    [[ $RB_BASE_URL =~ ^https?://[^[:space:]/]+ ]] || rb_fail 2 "--base-url (or BASE_URL) must be an http(s) URL such as http://localhost:3000, not '$RB_BASE_URL'"
  fi
  if [ -n "$RB_RUN_ID" ] && ! [[ $RB_RUN_ID =~ ^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$ ]]; then
    rb_fail 2 "--run-id must be lowercase letters, digits and '-', at most 22, not '$RB_RUN_ID'"
  fi
  if [ -n "$RB_GUARD_CMD" ] && ! [ -x "$RB_GUARD_CMD" ]; then
    rb_fail 2 "--guard-cmd must be an executable file (it runs with no arguments; wrap a command line in a script), not '$RB_GUARD_CMD'"
  fi
  [ -n "$RB_RESULT_LOG" ] || rb_fail 2 "--result-log must name a file"
  [ "$((10#${RB_GUARD_ERROR_RATE%%.*}))" -lt 100 ] || rb_fail 2 "--guard-error-rate must be below 100 (%), not '$RB_GUARD_ERROR_RATE'"
  # chaos-verdict's ranges, judged here so that a run never starts with a guard or a
  # verdict that would refuse its flags halfway.
  [ "$RB_GUARD_WINDOW" -le 3600 ] || rb_fail 2 "--guard-window must be at most 3600 s, not '$RB_GUARD_WINDOW'"
  [ "$RB_GUARD_BREACHES" -le 600 ] || rb_fail 2 "--guard-breaches must be at most 600, not '$RB_GUARD_BREACHES'"
  [ "$RB_BAND_WINDOWS" -le 100 ] || rb_fail 2 "--band-windows must be at most 100, not '$RB_BAND_WINDOWS'"
}

# rb__usage: --help, printed by rb_main once the runbook's declarations are known.
rb__usage() {
  local i
  cat <<TXT
$RB_EXPERIMENT: $RB_TITLE

Hypothesis: $RB_HYPOTHESIS

Usage: $RB_SCRIPT [FLAGS]

Runs the experiment end to end: preflight, k6 baseline, injection, observation (the abort
guard every second), recovery, verdict. Writes results/<date>-$RB_EXPERIMENT-<runid>/ and a row
in the result log. Exit: 0 PASS, 1 FAIL, 5 PARTIAL, 6 ABORTED, 2 bad input, 3 refused.

Pass criteria (checks):
TXT
  rb__print_checks
  printf '\nFaults and their rollback (printed again before the injection):\n'
  rb__print_faults
  if [ "${#RB_OPT_FLAGS[@]}" -gt 0 ]; then
    printf '\nThis runbook'"'"'s flags:\n'
    for i in "${!RB_OPT_FLAGS[@]}"; do
      if [ "${RB_OPT_KINDS[$i]}" = list ]; then
        printf '  %-24s %s (repeatable)\n' "${RB_OPT_FLAGS[$i]} VALUE" "${RB_OPT_HELP[$i]}"
      else
        printf '  %-24s %s (now: %s)\n' "${RB_OPT_FLAGS[$i]} ${RB_OPT_KINDS[$i]/switch/}" "${RB_OPT_HELP[$i]}" "${!RB_OPT_VARS[$i]}"
      fi
    done
  fi
  cat <<TXT

Common flags:
  --environment ENV        staging (default), production, development (CHAOS_ENVIRONMENT)
  -n, --namespace NS       target namespace (default lomash-wood); --context CTX
  --base-url URL           the API gateway k6 loads (default \$BASE_URL; now: ${RB_BASE_URL:-unset})
  --baseline S             steady-state baseline (default now: $RB_BASELINE s)
  --fault-duration S       how long faults stay in place (now: $RB_FAULT_DURATION s)
  --recovery S             recovery validation after the faults are gone (now: $RB_RECOVERY s)
  --vus N, --rate N        k6 virtual users (now: $RB_VUS), iterations per second (now: ${RB_RATE:-none})
  --k6-script FILE         run this k6 script instead of the runbook's first; --k6-env NAME=VALUE
  --result-log FILE        the result log (default \$CHAOS_RESULT_LOG, else chaos-results.md)
  --results-dir DIR        where run directories go (default results); --run-id ID
  --approved-by NAME       approval (required for destructive experiments)
  --observer NAME          the second engineer watching the dashboards (required in production)
  --allow-peak-hours WHY   run in production between 08:00 and 20:00 GMT anyway
  --protected-namespace NS never touched (repeatable; also CHAOS_PROTECTED_NAMESPACES)
  --freeze-namespace NS    where the chaos-freeze ConfigMap is looked for (default: the target's)
  --confirm NAME           confirm a manual check by its name (repeatable)
  --guard-cmd PATH         run every second while faults are in place; failing aborts (data loss check)
  --guard-error-rate P     abort above P% errors (default 10) over --guard-window S (default 10),
                           with at least --guard-min-samples N (20) for --guard-breaches N (3) seconds
  --band-window S, --band-windows K   recovery: K windows of S seconds inside the baseline band
  --dry-run                print every step (tool dry-runs included) and touch nothing
  -h, --help               this help
TXT
}
