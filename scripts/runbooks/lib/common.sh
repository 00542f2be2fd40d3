# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# Output, values and programs: the small helpers every other part uses.

RB_SCRIPT=$(basename "$0")

# rb_log MESSAGE...: a timestamped line on stderr (stdout is kept for results).
rb_log() {
  printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$RB_SCRIPT" "$*" >&2
}

# rb_fail CODE MESSAGE...: one line on stderr and exit CODE (2 bad input, 3 refused).
rb_fail() {
  local code=$1
  shift
  printf '%s: error: %s\n' "$RB_SCRIPT" "$*" >&2
  exit "$code"
}

# rb_now: the time as the timeline and the tools write it (UTC, milliseconds).
rb_now() {
  date -u +%Y-%m-%dT%H:%M:%S.%3NZ
}

# rb_now_ms: milliseconds since the epoch.
rb_now_ms() {
  date -u +%s%3N
}

# rb_epoch_ms TIME: an RFC 3339 / ISO 8601 time (as AWS and Kubernetes print them) as
# milliseconds since the epoch; non-zero when it cannot be read.
rb_epoch_ms() {
  [[ $1 =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[T\ ][0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?$ ]] || return 1
  date -u -d "$1" +%s%3N 2>/dev/null
}

# rb_seconds_between FROM_MS TO_MS: the seconds between two epoch milliseconds, with
# one decimal (negative when TO is before FROM).
rb_seconds_between() {
  local d=$(($2 - $1)) sign=""
  if [ "$d" -lt 0 ]; then
    sign=-
    d=$((-d))
  fi
  printf '%s%d.%d' "$sign" $((d / 1000)) $((d % 1000 / 100))
}

# rb_show ARG...: an argument vector quoted for display (never executed).
rb_show() {
  local out
  printf -v out '%q ' "$@"
  printf '%s' "${out% }"
}

# rb__set VAR VALUE: assigns without eval; VAR must be a plain variable name.
rb__set() {
  [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || rb_fail 2 "internal: '$1' is not a variable name"
  printf -v "$1" '%s' "$2"
}

# The setters below keep their locals prefixed: rb__set assigns by name in the caller's
# scope, and a local of the same name here would take the value instead.

# rb__seconds VAR FLAG VALUE: VALUE as whole seconds (90, 90s, 2m), at least 1.
rb__seconds() {
  local _rb_n
  if [[ $3 =~ ^([0-9]{1,7})s?$ ]]; then
    _rb_n=$((10#${BASH_REMATCH[1]}))
  elif [[ $3 =~ ^([0-9]{1,5})m$ ]]; then
    _rb_n=$((10#${BASH_REMATCH[1]} * 60))
  else
    rb_fail 2 "$2 must be whole seconds (90, 90s or 2m), not '$3'"
  fi
  [ "$_rb_n" -ge 1 ] || rb_fail 2 "$2 must be at least 1 second"
  rb__set "$1" "$_rb_n"
}

# rb__count VAR FLAG VALUE: a whole number above 0.
rb__count() {
  [[ $3 =~ ^[1-9][0-9]{0,8}$ ]] || rb_fail 2 "$2 must be a whole number above 0, not '$3'"
  rb__set "$1" "$3"
}

# rb__number VAR FLAG VALUE: a decimal number (0, 10, 2.5).
rb__number() {
  [[ $3 =~ ^[0-9]{1,9}(\.[0-9]{1,6})?$ ]] || rb_fail 2 "$2 must be a number, not '$3'"
  rb__set "$1" "$3"
}

# rb__plain LABEL VALUE: refuses tabs and newlines (they would break the files we write).
rb__plain() {
  case $2 in
    *$'\t'* | *$'\n'* | *$'\r'*) rb_fail 2 "$1 must not contain tabs or newlines" ;;
  esac
}

# rb_bin NAME: the path of a program: $CHAOS_BIN_DIR/NAME, then PATH, then this
# repository's target/release, target/debug and dist/. chaos-verdict: $CHAOS_VERDICT first.
rb_bin() {
  local name=$1 dir
  if [ "$name" = chaos-verdict ] && [ -n "${CHAOS_VERDICT:-}" ]; then
    [ -x "$CHAOS_VERDICT" ] || rb_fail 2 "CHAOS_VERDICT=$CHAOS_VERDICT is not an executable"
    printf '%s\n' "$CHAOS_VERDICT"
    return 0
  fi
  if [ -n "${CHAOS_BIN_DIR:-}" ] && [ -x "$CHAOS_BIN_DIR/$name" ]; then
    printf '%s\n' "$CHAOS_BIN_DIR/$name"
    return 0
  fi
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    return 0
  fi
  for dir in "$RB_REPO/target/release" "$RB_REPO/target/debug" "$RB_REPO/dist"; do
    if [ -x "$dir/$name" ]; then
      printf '%s\n' "$dir/$name"
      return 0
    fi
  done
  return 1
}

# rb__require_bin VAR NAME: rb_bin or exit 2 saying how to get it.
rb__require_bin() {
  local path
  path=$(rb_bin "$2") || rb_fail 2 "$2 not found (PATH, CHAOS_BIN_DIR, target/, dist/): build it with cargo build --release -p $2, or install it"
  rb__set "$1" "$path"
}

# rb_verdict ARG...: chaos-verdict.
rb_verdict() {
  "$RB_VERDICT" "$@"
}

# rb_sleep SECONDS: sleeps in a way a trapped signal interrupts at once (the exit trap
# ends the sleep, so nothing of the run outlives it).
RB_SLEEP_PID=""
rb_sleep() {
  sleep "$1" &
  RB_SLEEP_PID=$!
  wait "$RB_SLEEP_PID" || true
  RB_SLEEP_PID=""
}

# rb_kubectl ARG...: kubectl with --context when one was given.
rb_kubectl() {
  if [ -n "$RB_CONTEXT" ]; then
    kubectl --context "$RB_CONTEXT" "$@"
  else
    kubectl "$@"
  fi
}
