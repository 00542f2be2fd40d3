#!/usr/bin/env bash
# The `engines` section of scripts/bench/latency.sh (sourced by it): latency-injector's
# netem engine against its proxy engine, side by side in one run, on a kernel with
# sch_netem (the VM lane's guest: `scripts/vm-test.sh --bench latency`). A client
# namespace C and a server namespace S on a veth pair (198.51.100.1 <-> .2), redis-server
# in S; the injector runs in C with `--target 198.51.100.2:6379` and each engine, as it
# would in a pod's network namespace.
#  1. added latency at 10 / 100 / 1000 ms: redis-benchmark GET p50 and p99 through each
#     engine minus direct;
#  2. throughput at 0 ms: redis-benchmark GET/SET requests/s and p99, 1 and 50 clients,
#     direct vs each engine.
# shellcheck disable=SC2154 # these come from latency.sh, which sources this file
# Uses from latency.sh: $work, $injector, $engine_requests, start_bg, stop_pid, die, log.

ns_c=""
ns_s=""

engines_cleanup() {
  local ns
  for ns in "$ns_c" "$ns_s"; do
    [ -n "$ns" ] || continue
    ip netns pids "$ns" 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
}

engines_lab() {
  ns_c="bench-c-$$"
  ns_s="bench-s-$$"
  ip netns add "$ns_c"
  ip netns add "$ns_s"
  ip link add "bc$$" type veth peer name "bs$$"
  ip link set "bc$$" netns "$ns_c"
  ip link set "bs$$" netns "$ns_s"
  ip -n "$ns_c" addr add 198.51.100.1/30 dev "bc$$"
  ip -n "$ns_s" addr add 198.51.100.2/30 dev "bs$$"
  local ns
  for ns in "$ns_c" "$ns_s"; do ip -n "$ns" link set lo up; done
  ip -n "$ns_c" link set "bc$$" up
  ip -n "$ns_s" link set "bs$$" up
  start_bg redis ip netns exec "$ns_s" redis-server --bind 198.51.100.2 --port 6379 --save '' \
    --appendonly no --protected-mode no --maxclients 10000
  local _
  for _ in $(seq 1 300); do
    [ "$(ip netns exec "$ns_c" redis-cli -h 198.51.100.2 ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  die "redis-server in $ns_s never answered"
}

# engine_start ENGINE LATENCY: the injector in C for redis, once its setup is in place
# (its log says so). Sets $last_pid.
engine_start() {
  local engine=$1 latency=$2 name="$1-$2"
  start_bg "$name" ip netns exec "$ns_c" "$injector" --engine "$engine" \
    --target 198.51.100.2:6379 -l "$latency" -d 1h -y --output json
  local _
  for _ in $(seq 1 600); do
    grep -qE "with netem .* in place|table inet .* in place" "$work/$name.err" && return 0
    kill -0 "$last_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/$name.err" >&2
  die "latency-injector --engine $engine never got in place"
}

# engine_stop ENGINE LATENCY PID: stops it and checks that the report names the engine.
engine_stop() {
  stop_pid "$3"
  local got
  got=$(jq -r '.observations.engine' "$work/$1-$2.out")
  [ "$got" = "$1" ] || die "--engine $1 ran as '$got'"
}

# redis_c ARGS...: redis-benchmark from C against redis in S, CSV rows without header.
redis_c() {
  ip netns exec "$ns_c" redis-benchmark -h 198.51.100.2 -p 6379 --csv "$@" 2>/dev/null \
    | tail -n +2 | tr -d '"'
}

# calc EXPR: awk arithmetic, 3 decimals.
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

engines_accuracy() {
  echo "### Added latency: netem vs proxy (redis-benchmark GET, added = through - direct)"
  echo
  echo "| requested ms | clients x requests | direct p50 / p99 ms | netem added p50 / p99 ms | proxy added p50 / p99 ms |"
  echo "|---:|---|---|---|---|"
  local latency n direct engine through pid cells
  for latency in 10 100 1000; do
    case "$latency" in
      10) n=1000 ;;
      100) n=200 ;;
      *) n=50 ;;
    esac
    direct=$(redis_c -t get -c 10 -n "$n")
    cells=()
    for engine in netem proxy; do
      engine_start "$engine" "$latency"
      pid=$last_pid
      through=$(redis_c -t get -c 10 -n "$n")
      engine_stop "$engine" "$latency" "$pid"
      cells+=("$(calc "$(field "$through" 5) - $(field "$direct" 5)") / $(calc "$(field "$through" 7) - $(field "$direct" 7)")")
    done
    printf '| %s | 10 x %s | %s / %s | %s | %s |\n' "$latency" "$n" \
      "$(field "$direct" 5)" "$(field "$direct" 7)" "${cells[0]}" "${cells[1]}"
  done
  echo
}

engines_throughput() {
  echo "### Throughput at 0 ms: netem vs proxy (redis-benchmark, $engine_requests requests, no pipelining)"
  echo
  echo "| clients | test | direct req/s | netem req/s (x direct) | proxy req/s (x direct) | p99 ms direct / netem / proxy |"
  echo "|---:|---|---:|---:|---:|---|"
  local clients test engine pid
  declare -A rows
  for clients in 1 50; do
    for test in get set; do
      rows[direct-$clients-$test]=$(redis_c -t "$test" -c "$clients" -n "$engine_requests")
    done
  done
  # One run of each engine serves every cell (its setup costs nothing per request).
  for engine in netem proxy; do
    engine_start "$engine" 0
    pid=$last_pid
    for clients in 1 50; do
      for test in get set; do
        rows[$engine-$clients-$test]=$(redis_c -t "$test" -c "$clients" -n "$engine_requests")
      done
    done
    engine_stop "$engine" 0 "$pid"
  done
  local d m p
  for clients in 1 50; do
    for test in get set; do
      d=${rows[direct-$clients-$test]}
      m=${rows[netem-$clients-$test]}
      p=${rows[proxy-$clients-$test]}
      printf '| %s | %s | %.0f | %.0f (%.2f) | %.0f (%.2f) | %s / %s / %s |\n' "$clients" "${test^^}" \
        "$(field "$d" 2)" "$(field "$m" 2)" "$(calc "$(field "$m" 2) / $(field "$d" 2)")" \
        "$(field "$p" 2)" "$(calc "$(field "$p" 2) / $(field "$d" 2)")" \
        "$(field "$d" 7)" "$(field "$m" 7)" "$(field "$p" 7)"
    done
  done
  echo
}

engines() {
  [ "$(id -u)" -eq 0 ] || die "the engines section needs root (network namespaces, tc, nft)"
  engines_lab
  engines_accuracy
  engines_throughput
}
