#!/usr/bin/env bash
# cpu-hog against stress-ng, side by side in one run: achieved CPU load vs requested for
# 10/30/50/80/100% at 1 and 2 workers, on an idle machine and under contention (two busy
# loops started by this script), both measured the same way: each run in its own cpuacct
# cgroup, usage delta over a fixed window after a 1 s warm-up. Then the startup time and
# peak RSS of `cpu-hog --help`. Prints a Markdown table. Needs root (cgroups).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
root=$(chaos_root)

seconds=10
loads="10 30 50 80 100"
workers_list="1 2"
conditions="idle contention"
cpu_hog=""
shield=1
warmup=1

usage() {
  cat <<EOF
Usage: scripts/bench.sh cpu [OPTIONS]

Measures achieved CPU load of cpu-hog and of stress-ng (--cpu N --cpu-load P) side by
side and prints a Markdown table. Needs root and stress-ng.

The tools (and, under contention, the two busy loops) run inside a cpu cgroup with the
highest cpu.shares, so that unrelated processes on a shared machine disturb the figures
less; the "outside" columns say how much CPU everything else still used (in cores)
during each window. --no-shield measures without that cgroup.

Options:
  --seconds N         measurement window per cell, after a ${warmup} s warm-up [${seconds}]
  --loads "P ..."     requested loads in percent [${loads}]
  --workers "N ..."   worker counts [${workers_list}]
  --conditions "..."  any of: idle contention [${conditions}]
  --cpu-hog PATH      binary to measure [built with cargo build --release -p cpu-hog]
  --no-shield         do not run inside the high-weight cpu cgroup
  -h, --help          this help
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --loads) loads=${2:?--loads needs a value}; shift 2 ;;
    --workers) workers_list=${2:?--workers needs a value}; shift 2 ;;
    --conditions) conditions=${2:?--conditions needs a value}; shift 2 ;;
    --cpu-hog) cpu_hog=${2:?--cpu-hog needs a path}; shift 2 ;;
    --no-shield) shield=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive whole number"
for value in $loads; do
  if ! [[ "$value" =~ ^[0-9]+$ ]] || [ "$value" -lt 1 ] || [ "$value" -gt 100 ]; then
    die "--loads: '$value' is not a percentage from 1 to 100"
  fi
done
for value in $workers_list; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "--workers: '$value' is not a worker count"
done
for value in $conditions; do
  case "$value" in idle|contention) ;; *) die "--conditions: unknown '$value'" ;; esac
done
is_root || die "needs root: each run is measured in its own cpuacct cgroup"
command -v stress-ng >/dev/null || die "stress-ng is not installed (apt-get install stress-ng)"
acct_root=/sys/fs/cgroup/cpuacct
cpu_root=/sys/fs/cgroup/cpu
[ -f "$acct_root/cpuacct.usage" ] || die "no cgroup v1 cpuacct hierarchy at $acct_root"
if [ "$shield" = 1 ] && [ ! -f "$cpu_root/cpu.shares" ]; then
  die "no cgroup v1 cpu hierarchy at $cpu_root for the shield (use --no-shield)"
fi
clk_tck=$(getconf CLK_TCK)

if [ -z "$cpu_hog" ]; then
  log "building the release binary"
  cargo build --release --quiet -p cpu-hog --manifest-path "$root/Cargo.toml"
  cpu_hog="$root/target/release/cpu-hog"
fi
[ -x "$cpu_hog" ] || die "--cpu-hog: $cpu_hog is not an executable"

# Everything this script creates, for the EXIT trap.
busy_pids=()
tool_pid=""
sleep_pid=""
hyperfine_json=""
tool_cg="$acct_root/chaos-bench-cpu-$$"
busy_cg="$acct_root/chaos-bench-busy-$$"
shield_cg="$cpu_root/chaos-bench-shield-$$"
shield_dirs=()
achieved=""
outside=""

