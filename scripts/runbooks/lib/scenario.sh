# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# Game-day scenario files (scripts/runbooks/scenarios/*.conf, docs/runbooks.md#game-day):
# read line by line with `read`, every field checked; never sourced or evaluated. A bad
# file is one line on stderr (FILE:LINE: what) and exit 2, before anything is touched.
#
#   # a comment; blank lines are ignored
#   title TEXT...
#   restore-clock DURATION                       (90, 90s, 20m; --restore-clock wins)
#   fault NAME KIND TARGET OFFSET [KEY=VALUE...]
#
# KIND, what TARGET is, and the keys it takes (DURATION as for restore-clock):
#   redis-down     a StatefulSet, scaled to 0 and back       for=DURATION
#   pod-oom        a Deployment, one pod's container OOM-killed by an in-pod memory-leak
#                  rate=MiB/s (50) limit=MiB (512) for=DURATION (cap; the OOM kill ends it)
#   booking-surge  the Deployment that takes the bookings (its pods must stay Ready); a
#                  second k6 run of appointments.js      peak=N/s (20) for=DURATION
#                  ramp=DURATION (up, and down again; default a quarter of its time, at most 30 s)
# OFFSET: whole seconds after the injection starts (0 = at once). 2 or 3 faults (the
# seed's game day), each kind at most once.

SC_FILE=""
SC_TITLE=""
SC_CLOCK=""
SC_NAMES=()
SC_KINDS=()
SC_TARGETS=()
SC_OFFSETS=()
SC_FOR=()
SC_PEAK=()
SC_RAMP=()
SC_RATE=()
SC_LIMIT=()

rb__sc_fail() {
  rb_fail 2 "scenario $SC_FILE:$1: $2"
}

