#!/bin/bash
# memory-leak on cgroup v2: growth against memory.current, OOM kills counted in
# memory.events with memory.oom.group 0 and 1 (shielded, and exposed without
# CAP_SYS_RESOURCE as in a container), --limit-percent from memory.max, throttling at
# memory.high, and a --cgroup that is not a cgroup. Usage and counters are read from the
# cgroup's own files, independently of the reports.

# leak_in DIR ARGS...: runs memory-leak ARGS --cgroup DIR -y --output json; sets
# LEAK_STATUS, LEAK_REPORT, and LEAK_USAGE (file of "seconds MiB" memory.current samples
# every 50 ms while it ran, taken with shell builtins only, so that they keep their pace).
leak_in() {
  local dir=$1 pid t0 bytes raw
  shift
  LEAK_REPORT=$(mktemp)
  LEAK_USAGE=$(mktemp)
  raw=$(mktemp)
  memory-leak "$@" --cgroup "$dir" -y --output json >"$LEAK_REPORT" 2>/tmp/leak.err &
  pid=$!
  t0=$EPOCHREALTIME
  while kill -0 "$pid" 2>/dev/null; do
    read -r bytes <"$dir/memory.current"
    printf '%s %s\n' "$EPOCHREALTIME" "$bytes" >>"$raw"
    pause 0.05
  done
  awk -v t0="$t0" '{ printf "%.3f %.1f\n", $1 - t0, $2 / 1048576 }' "$raw" >"$LEAK_USAGE"
  LEAK_STATUS=0
  wait "$pid" || LEAK_STATUS=$?
}