# remove_cgroup DIR: kills what is left in it, then removes it.
stop_busy() {
  local pid
  for pid in "${busy_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  busy_pids=()
  remove_cgroup "$busy_cg"
}

stop_tool() {
  if [ -n "$tool_pid" ]; then
    kill "$tool_pid" 2>/dev/null || true
    wait "$tool_pid" 2>/dev/null || true
  fi
  tool_pid=""
  remove_cgroup "$tool_cg"
}

cleanup() {
  [ -z "$sleep_pid" ] || kill "$sleep_pid" 2>/dev/null || true
  stop_tool
  stop_busy
  if [ -d "$shield_cg" ]; then
    echo "$$" >"$cpu_root/cgroup.procs"
    remove_cgroup "$shield_cg"
  fi
  [ -z "$hyperfine_json" ] || rm -f "$hyperfine_json"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# pause SECONDS: a sleep that a signal interrupts at once (the trap runs without waiting).
pause() {
  sleep "$1" &
  sleep_pid=$!
  wait "$sleep_pid"
  sleep_pid=""
}

# in_cgroups DIR... -- CMD...: runs CMD after moving itself into each cgroup DIR. The
# script is fixed; the paths and argv are passed as arguments, never interpolated.
# It execs, so `in_cgroups ... &` leaves $! naming the command itself.
in_cgroups() {
  # shellcheck disable=SC2016 # expanded by the inner sh, on purpose
  exec sh -c 'while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; done
         shift; exec "$@"' sh "$@"
}

# The script joins the shield too: outside it, it would be starved by the busy loops
# inside, and its reads of the counters would come seconds late.
if [ "$shield" = 1 ]; then
  mkdir "$shield_cg"
  echo 262144 >"$shield_cg/cpu.shares"
  shield_dirs=("$shield_cg")
  echo "$$" >"$shield_cg/cgroup.procs"
fi

start_busy() {
  local _
  mkdir "$busy_cg"
  for _ in 1 2; do
    in_cgroups "$busy_cg" "${shield_dirs[@]}" -- bash -c 'while :; do :; done' &
    busy_pids+=("$!")
  done
  log "contention: busy loops ${busy_pids[*]} (killed at exit)"
}

# Busy CPU ticks of the whole machine (user nice system irq softirq steal).
machine_ticks() {
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

usage_ns() {
  if [ -f "$1/cpuacct.usage" ]; then cat "$1/cpuacct.usage"; else echo 0; fi
}

# measure TOOL LOAD WORKERS: sets `achieved` (mean per-worker load in percent) and
# `outside` (cores used by everything but the tool and the busy loops). Not run in a
# subshell, so the EXIT trap knows what to stop.
measure() {
  local tool=$1 load=$2 workers=$3 run_for=$((warmup + seconds + 2))
  local u0 b0 m0 t0 u1 b1 m1 t1 cmd=()
  case "$tool" in
    cpu-hog) cmd=("$cpu_hog" -c "$load" -k "$workers" -d "$run_for" -y --output json) ;;
    stress-ng) cmd=(stress-ng --cpu "$workers" --cpu-load "$load" -t "${run_for}s" --quiet) ;;
  esac
  mkdir "$tool_cg"
  in_cgroups "$tool_cg" "${shield_dirs[@]}" -- "${cmd[@]}" >/dev/null 2>&1 &
  tool_pid=$!
  pause "$warmup"
  u0=$(usage_ns "$tool_cg"); b0=$(usage_ns "$busy_cg"); m0=$(machine_ticks); t0=$(date +%s%N)
  pause "$seconds"
  u1=$(usage_ns "$tool_cg"); b1=$(usage_ns "$busy_cg"); m1=$(machine_ticks); t1=$(date +%s%N)
  stop_tool
  achieved=$(awk -v du="$((u1 - u0))" -v dt="$((t1 - t0))" -v n="$workers" \
    'BEGIN { printf "%.2f", du / dt / n * 100 }')
  outside=$(awk -v dm="$((m1 - m0))" -v hz="$clk_tck" -v du="$((u1 - u0))" \
    -v db="$((b1 - b0))" -v dt="$((t1 - t0))" \
    'BEGIN { o = (dm / hz - (du + db) / 1e9) / (dt / 1e9); if (o < 0) o = 0; printf "%.2f", o }')
}

