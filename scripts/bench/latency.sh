#!/usr/bin/env bash
# latency-injector benchmarks, side by side in one run, all on loopback:
#  1. accuracy: requested 10 / 100 / 1000 ms vs the added latency redis-benchmark measures
#     (p50 and p99 through the proxy minus direct), and the delay the proxy says it applied
#     (goal: p50 within 1 ms, p99 within 3 ms);
#  2. TCP overhead at 0 ms: redis-benchmark GET/SET throughput and p99, direct vs through
#     the proxy vs through socat (fork mode, its default listen backlog of 5), 1 and 50
#     clients (goal at 50 clients: at least 2x socat);
#  3. HTTP keep-alive at 0 ms: requests/s direct vs through the HTTP proxy (nginx
#     upstream, k6 20 VUs; goal: at least 0.8x direct);
#  4. memory per idle proxied connection (proxy RSS growth), TCP mode at 1,000 and
#     ~10,000 connections, HTTP mode at 1,000 (connected, no request yet, and with half a
#     request head sent: a slowloris client), and socat's at 1,000 (sum of its PSS);
#  5. (`--sections engines`, on a kernel with sch_netem, as root: the VM lane's guest,
#     `scripts/vm-test.sh --bench latency`) the netem engine against the proxy engine:
#     added latency p50/p99 and throughput at 0 ms against direct (lib/latency-engines.sh).
# Prints Markdown tables. Needs redis-server, redis-benchmark, and for sections 1-4 socat,
# nginx, k6, python3 and bc; for 5, ip, tc, nft and jq.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=scripts/bench/lib/latency-engines.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/latency-engines.sh"
requests=100000
engine_requests=20000
big=9900
injector=""
sections="accuracy overhead http memory"

usage() {
  cat <<EOF
Usage: scripts/bench.sh latency [OPTIONS]

Measures latency-injector's accuracy, its overhead against direct and socat, HTTP
throughput and memory per idle connection; prints Markdown tables.

Options:
  --requests N        redis-benchmark requests per overhead cell [${requests}]
  --engine-requests N redis-benchmark requests per engines throughput cell [${engine_requests}]
  --big N             idle connections for the large memory point [${big}]
                      (each costs the proxy two descriptors: keep 2N below its open-files limit)
  --sections "..."    any of: ${sections} engines [${sections}]
                      (engines: netem vs proxy; root on a kernel with sch_netem, e.g.
                      scripts/vm-test.sh --bench latency)
  --injector PATH     binary to measure [built with cargo build --release -p latency-injector]
  -h, --help          this help
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests=${2:?--requests needs a value}; shift 2 ;;
    --engine-requests) engine_requests=${2:?--engine-requests needs a value}; shift 2 ;;
    --big) big=${2:?--big needs a value}; shift 2 ;;
    --sections) sections=${2:?--sections needs a value}; shift 2 ;;
    --injector) injector=${2:?--injector needs a path}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count --requests "$requests"
require_count --engine-requests "$engine_requests"
require_count --big "$big"
needs=(redis-server redis-benchmark)
loopback=0
for value in $sections; do
  case "$value" in
    accuracy|overhead|http|memory) loopback=1 ;;
    engines) needs+=(redis-cli ip tc nft jq) ;;
    *) die "--sections: unknown '$value'" ;;
  esac
done
[ "$loopback" -eq 0 ] || needs+=(socat nginx k6 python3 bc)
for tool in "${needs[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
injector=$(release_bin latency-injector latency-injector "$injector")

work=$(mktemp -d)

cleanup() {
  stop_tracked
  engines_cleanup
  rm -rf "$work"
}
on_exit cleanup

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  local port=$1
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  die "nothing listens on port $port"
}

# start_bg NAME CMD... : starts CMD in the background (stdout to $work/NAME.out); sets $last_pid.
start_bg() {
  local name=$1
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  last_pid=$!
  track_pid "$last_pid"
}

# stop_pid PID : SIGTERM, wait, and forget it (so the trap never signals a reused pid).
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  untrack_pid "$1"
}

# Sections 1-4: redis on loopback.
redis_port=""
start_loopback_redis() {
  redis_port=$(free_port)
  start_bg redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --maxclients 10000
  wait_port "$redis_port"
}

# proxy NAME PORT ARGS... : starts the injector in front of redis on PORT.
proxy() {
  local name=$1 port=$2
  shift 2
  start_bg "$name" "$injector" --listen "127.0.0.1:$port" --upstream "127.0.0.1:$redis_port" \
    -d 1h -y --output json "$@"
  wait_port "$port"
}