# rb__sc_duration LINE WHAT VALUE: whole seconds (90, 90s, 20m), 1 s to 24 h, on stdout.
rb__sc_duration() {
  local n
  if [[ $3 =~ ^([0-9]{1,5})s?$ ]]; then
    n=$((10#${BASH_REMATCH[1]}))
  elif [[ $3 =~ ^([0-9]{1,4})m$ ]]; then
    n=$((10#${BASH_REMATCH[1]} * 60))
  else
    rb__sc_fail "$1" "$2 must be a duration such as 90, 90s or 2m, not '$3'"
  fi
  if [ "$n" -lt 1 ] || [ "$n" -gt 86400 ]; then
    rb__sc_fail "$1" "$2 must be between 1 s and 24 h, not '$3'"
  fi
  printf '%s' "$n"
}

# rb__sc_count LINE WHAT VALUE MAX: a whole number from 1 to MAX, on stdout.
rb__sc_count() {
  if ! [[ $3 =~ ^[1-9][0-9]{0,5}$ ]] || [ "$3" -gt "$4" ]; then
    rb__sc_fail "$1" "$2 must be a whole number from 1 to $4, not '$3'"
  fi
  printf '%s' "$3"
}

# rb_scenario_read FILE: fills SC_*; exit 2 with FILE:LINE on the first problem.
rb_scenario_read() {
  SC_FILE=$1
  if ! [ -f "$SC_FILE" ] || ! [ -r "$SC_FILE" ]; then
    rb_fail 2 "--scenario: cannot read '$SC_FILE' (a file of scripts/runbooks/scenarios/, or a path)"
  fi
  [ "$(wc -c <"$SC_FILE")" -le 65536 ] || rb_fail 2 "scenario $SC_FILE: larger than 64 KiB: not a scenario file"
  local line n=0 f
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case $line in
      *$'\r'*) rb__sc_fail "$n" "carriage return (save the file with Unix line ends)" ;;
    esac
    [[ ! ${line//$'\t'/ } =~ [[:cntrl:]] ]] || rb__sc_fail "$n" "a control character" 
    read -r -a f <<<"$line"
    [ "${#f[@]}" -gt 0 ] || continue
    case ${f[0]} in
      '#'*) ;;
      title)
        [ -z "$SC_TITLE" ] || rb__sc_fail "$n" "a second title"
        [ "${#f[@]}" -ge 2 ] || rb__sc_fail "$n" "title needs a text"
        SC_TITLE=${f[*]:1}
        [ "${#SC_TITLE}" -le 200 ] || rb__sc_fail "$n" "title longer than 200 characters"
        ;;
      restore-clock)
        [ -z "$SC_CLOCK" ] || rb__sc_fail "$n" "a second restore-clock"
        [ "${#f[@]}" -eq 2 ] || rb__sc_fail "$n" "restore-clock takes one duration (e.g. 20m)"
        SC_CLOCK=$(rb__sc_duration "$n" restore-clock "${f[1]}") || exit 2
        ;;
      fault) rb__sc_fault "$n" "${f[@]:1}" ;;
      *) rb__sc_fail "$n" "unknown directive '${f[0]}' (title, restore-clock, fault)" ;;
    esac
  done <"$SC_FILE"
  if [ "${#SC_NAMES[@]}" -lt 2 ] || [ "${#SC_NAMES[@]}" -gt 3 ]; then
    rb_fail 2 "scenario $SC_FILE: ${#SC_NAMES[@]} fault line(s); a game day has 2 or 3 faults started together"
  fi
  [ -n "$SC_TITLE" ] || SC_TITLE=$(basename "$SC_FILE" .conf)
}

# rb__sc_fault LINE NAME KIND TARGET OFFSET [KEY=VALUE...]
rb__sc_fault() {
  local n=$1 name=${2:-} kind=${3:-} tgt=${4:-} offset=${5:-} i pair key value
  [ $# -ge 5 ] || rb__sc_fail "$n" "fault needs NAME KIND TARGET OFFSET [KEY=VALUE...]"
  shift 5
  [[ $name =~ ^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$ ]] || rb__sc_fail "$n" "fault name '$name': a-z, 0-9 and '-', at most 16, starting with a letter"
  case $kind in
    redis-down | pod-oom | booking-surge) ;;
    *) rb__sc_fail "$n" "fault kind '$kind' (redis-down, pod-oom, booking-surge)" ;;
  esac
  [[ $tgt =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || rb__sc_fail "$n" "target '$tgt' is not a Kubernetes name"
  if ! [[ $offset =~ ^[0-9]{1,5}$ ]] || [ "$((10#$offset))" -gt 86400 ]; then
    rb__sc_fail "$n" "offset '$offset' must be whole seconds from 0 to 86400"
  fi
  for i in "${!SC_NAMES[@]}"; do
    [ "${SC_NAMES[$i]}" != "$name" ] || rb__sc_fail "$n" "two faults named '$name'"
    [ "${SC_KINDS[$i]}" != "$kind" ] || rb__sc_fail "$n" "a second $kind fault (each kind at most once)"
  done
  local dur="" peak=20 ramp="" rate=50 mib=512
  for pair in "$@"; do
    [[ $pair == *=* ]] || rb__sc_fail "$n" "'$pair' is not KEY=VALUE"
    key=${pair%%=*}
    value=${pair#*=}
    case $kind:$key in
      *:for) dur=$(rb__sc_duration "$n" "for=" "$value") || exit 2 ;;
      booking-surge:peak) peak=$(rb__sc_count "$n" "peak=" "$value" 10000) || exit 2 ;;
      booking-surge:ramp) ramp=$(rb__sc_duration "$n" "ramp=" "$value") || exit 2 ;;
      pod-oom:rate) rate=$(rb__sc_count "$n" "rate=" "$value" 100000) || exit 2 ;;
      pod-oom:limit) mib=$(rb__sc_count "$n" "limit=" "$value" 1000000) || exit 2 ;;
      *) rb__sc_fail "$n" "$kind takes no key '$key' (see docs/runbooks.md#game-day)" ;;
    esac
  done
  SC_NAMES+=("$name")
  SC_KINDS+=("$kind")
  SC_TARGETS+=("$tgt")
  SC_OFFSETS+=("$((10#$offset))")
  SC_FOR+=("$dur")
  SC_PEAK+=("$peak")
  SC_RAMP+=("$ramp")
  SC_RATE+=("$rate")
  SC_LIMIT+=("$mib")
}