# slope FILE LOW HIGH: least-squares MiB/s of the samples between LOW and HIGH MiB,
# before the first sample at or above HIGH.
slope() {
  awk -v lo="$2" -v hi="$3" '
    $2 >= hi { done = 1 }
    !done && $2 >= lo { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
    END { if (n < 5) { print "none"; exit } printf "%.2f", (n * sxy - sx * sy) / (n * sxx - sx * sx) }' "$1"
}

test_memory_growth_rate_against_memory_current() {
  local cg measured reported peak after
  new_cgroup cg mem-rate
  leak_in "$cg" --rate-mb-per-second 40 --limit-mb 120 --hold-seconds 1
  [ "$LEAK_STATUS" -eq 0 ] || { cat /tmp/leak.err; fail "memory-leak exited $LEAK_STATUS"; }
  measured=$(slope "$LEAK_USAGE" 20 100)
  reported=$(jqr "$LEAK_REPORT" .observations.achievedRateMibPerSecond)
  peak=$(sort -k2 -n "$LEAK_USAGE" | tail -n 1 | cut -d' ' -f2)
  after=$(mib "$(cat "$cg/memory.current")")
  note "40 MiB/s asked: memory.current grew at $measured MiB/s, the report says $reported;" \
    "peak $peak MiB, $after MiB left after release"
  check "memory.current's slope within $RATE_TOLERANCE_PERCENT% of 40" near "$measured" 40 $((40 * RATE_TOLERANCE_PERCENT / 100))
  check "the reported rate within $RATE_TOLERANCE_PERCENT% of 40" near "$reported" 40 $((40 * RATE_TOLERANCE_PERCENT / 100))
  check "peak memory.current near 120 MiB" near "$peak" 122 8
  check "released (under 8 MiB left)" num_lt "$after" 8
  check "no process left in the cgroup" [ -z "$(cat "$cg/cgroup.procs")" ]
  check "memory.current read as the cgroup usage" [ "$(jqr "$LEAK_REPORT" .observations.cgroup)" = "$cg" ]
}

# oom_case DIR GROUP: memory.max 64M and memory.oom.group GROUP on DIR.
oom_cgroup() {
  echo 64M >"$1/memory.max"
  echo "$2" >"$1/memory.oom.group"
  echo 0 >"$1/memory.swap.max" 2>/dev/null || true
}

test_memory_oom_kill_with_oom_group_0() {
  local cg kills0 kills1
  new_cgroup cg mem-oom0
  oom_cgroup "$cg" 0
  kills0=$(memory_event "$cg" oom_kill)
  leak_in "$cg" --limit-mb 256 --rate-mb-per-second 50 --watch-oom
  kills1=$(memory_event "$cg" oom_kill)
  note "memory.events oom_kill $kills0 -> $kills1;" \
    "report: oomKilled $(jqr "$LEAK_REPORT" .observations.oomKilled)," \
    "peak $(jqr "$LEAK_REPORT" .observations.peakResidentMib) MiB"
  [ "$LEAK_STATUS" -eq 0 ] || { cat /tmp/leak.err; fail "memory-leak exited $LEAK_STATUS"; }
  check "the kernel counted the kill" [ "$kills1" -gt "$kills0" ]
  check "reported as an OOM kill" [ "$(jqr "$LEAK_REPORT" .observations.oomKilled)" = true ]
  check "stopReason oom-killed" [ "$(jqr "$LEAK_REPORT" .stopReason)" = oom-killed ]
  check "not a group kill" [ "$(jqr "$LEAK_REPORT" .observations.oomGroupKilled)" = false ]
  check "limit read from memory.max" [ "$(jqr "$LEAK_REPORT" .observations.cgroupLimitMib)" = 64 ]
  check "peak near the 64 MiB limit" near "$(jqr "$LEAK_REPORT" .observations.peakResidentMib)" 60 12
}

# group_kill_run DIR [SETPRIV ARGS...]: runs a bystander (sleep, the application of the
# container) and memory-leak inside DIR (no --cgroup: the supervisor shares the
# allocator's cgroup, as in a container); sets LEAK_STATUS, LEAK_REPORT, BYSTANDER.
group_kill_run() {
  local dir=$1
  shift
  in_cgroup "$dir" sleep 600 &
  BYSTANDER=$!
  LEAK_REPORT=$(mktemp)
  LEAK_STATUS=0
  in_cgroup "$dir" "$@" memory-leak --limit-mb 256 --rate-mb-per-second 50 --watch-oom -y \
    --output json >"$LEAK_REPORT" 2>/tmp/leak.err || LEAK_STATUS=$?
}

test_memory_oom_group_1_shielded_supervisor_reports() {
  local cg groups0 groups1
  new_cgroup cg mem-group
  oom_cgroup "$cg" 1
  groups0=$(memory_event "$cg" oom_group_kill)
  group_kill_run "$cg"
  groups1=$(memory_event "$cg" oom_group_kill)
  local bystander_status=0
  wait "$BYSTANDER" || bystander_status=$?
  note "as root (CAP_SYS_RESOURCE): exit $LEAK_STATUS, oom_group_kill $groups0 -> $groups1," \
    "the bystander ended with status $bystander_status"
  [ "$LEAK_STATUS" -eq 0 ] || { cat /tmp/leak.err; fail "memory-leak exited $LEAK_STATUS"; }
  check "the kernel killed the group" [ "$groups1" -gt "$groups0" ]
  check "the bystander was killed with the group (SIGKILL)" [ "$bystander_status" -eq 137 ]
  check "the plan said it shields itself" jq -e '.plan | map(test("oom_score_adj to -1000")) | any' "$LEAK_REPORT"
  check "reported: oomKilled" [ "$(jqr "$LEAK_REPORT" .observations.oomKilled)" = true ]
  check "reported: oomGroupKilled" [ "$(jqr "$LEAK_REPORT" .observations.oomGroupKilled)" = true ]
  check "reported: shielded" [ "$(jqr "$LEAK_REPORT" .observations.shieldedFromGroupKill)" = true ]
  check "oom_score_adj restored" [ "$(jqr "$LEAK_REPORT" .revert.details.oomScoreAdjRestored)" = 0 ]
}

test_memory_oom_group_1_exposed_supervisor_dies_with_the_group() {
  local cg groups0 groups1 dry
  new_cgroup cg mem-exposed
  oom_cgroup "$cg" 1
  # A container's capabilities: no CAP_SYS_RESOURCE, so no shield.
  local drop=(setpriv --inh-caps=-sys_resource --bounding-set=-sys_resource)
  dry=$(mktemp)
  in_cgroup "$cg" "${drop[@]}" memory-leak --limit-mb 256 --rate-mb-per-second 50 --watch-oom \
    --dry-run --output json >"$dry"
  check "the plan warns that no report will come" jq -e '.warnings | map(test("no report \\(exit 137")) | any' "$dry"
  groups0=$(memory_event "$cg" oom_group_kill)
  group_kill_run "$cg" "${drop[@]}"
  groups1=$(memory_event "$cg" oom_group_kill)
  wait "$BYSTANDER" || true
  note "without CAP_SYS_RESOURCE: exit $LEAK_STATUS (137 = SIGKILL), $(wc -c <"$LEAK_REPORT") bytes" \
    "of report, oom_group_kill $groups0 -> $groups1: what the operator-side watcher reads"
  check "the supervisor died with the group (exit 137)" [ "$LEAK_STATUS" -eq 137 ]
  check "no report came out" [ ! -s "$LEAK_REPORT" ]
  check "memory.events counted the group kill" [ "$groups1" -gt "$groups0" ]
}

test_memory_limit_percent_from_memory_max() {
  local cg target peak
  new_cgroup cg mem-percent
  echo 100M >"$cg/memory.max"
  leak_in "$cg" --limit-percent 50 --rate-mb-per-second 40 --hold-seconds 1
  [ "$LEAK_STATUS" -eq 0 ] || { cat /tmp/leak.err; fail "memory-leak exited $LEAK_STATUS"; }
  target=$(jqr "$LEAK_REPORT" .parameters.targetMib)
  peak=$(sort -k2 -n "$LEAK_USAGE" | tail -n 1 | cut -d' ' -f2)
  note "--limit-percent 50 of memory.max 100M: target $target MiB, memory.current peaked at $peak MiB"
  check "target is 50 MiB" [ "$target" = 50 ]
  check "memory.current peaked near 50 MiB" near "$peak" 52 6
  check "no OOM kill" [ "$(jqr "$LEAK_REPORT" .observations.oomKilled)" = false ]
}

test_memory_high_throttling_is_reported() {
  local cg high0 high1 events rate
  new_cgroup cg mem-high
  echo 32M >"$cg/memory.high"
  high0=$(memory_event "$cg" high)
  leak_in "$cg" --limit-mb 64 --rate-mb-per-second 64 -d 3
  high1=$(memory_event "$cg" high)
  [ "$LEAK_STATUS" -eq 0 ] || { cat /tmp/leak.err; fail "memory-leak exited $LEAK_STATUS"; }
  events=$(jqr "$LEAK_REPORT" .observations.memoryHighEvents)
  rate=$(jqr "$LEAK_REPORT" .observations.achievedRateMibPerSecond)
  note "memory.high 32M, 64 MiB at 64 MiB/s asked: memory.events high $high0 -> $high1," \
    "reported memoryHighEvents $events, achieved $rate MiB/s"
  check "the plan warned of memory.high" jq -e '.warnings | map(test("memory.high")) | any' "$LEAK_REPORT"
  check "the kernel throttled above memory.high" [ "$high1" -gt "$high0" ]
  check "the report counts it" num_ge "$events" 1
  check "memory.high reported" [ "$(jqr "$LEAK_REPORT" .observations.cgroupMemoryHighMib)" = 32 ]
  check "nothing was killed" [ "$(jqr "$LEAK_REPORT" .observations.oomKilled)" = false ]
}

test_memory_cgroup_must_be_a_real_cgroup() {
  local fake status=0 err
  fake=$(mktemp -d)
  echo 67108864 >"$fake/memory.max"
  : >"$fake/cgroup.procs"
  err=$(memory-leak --cgroup "$fake" --limit-mb 16 --dry-run --output json 2>&1 >/dev/null) || status=$?
  note "a tmpfs directory with a memory.max file: exit $status: $err"
  check "bad input (exit 2)" [ "$status" -eq 2 ]
  check "says why" grep -q "not on a cgroup filesystem" <<<"$err"
  local cg
  new_cgroup cg mem-real
  echo 64M >"$cg/memory.max"
  memory-leak --cgroup "$cg" --limit-mb 16 --dry-run --output json >/tmp/real.json
  check "a real cgroup2 directory is accepted, its limit read" \
    [ "$(jqr /tmp/real.json '.targets[0].details.limitMib')" = 64 ]
}