# bench_csv PORT ARGS... : redis-benchmark CSV rows (without the header).
bench_csv() {
  local port=$1
  shift
  redis-benchmark -h 127.0.0.1 -p "$port" --csv "$@" 2>/dev/null | tail -n +2 | tr -d '"'
}

# field CSV-LINE N : the Nth comma-separated field.
field() {
  cut -d, -f"$2" <<<"$1"
}

accuracy() {
  echo "### Accuracy (redis-benchmark GET through the proxy, added = proxy - direct)"
  echo
  echo "| requested ms | clients x requests | added p50 ms | added p99 ms | proxy-reported applied p50 / p99 / max ms |"
  echo "|---:|---|---:|---:|---|"
  local latency clients n port direct through report
  for latency in 10 100 1000; do
    case "$latency" in
      # Few clients: with many, every client's request is released in the same instant
      # and the measured p50 includes redis answering the whole burst.
      10) clients=10; n=2000 ;;
      100) clients=10; n=200 ;;
      *) clients=10; n=50 ;;
    esac
    port=$(free_port)
    proxy "acc$latency" "$port" -l "$latency"
    direct=$(bench_csv "$redis_port" -t get -c "$clients" -n "$n")
    through=$(bench_csv "$port" -t get -c "$clients" -n "$n")
    stop_pid "$last_pid"
    report=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["observations"]["appliedDelay"]; print("%.2f / %.2f / %.2f" % (d["p50Ms"], d["p99Ms"], d["maxMs"]))' "$work/acc$latency.out")
    printf '| %s | %s x %s | %.3f | %.3f | %s |\n' "$latency" "$clients" "$n" \
      "$(bc <<<"$(field "$through" 5) - $(field "$direct" 5)")" \
      "$(bc <<<"$(field "$through" 7) - $(field "$direct" 7)")" "$report"
  done
  echo
}

overhead() {
  echo "### TCP overhead at 0 ms (redis-benchmark, $requests requests, no pipelining)"
  echo
  echo "| clients | test | direct req/s | proxy req/s (x direct) | socat req/s (x direct) | proxy / socat | p99 ms direct / proxy / socat |"
  echo "|---:|---|---:|---:|---:|---:|---|"
  local proxy_port socat_port clients test d p s
  proxy_port=$(free_port)
  proxy ovh "$proxy_port" -l 0
  local proxy_pid=$last_pid
  socat_port=$(free_port)
  start_bg socat socat "TCP-LISTEN:$socat_port,fork,reuseaddr" "TCP:127.0.0.1:$redis_port"
  local socat_pid=$last_pid
  wait_port "$socat_port"
  for clients in 1 50; do
    for test in get set; do
      d=$(bench_csv "$redis_port" -t "$test" -c "$clients" -n "$requests")
      p=$(bench_csv "$proxy_port" -t "$test" -c "$clients" -n "$requests")
      s=$(bench_csv "$socat_port" -t "$test" -c "$clients" -n "$requests")
      printf '| %s | %s | %.0f | %.0f (%.2f) | %.0f (%.2f) | %.2f | %s / %s / %s |\n' \
        "$clients" "${test^^}" "$(field "$d" 2)" \
        "$(field "$p" 2)" "$(bc -l <<<"$(field "$p" 2) / $(field "$d" 2)")" \
        "$(field "$s" 2)" "$(bc -l <<<"$(field "$s" 2) / $(field "$d" 2)")" \
        "$(bc -l <<<"$(field "$p" 2) / $(field "$s" 2)")" \
        "$(field "$d" 7)" "$(field "$p" 7)" "$(field "$s" 7)"
    done
  done
  stop_pid "$proxy_pid"
  stop_pid "$socat_pid"
  echo
}

# k6_rate PORT : requests/s k6 achieves against 127.0.0.1:PORT (20 VUs, 5 s).
k6_rate() {
  local port=$1
  cat >"$work/http.js" <<'EOF'
import http from 'k6/http';
export const options = { vus: 20, duration: '5s' };
export default function () { http.get(`http://${__ENV.TARGET}/health`); }
EOF
  k6 run --quiet --no-color -e "TARGET=127.0.0.1:$port" --summary-export "$work/k6.json" \
    "$work/http.js" >/dev/null 2>&1
  python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["metrics"]; print("%.0f %.2f" % (m["http_reqs"]["rate"], m["http_req_duration"]["p(95)"]))' "$work/k6.json"
}