# help_figures: startup time (hyperfine if present, else the mean of 20 runs) and peak RSS.
help_figures() {
  local startup rss help="\`cpu-hog --help\`"
  if command -v hyperfine >/dev/null; then
    hyperfine_json=$(mktemp)
    hyperfine --warmup 3 --runs 30 -N --style none --export-json "$hyperfine_json" \
      "$cpu_hog --help" >/dev/null 2>&1
    startup=$(python3 -c 'import json, sys
print("%.2f ms" % (json.load(open(sys.argv[1]))["results"][0]["mean"] * 1000))' "$hyperfine_json")
  else
    startup=$(python3 - "$cpu_hog" <<'EOF'
import subprocess, sys, time
runs = 20
start = time.perf_counter()
for _ in range(runs):
    subprocess.run([sys.argv[1], "--help"], stdout=subprocess.DEVNULL, check=True)
print("%.2f ms" % ((time.perf_counter() - start) / runs * 1000))
EOF
)
  fi
  # GNU time forks from a small process; Python's getrusage would also count the RSS the
  # forked interpreter had before exec (so it is only an upper bound).
  if [ -x /usr/bin/time ]; then
    rss=$(/usr/bin/time -f '%M' "$cpu_hog" --help 2>&1 >/dev/null | tail -n 1)
    rss=$(awk -v kb="$rss" 'BEGIN { printf "%.1f MiB", kb / 1024 }')
  else
    rss=$(python3 - "$cpu_hog" <<'EOF'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "--help"], stdout=subprocess.DEVNULL, check=True)
print("< %.1f MiB" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
EOF
)
  fi
  printf '| %s startup | %s | (TypeScript original: about 2 s) |\n' "$help" "$startup"
  printf '| %s peak RSS | %s | (TypeScript original: about 200 MiB) |\n' "$help" "$rss"
}

shielded=$([ "$shield" = 1 ] && echo "in a cpu.shares=262144 cgroup" || echo "unshielded")
log "measuring ${seconds} s per cell after a ${warmup} s warm-up; $(nproc) CPU(s); ${shielded}"
echo "| condition | workers | requested % | cpu-hog % | cpu-hog error | stress-ng % | stress-ng error | outside (cores) |"
echo "|---|---|---|---|---|---|---|---|"
declare -A worst=()
for condition in $conditions; do
  [ "$condition" = contention ] && start_busy
  for workers in $workers_list; do
    for load in $loads; do
      measure cpu-hog "$load" "$workers"
      ours=$achieved ours_outside=$outside
      measure stress-ng "$load" "$workers"
      theirs=$achieved
      row=$(awk -v o="$ours" -v t="$theirs" -v p="$load" \
        'BEGIN { printf "%.2f | %+.2f | %.2f | %+.2f", o, o - p, t, t - p }')
      echo "| $condition | $workers | $load | $row | $ours_outside / $outside |"
      for pair in "cpu-hog:$ours" "stress-ng:$theirs"; do
        key="$condition/${pair%%:*}"
        worst[$key]=$(awk -v w="${worst[$key]:-0}" -v a="${pair#*:}" -v p="$load" \
          'BEGIN { e = a - p; if (e < 0) e = -e; printf "%.2f", (e > w ? e : w) }')
      done
    done
  done
  [ "$condition" = contention ] && stop_busy
done
echo
echo "| summary | cpu-hog | stress-ng |"
echo "|---|---|---|"
for condition in $conditions; do
  echo "| worst error, $condition (points) | ${worst[$condition/cpu-hog]} | ${worst[$condition/stress-ng]} |"
done
help_figures
