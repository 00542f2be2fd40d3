#!/bin/bash
# Helpers of the guest suite (sourced by suite.sh and the tests): checks, cgroup v2
# directories created per test and removed when it ends, measurements read from the
# kernel independently of the tools' reports.

# shellcheck disable=SC2034 # these are read by the test files suite.sh sources
CG=/sys/fs/cgroup
# Tolerance for CPU load against its target, percentage points of one CPU: the same as
# the host's root tests (tests/tests/cpu_hog.rs), from scripts/bench/cpu.sh's figures.
# shellcheck disable=SC2034
CPU_TOLERANCE_POINTS=3
# Growth-rate tolerance, as in tests/tests/memory_leak.rs.
# shellcheck disable=SC2034
RATE_TOLERANCE_PERCENT=15

# note TEXT: a detail line, printed with the test's result.
note() { printf '    %s\n' "$*"; }

# check DESCRIPTION CMD...: fails the test (the subshell it runs in) unless CMD succeeds.
check() {
  local what=$1
  shift
  if ! "$@"; then
    printf 'check failed: %s\n' "$what"
    exit 1
  fi
}

# fail TEXT: fails the test now.
fail() {
  printf 'check failed: %s\n' "$*"
  exit 1
}

# near ACTUAL EXPECTED TOLERANCE: |actual - expected| <= tolerance (numbers, awk).
near() {
  awk -v a="$1" -v e="$2" -v t="$3" 'BEGIN { d = a - e; if (d < 0) d = -d; exit !(a != "" && d <= t) }'
}

# num_ge A B / num_lt A B: numeric comparisons (decimals allowed).
num_ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }
num_lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 < b + 0) }'; }

now_ns() { date +%s%N; }

# A file descriptor that never delivers data: `read -t` on it is a sleep without a fork
# (forks are slow under TCG, and samplers must keep their pace).
exec {SLEEP_FD}<> <(:)
# pause SECONDS: sleeps (decimals allowed) without starting a process.
pause() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

# wait_for_file PATH SECONDS: waits (polling every 20 ms) until PATH exists.
wait_for_file() {
  local deadline
  deadline=$(awk -v n="$EPOCHREALTIME" -v s="$2" 'BEGIN { printf "%.6f", n + s }')
  until [ -e "$1" ]; do
    num_lt "$EPOCHREALTIME" "$deadline" || return 1
    pause 0.02
  done
}

# jqr FILE FILTER: one value of a JSON document, raw.
jqr() { jq -r "$2" "$1"; }

# Cgroups the current test created, removed by cleanup_cgroups (deepest first).
TEST_CGROUPS=()

# new_cgroup VAR NAME: creates the cgroup $CG/NAME-<pid> (removed when the test ends)
# and stores its path in VAR. Not a command substitution: the list of cgroups to remove
# lives in this shell.
new_cgroup() {
  local dir="$CG/$2-$BASHPID"
  mkdir "$dir" || fail "cannot create cgroup $dir"
  TEST_CGROUPS+=("$dir")
  printf -v "$1" '%s' "$dir"
}

# kill_cgroup DIR: SIGKILLs every process in DIR (and below) through cgroup.kill.
kill_cgroup() {
  [ -d "$1" ] || return 0
  echo 1 >"$1/cgroup.kill" 2>/dev/null || true
}

# Background processes and network namespaces of the current test, ended and deleted
# by cleanup_test.
TEST_PIDS=()
TEST_NETNS=()

# cleanup_test: everything the test started or created, even when it failed.
cleanup_test() {
  local pid ns
  for pid in "${TEST_PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in "${TEST_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  for ns in "${TEST_NETNS[@]}"; do
    ip netns pids "$ns" 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  done
  TEST_PIDS=()
  TEST_NETNS=()
  cleanup_cgroups
}

cleanup_cgroups() {
  local i dir tries
  for ((i = ${#TEST_CGROUPS[@]} - 1; i >= 0; i--)); do
    dir=${TEST_CGROUPS[$i]}
    kill_cgroup "$dir"
    for tries in 1 2 3 4 5 6 7 8 9 10; do
      rmdir "$dir" 2>/dev/null && break
      [ -d "$dir" ] || break
      sleep 0.1
    done
    [ -d "$dir" ] && printf 'could not remove %s (%s tries)\n' "$dir" "$tries"
  done
  TEST_CGROUPS=()
}

# in_cgroup DIR CMD...: runs CMD as a member of cgroup DIR from its first instruction.
# The script is fixed; the path and argv are arguments, never interpolated.
in_cgroup() {
  # shellcheck disable=SC2016 # expanded by the inner sh, on purpose
  sh -c 'echo $$ >"$1/cgroup.procs" || exit 97; shift; exec "$@"' sh "$@"
}

# read_cpu_stat DIR: sets CPU_USAGE_USEC, CPU_NR_THROTTLED and CPU_READ_AT (the time,
# $EPOCHREALTIME) from one read of DIR/cpu.stat, with builtins only: no fork between
# the counter and the clock.
read_cpu_stat() {
  local key value
  while read -r key value; do
    case "$key" in
      usage_usec) CPU_USAGE_USEC=$value ;;
      nr_throttled) CPU_NR_THROTTLED=$value ;;
    esac
  done <"$1/cpu.stat"
  CPU_READ_AT=$EPOCHREALTIME
}

# memory_event DIR KEY: one counter of memory.events.
memory_event() { awk -v k="$2" '$1 == k { print $2 }' "$1/memory.events"; }

# mib BYTES: bytes as MiB with one decimal.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# valid_report FILE: one JSON document with the fields every report has.
valid_report() {
  jq -e '.schemaVersion and .tool and .result and (.exitCode | type == "number")' "$1" >/dev/null
}