http_bench() {
  echo "### HTTP keep-alive at 0 ms (nginx upstream, k6 20 VUs x 5 s, GET /health)"
  echo
  echo "| path | req/s | p95 ms |"
  echo "|---|---:|---:|"
  local nginx_port proxy_port direct through
  nginx_port=$(free_port)
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nginx_port; location / { return 200 "ok\n"; } }
}
EOF
  start_bg nginx nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
  local nginx_pid=$last_pid
  wait_port "$nginx_port"
  proxy_port=$(free_port)
  start_bg http "$injector" --listen "127.0.0.1:$proxy_port" --upstream "127.0.0.1:$nginx_port" \
    --http -l 0 -d 1h -y --output json
  local proxy_pid=$last_pid
  wait_port "$proxy_port"
  read -r direct_rate direct_p95 <<<"$(k6_rate "$nginx_port")"
  read -r proxy_rate proxy_p95 <<<"$(k6_rate "$proxy_port")"
  printf '| direct | %s | %s |\n' "$direct_rate" "$direct_p95"
  printf '| through the HTTP proxy (%.2f x direct) | %s | %s |\n' \
    "$(bc -l <<<"$proxy_rate / $direct_rate")" "$proxy_rate" "$proxy_p95"
  stop_pid "$proxy_pid"
  stop_pid "$nginx_pid"
  echo
}

rss_kb() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# hold PORT N [BYTES] : opens N connections to PORT, sends BYTES on each (nothing by
# default), and keeps them until killed.
hold() {
  local port=$1 n=$2 bytes=${3:-}
  rm -f "$work/held"
  start_bg hold python3 -c '
import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(int(sys.argv[2]))]
for c in conns:
    if sys.argv[4]:
        c.sendall(sys.argv[4].encode())
open(sys.argv[3], "w").write("ready")
time.sleep(3600)
' "$port" "$n" "$work/held" "$bytes"
  for _ in $(seq 1 600); do
    [ -f "$work/held" ] && break
    sleep 0.1
  done
  [ -f "$work/held" ] || die "could not open $n connections to port $port"
  sleep 1
}

memory() {
  echo "### Memory per idle proxied connection"
  echo
  echo "| proxy | idle connections | memory growth | per connection |"
  echo "|---|---:|---:|---:|"
  local port base n with holder mode args bytes
  for mode in "tcp 1000" "tcp $big" "http 1000" "slowloris 1000"; do
    read -r mode n <<<"$mode"
    args=(-l 0)
    bytes=""
    case "$mode" in
      http) args=(--http -l 0) ;;
      slowloris) args=(--http -l 0); bytes=$'GET /slow HTTP/1.1\r\nX-Half: ' ;;
    esac
    port=$(free_port)
    proxy "mem$mode$n" "$port" "${args[@]}"
    local proxy_pid=$last_pid
    sleep 0.5
    base=$(rss_kb "$proxy_pid")
    hold "$port" "$n" "$bytes"
    holder=$last_pid
    with=$(rss_kb "$proxy_pid")
    printf '| latency-injector, %s mode (RSS) | %s | %s KiB | %.1f KiB |\n' "$mode" "$n" \
      "$((with - base))" "$(bc -l <<<"($with - $base) / $n")"
    stop_pid "$holder"
    stop_pid "$proxy_pid"
  done
  port=$(free_port)
  start_bg socatmem socat "TCP-LISTEN:$port,fork,reuseaddr,backlog=4096" "TCP:127.0.0.1:$redis_port"
  local socat_pid=$last_pid
  wait_port "$port"
  hold "$port" 1000
  holder=$last_pid
  local pss=0 child
  for child in $(pgrep -P "$socat_pid") "$socat_pid"; do
    pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$child/smaps_rollup" 2>/dev/null || echo 0)))
  done
  printf '| socat fork (sum of PSS) | 1000 | %s KiB | %.1f KiB |\n' "$pss" "$(bc -l <<<"$pss / 1000")"
  stop_pid "$holder"
  stop_pid "$socat_pid"
  echo
}

echo "## latency-injector ($(nproc) cores, $(uname -r))"
echo
[ "$loopback" -eq 0 ] || start_loopback_redis
for section in $sections; do
  case "$section" in
    accuracy) accuracy ;;
    overhead) overhead ;;
    http) http_bench ;;
    memory) memory ;;
    engines) engines ;;
  esac
done
