#!/usr/bin/env bash
# memory-leak against stress-ng, side by side in one run, both measured the same way from
# outside: each run in its own v1 memory cgroup and cpuacct cgroup, usage sampled at
# 20 Hz. Growth rate requested vs achieved (least-squares slope of the cgroup's usage
# between 10% and 90% of the target), resident share (peak usage / requested bytes), CPU
# cost while growing and while holding (% of one core); then the OOM case: both inside a
# 128 MiB cgroup, with their exit codes and whether they report the OOM kill. Prints
# Markdown tables. Needs root (cgroups) and stress-ng.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
root=$(chaos_root)

rates="50 200"
seconds=5
hold=2
memory_leak=""

usage() {
  cat <<EOF
Usage: scripts/bench.sh memory [OPTIONS]

Measures memory-leak and stress-ng (--vm 1 --vm-keep, --bigheap 1) side by side: growth
rate and its error, resident share, CPU cost, and who reports an OOM kill in a 128 MiB
cgroup. Prints Markdown tables. Needs root and stress-ng.

Options:
  --rates "R ..."     memory-leak growth rates in MiB/s [${rates}]
  --seconds N         growth time per rate: the target is rate x N MiB [${seconds}]
  --memory-leak PATH  binary to measure [built with cargo build --release -p memory-leak]
  -h, --help          this help
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --rates) rates=${2:?--rates needs a value}; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --memory-leak) memory_leak=${2:?--memory-leak needs a path}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "--seconds must be a positive whole number"
for value in $rates; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "--rates: '$value' is not a whole number of MiB/s"
done
is_root || die "needs root: each run is measured in its own memory and cpuacct cgroups"
command -v stress-ng >/dev/null || die "stress-ng is not installed (apt-get install stress-ng)"
mem_root=/sys/fs/cgroup/memory
acct_root=/sys/fs/cgroup/cpuacct
[ -f "$mem_root/memory.limit_in_bytes" ] || die "no cgroup v1 memory hierarchy at $mem_root"
[ -f "$acct_root/cpuacct.usage" ] || die "no cgroup v1 cpuacct hierarchy at $acct_root"

if [ -z "$memory_leak" ]; then
  log "building the release binary"
  cargo build --release --quiet -p memory-leak --manifest-path "$root/Cargo.toml"
  memory_leak="$root/target/release/memory-leak"
fi
[ -x "$memory_leak" ] || die "--memory-leak: $memory_leak is not an executable"

work=$(mktemp -d)
tool_pid=""
mem_cg=""
acct_cg=""
counter=0

