# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# The load: one or more k6 runs spanning the whole experiment, each writing its points.

RB_LOAD_NAMES=()
RB_LOAD_SCRIPTS=()
RB_LOAD_PIDS=()

# rb_load NAME SCRIPT [NAME=VALUE...]: a k6 run (scripts/k6/SCRIPT or a path) with its
# own environment on top of BASE_URL, VUS, RATE and the --k6-env pairs.
rb_load() {
  local name=$1 script=$2 i
  shift 2
  [[ $name =~ ^[a-z][a-z0-9-]{0,15}$ ]] || rb_fail 2 "internal: load name '$name'"
  i=${#RB_LOAD_NAMES[@]}
  if [ "$i" -eq 0 ] && [ -n "$RB_K6_SCRIPT" ]; then
    script=$RB_K6_SCRIPT
  fi
  RB_LOAD_NAMES+=("$name")
  RB_LOAD_SCRIPTS+=("$script")
  declare -ga "RB_LOAD_ENV_$i"
  local -n _rb_env="RB_LOAD_ENV_$i"
  _rb_env=("$@")
}

# rb__script_path SCRIPT: a file as given, else scripts/k6/SCRIPT.
rb__script_path() {
  if [ -f "$1" ]; then
    printf '%s\n' "$1"
  elif [ -f "$RB_REPO/scripts/k6/$1" ]; then
    printf '%s\n' "$RB_REPO/scripts/k6/$1"
  else
    return 1
  fi
}

rb__check_loads() {
  local script
  [ "${#RB_LOAD_NAMES[@]}" -gt 0 ] || rb_fail 2 "internal: the runbook declares no load (rb_load)"
  for script in "${RB_LOAD_SCRIPTS[@]}"; do
    rb__script_path "$script" >/dev/null || rb_fail 2 "k6 script '$script' not found (a path, or a name in scripts/k6/)"
  done
}

# rb__k6_argv I: the argument vector of load I, in RB_K6_ARGV.
rb__k6_argv() {
  local i=$1 name=${RB_LOAD_NAMES[$1]} pair
  # k6 runs until stopped; this cap only bounds a runbook that lost track of it.
  local cap=$(((RB_BASELINE + RB_FAULT_DURATION + RB_RECOVERY) * 3 + 600))
  RB_K6_ARGV=(k6 run --quiet --no-usage-report
    --out "json=$RB_DIR/k6/$name.ndjson" --summary-export "$RB_DIR/k6/$name-summary.json"
    -e "BASE_URL=$RB_BASE_URL" -e "VUS=$RB_VUS" -e "DURATION=${cap}s" -e "RATE=$RB_RATE")
  # RATE is always given (empty: constant VUs), so a RATE exported in the operator's shell
  # cannot change the load shape. k6 still sees the rest of the environment, so secrets
  # (STRIPE_WEBHOOK_SECRET, TOKEN) can be exported instead of shown on the command line.
  local ref="RB_LOAD_ENV_${i}[@]"
  local env=("${!ref}")
  for pair in "${env[@]}" "${RB_K6_ENV[@]}"; do
    RB_K6_ARGV+=(-e "$pair")
  done
  RB_K6_ARGV+=("$(rb__script_path "${RB_LOAD_SCRIPTS[$i]}")")
}

# rb__start_load: every k6 run in the background; returns once each has written its first
# request (the ready signal), or fails with the tail of its log.
rb__start_load() {
  local i name deadline
  for i in "${!RB_LOAD_NAMES[@]}"; do
    name=${RB_LOAD_NAMES[$i]}
    rb__k6_argv "$i"
    rb_log "starting load $name: $(rb_show "${RB_K6_ARGV[@]}")"
    "${RB_K6_ARGV[@]}" >"$RB_DIR/k6/$name.log" 2>&1 &
    RB_LOAD_PIDS[i]=$!
    RB_POINTS+=("$RB_DIR/k6/$name.ndjson")
  done
  deadline=$(($(rb_now_ms) + 60000))
  for i in "${!RB_LOAD_NAMES[@]}"; do
    name=${RB_LOAD_NAMES[$i]}
    until grep -q '"metric":"http_req_duration","type":"Point"' "$RB_DIR/k6/$name.ndjson" 2>/dev/null; do
      if ! kill -0 "${RB_LOAD_PIDS[$i]}" 2>/dev/null; then
        rb_fail 1 "k6 ($name) stopped before its first request: $(tail -n 3 "$RB_DIR/k6/$name.log" | tr '\n' ' ')"
      fi
      [ "$(rb_now_ms)" -lt "$deadline" ] || rb_fail 1 "k6 ($name) made no request in 60 s: is $RB_BASE_URL reachable?"
      sleep 0.1
    done
  done
}

# rb__load_alive: true while every k6 run is still running.
rb__load_alive() {
  local pid
  for pid in "${RB_LOAD_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || return 1
  done
}

# rb__stop_load: SIGINT (k6 ends its test and writes its summary), SIGKILL after 15 s.
rb__stop_load() {
  local pid tries
  for pid in "${RB_LOAD_PIDS[@]}"; do
    kill -INT "$pid" 2>/dev/null || true
  done
  for pid in "${RB_LOAD_PIDS[@]}"; do
    tries=0
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 150 ]; do
      sleep 0.1
      tries=$((tries + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  RB_LOAD_PIDS=()
}