# Kills whatever is left in a cgroup, then removes it.
cleanup() {
  if [ -n "$tool_pid" ]; then
    kill -KILL "$tool_pid" 2>/dev/null || true
  fi
  remove_cgroup "$mem_cg"
  remove_cgroup "$acct_cg"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_measured NAME LIMIT_MB TIMEOUT_S CMD... : runs CMD in fresh memory + cpuacct cgroups
# (LIMIT_MB 0 = unlimited), sampling "time usage_bytes cpu_ns" to $work/NAME.samples.
# Sets run_exit and run_oom_kills; stdout/stderr go to $work/NAME.out and NAME.err.
run_measured() {
  local name=$1 limit_mb=$2 timeout_s=$3
  shift 3
  counter=$((counter + 1))
  mem_cg="$mem_root/chaos-bench-memory-$$-$counter"
  acct_cg="$acct_root/chaos-bench-memory-$$-$counter"
  mkdir "$mem_cg" "$acct_cg"
  if [ "$limit_mb" -gt 0 ]; then
    echo $((limit_mb * 1048576)) >"$mem_cg/memory.limit_in_bytes"
    if [ -f "$mem_cg/memory.memsw.limit_in_bytes" ] && [ "$(wc -l </proc/swaps)" -gt 1 ]; then
      echo $((limit_mb * 1048576)) >"$mem_cg/memory.memsw.limit_in_bytes"
    fi
  fi
  # A fixed script joins the cgroups and execs the command (argv, never a built string).
  # shellcheck disable=SC2016
  sh -c 'echo $$ >"$1"; echo $$ >"$2"; shift 2; exec "$@"' sh \
    "$mem_cg/cgroup.procs" "$acct_cg/cgroup.procs" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  tool_pid=$!
  local deadline=$((SECONDS + timeout_s)) samples="$work/$name.samples"
  : >"$samples"
  while kill -0 "$tool_pid" 2>/dev/null; do
    printf '%s %s %s\n' "$EPOCHREALTIME" "$(<"$mem_cg/memory.usage_in_bytes")" \
      "$(<"$acct_cg/cpuacct.usage")" >>"$samples"
    if [ "$SECONDS" -gt "$deadline" ]; then
      log "$name: still running after ${timeout_s} s, killing it"
      kill -KILL "$tool_pid" 2>/dev/null || true
    fi
    sleep 0.05
  done
  run_exit=0
  wait "$tool_pid" || run_exit=$?
  tool_pid=""
  run_oom_kills=$(awk '$1 == "oom_kill" { print $2 }' "$mem_cg/memory.oom_control")
  remove_cgroup "$mem_cg"
  remove_cgroup "$acct_cg"
  mem_cg=""
  acct_cg=""
}

# analyse SAMPLES REQUESTED_BYTES : prints "rate_mib_s peak_mib cpu_grow_pct cpu_hold_pct".
# The growth window: samples between 10% and 90% of the target (of the peak when nothing
# was requested or the peak stayed below it), before 90% is first reached; the hold:
# while usage stays at 99% of it or more.
analyse() {
  awk -v requested="$2" '
    { t[NR] = $1; u[NR] = $2; c[NR] = $3; if ($2 > peak) peak = $2 }
    END {
      ref = (requested > 0 && requested < peak) ? requested : peak
      n = 0; first = 0; last = 0; reached = NR
      for (i = 1; i <= NR; i++) { if (u[i] >= 0.9 * ref) { reached = i; break } }
      for (i = 1; i < reached; i++) {
        if (u[i] < 0.1 * ref) continue
        n++; x = t[i] - t[1]; sx += x; sy += u[i]; sxx += x * x; sxy += x * u[i]
        if (!first) first = i
        last = i
      }
      rate = "n/a"; cpu_grow = "n/a"; cpu_hold = "n/a"
      if (n >= 3 && (n * sxx - sx * sx) > 0) {
        rate = sprintf("%.1f", (n * sxy - sx * sy) / (n * sxx - sx * sx) / 1048576)
      } else if (reached > 1) {
        # Faster than the 20 Hz sampling can resolve: a lower bound.
        rate = sprintf(">%.0f", 0.9 * ref / (t[reached] - t[1]) / 1048576)
      }
      if (last > first && t[last] - t[first] >= 0.5) {
        cpu_grow = sprintf("%.1f", (c[last] - c[first]) / 1e9 / (t[last] - t[first]) * 100)
      } else if (reached > 1) {
        cpu_grow = sprintf("%.1f", (c[reached] - c[1]) / 1e9 / (t[reached] - t[1]) * 100)
      }
      # The hold: from the first sample at 99% of the target to the last one (the
      # release that follows is not holding).
      hold_from = 0; hold_to = 0
      for (i = 1; i <= NR; i++) {
        if (u[i] >= 0.99 * ref) { if (!hold_from) hold_from = i; hold_to = i }
      }
      if (hold_from && t[hold_to] - t[hold_from] >= 0.5) {
        cpu_hold = sprintf("%.1f", (c[hold_to] - c[hold_from]) / 1e9 / (t[hold_to] - t[hold_from]) * 100)
      }
      printf "%s %.1f %s %s\n", rate, peak / 1048576, cpu_grow, cpu_hold
    }' "$1"
}

error_pct() {
  awk -v a="$1" -v r="$2" 'BEGIN { if (a ~ /^[0-9.]+$/) printf "%+.1f", (a - r) / r * 100; else print "n/a" }'
}

share() {
  awk -v p="$1" -v r="$2" 'BEGIN { printf "%.2f", p / r }'
}

# json_field FILE KEY : the raw value of the first "KEY": in a one-line JSON document.
json_field() {
  grep -o "\"$2\":[^,}]*" "$1" | head -1 | cut -d: -f2 || true
}

growth_rows=()
for rate in $rates; do
  target=$((rate * seconds))
  log "memory-leak: ${rate} MiB/s to ${target} MiB"
  run_measured "ours-$rate" 0 $((seconds + hold + 20)) "$memory_leak" \
    --rate-mb-per-second "$rate" --limit-mb "$target" --hold-seconds "$hold" -y --output json
  read -r achieved peak cpu_grow cpu_hold < <(analyse "$work/ours-$rate.samples" $((target * 1048576)))
  self_rate=$(json_field "$work/ours-$rate.out" achievedRateMibPerSecond)
  self_cpu=$(json_field "$work/ours-$rate.out" allocatorCpuPercent)
  growth_rows+=("| memory-leak --rate-mb-per-second $rate --limit-mb $target | $rate | $achieved | $(error_pct "$achieved" "$rate") | $(share "$peak" "$target") | $cpu_grow | $cpu_hold | exit $run_exit; self-reported ${self_rate} MiB/s, allocator CPU ${self_cpu}% |")

  log "stress-ng --vm 1 --vm-bytes ${target}M --vm-keep"
  run_measured "vm-$rate" 0 $((seconds + hold + 20)) \
    stress-ng --vm 1 --vm-bytes "${target}M" --vm-keep --timeout "$((seconds + hold))s" --quiet
  read -r achieved peak cpu_grow cpu_hold < <(analyse "$work/vm-$rate.samples" $((target * 1048576)))
  growth_rows+=("| stress-ng --vm 1 --vm-bytes ${target}M --vm-keep | (no rate) | $achieved | n/a | $(share "$peak" "$target") | $cpu_grow | $cpu_hold | exit $run_exit |")
done

log "stress-ng --bigheap 1 (inside a 1024 MiB cgroup: it grows without bound)"
run_measured bigheap 1024 $((seconds + hold + 20)) \
  stress-ng --bigheap 1 --timeout "$((seconds + hold))s" --quiet
read -r achieved peak cpu_grow cpu_hold < <(analyse "$work/bigheap.samples" 0)
growth_rows+=("| stress-ng --bigheap 1 (1024 MiB cgroup) | (no rate) | $achieved | n/a | n/a (no size) | $cpu_grow | $cpu_hold | exit $run_exit, $run_oom_kills OOM kills |")

oom_rows=()
for watch in no yes; do
  args=(--limit-mb 512 --rate-mb-per-second 100 -y --output json)
  label="memory-leak --limit-mb 512 --rate-mb-per-second 100"
  if [ "$watch" = yes ]; then
    args+=(--watch-oom)
    label="$label --watch-oom"
  fi
  log "$label, inside a 128 MiB cgroup"
  run_measured "oom-ours-$watch" 128 30 "$memory_leak" "${args[@]}"
  reported=$(json_field "$work/oom-ours-$watch.out" oomKilled)
  result=$(json_field "$work/oom-ours-$watch.out" result | tr -d '"')
  peak=$(json_field "$work/oom-ours-$watch.out" peakResidentMib)
  oom_rows+=("| $label | $run_exit | $run_oom_kills | oomKilled: ${reported:-?} at ${peak:-?} MiB, result ${result:-?} |")
done
log "stress-ng --vm 1 --vm-bytes 512M --vm-keep, inside a 128 MiB cgroup"
run_measured oom-vm 128 30 stress-ng --vm 1 --vm-bytes 512M --vm-keep --timeout 4s
mentions=$(cat "$work/oom-vm.out" "$work/oom-vm.err" | grep -ci "oom" || true)
oom_rows+=("| stress-ng --vm 1 --vm-bytes 512M --vm-keep --timeout 4s | $run_exit | $run_oom_kills | ${mentions} log lines mention OOM; the exit code does not |")

cat <<EOF

### Growth (target = rate x ${seconds} s, then ${hold} s hold; usage of each run's own memory cgroup at 20 Hz)

| command | requested MiB/s | achieved MiB/s | error % | resident share | CPU growing (% core) | CPU holding (% core) | notes |
|---|---|---|---|---|---|---|---|
EOF
printf '%s\n' "${growth_rows[@]}"
cat <<EOF

### OOM kill inside a 128 MiB memory cgroup

| command | exit code | OOM kills in cgroup | reported |
|---|---|---|---|
EOF
printf '%s\n' "${oom_rows[@]}"
