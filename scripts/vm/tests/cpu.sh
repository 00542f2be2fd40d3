#!/bin/bash
# cpu-hog on cgroup v2: --of-limit from cpu.max, throttling from cpu.stat, -k all from
# the quota, and the container's view (a cgroup namespace with its own cgroup2 mount).
# The CPU the tool used is measured independently: the cgroup's cpu.stat usage_usec.

# hog_in DIR SECONDS [--namespace] ARGS...: runs cpu-hog ARGS inside cgroup DIR (with
# --namespace, in a cgroup namespace of its own with its own cgroup2 mount, as in a
# container) for SECONDS + 2 s, and measures it independently over a window of SECONDS:
# from 1 s after it registered (warm-up: under TCG, translating a new binary's code is
# CPU time the guest charges to it) on. Sets HOG_STATUS, HOG_REPORT (file), HOG_WORKERS,
# HOG_PERCENT (cpu.stat usage_usec over the window, per worker) and HOG_THROTTLED
# (cpu.stat nr_throttled over the window).
hog_in() {
  local dir=$1 seconds=$2 run_id="hog-$BASHPID-$RANDOM" state pid
  shift 2
  local prefix=()
  if [ "${1:-}" = --namespace ]; then
    shift
    # unshare makes the new mount namespace's propagation private: the host keeps its
    # mount. The container's cgroup2 mount replaces the host's view inside.
    # shellcheck disable=SC2016 # expanded by the inner sh, on purpose
    prefix=(unshare --cgroup --mount sh -c 'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"' sh)
  fi
  state=$(mktemp -d)
  HOG_REPORT=$(mktemp)
  CHAOS_STATE_DIR=$state in_cgroup "$dir" "${prefix[@]}" cpu-hog "$@" -d $((seconds + 2)) \
    --run-id "$run_id" -y --output json >"$HOG_REPORT" 2>/tmp/hog.err &
  pid=$!
  wait_for_file "$state/cpu-hog-$run_id.json" 20 || { cat /tmp/hog.err; fail "cpu-hog never registered"; }
  pause 1
  local u0 u1 n0 n1 t0 t1
  read_cpu_stat "$dir"
  u0=$CPU_USAGE_USEC n0=$CPU_NR_THROTTLED t0=$CPU_READ_AT
  pause "$seconds"
  read_cpu_stat "$dir"
  u1=$CPU_USAGE_USEC n1=$CPU_NR_THROTTLED t1=$CPU_READ_AT
  HOG_STATUS=0
  wait "$pid" || HOG_STATUS=$?
  [ "$HOG_STATUS" -eq 0 ] || { cat /tmp/hog.err; fail "cpu-hog exited $HOG_STATUS"; }
  check "the report is one JSON document" valid_report "$HOG_REPORT"
  HOG_WORKERS=$(jqr "$HOG_REPORT" .observations.workers)
  HOG_PERCENT=$(awk -v u="$((u1 - u0))" -v a="$t0" -v b="$t1" -v w="$HOG_WORKERS" \
    'BEGIN { printf "%.2f", u / 1e6 / (b - a) / w * 100 }')
  HOG_THROTTLED=$((n1 - n0))
}

# assert_held TARGET: the report and cpu.stat both within the tolerance of TARGET.
assert_held() {
  local target=$1 achieved
  achieved=$(jqr "$HOG_REPORT" .observations.achievedCpuPercent)
  note "target ${target}%: report ${achieved}%, cpu.stat ${HOG_PERCENT}% (${HOG_WORKERS} worker(s))"
  check "targetCpuPercent is $target" near "$(jqr "$HOG_REPORT" .observations.targetCpuPercent)" "$target" 0.001
  check "the report's ${achieved}% is within $CPU_TOLERANCE_POINTS points of $target" \
    near "$achieved" "$target" "$CPU_TOLERANCE_POINTS"
  check "cpu.stat's ${HOG_PERCENT}% is within $CPU_TOLERANCE_POINTS points of $target" \
    near "$HOG_PERCENT" "$target" "$CPU_TOLERANCE_POINTS"
  check "reverted" [ "$(jqr "$HOG_REPORT" .revert.status)" = reverted ]
}

test_cpu_of_limit_from_cpu_max() {
  local cg
  new_cgroup cg cpu-limit
  echo "50000 100000" >"$cg/cpu.max"
  hog_in "$cg" 3 -c 80 --of-limit
  check "quota read as 0.5 core" near "$(jqr "$HOG_REPORT" .observations.cgroupCpuQuotaCores)" 0.5 0.001
  assert_held 40
}

test_cpu_throttling_from_cpu_stat() {
  local cg measured periods throttled_ms
  new_cgroup cg cpu-throttle
  echo "50000 100000" >"$cg/cpu.max"
  hog_in "$cg" 4 -c 90
  check "the plan warned of throttling" jq -e '.warnings | map(test("throttled")) | any' "$HOG_REPORT"
  measured=$HOG_PERCENT
  periods=$(jqr "$HOG_REPORT" .observations.cgroupThrottledPeriods)
  throttled_ms=$(jqr "$HOG_REPORT" .observations.cgroupThrottledMs)
  note "90% asked under a 50% quota: cpu.stat ${measured}%, throttled in $periods periods" \
    "($throttled_ms ms) over the run; cpu.stat nr_throttled rose by $HOG_THROTTLED in the 4 s window"
  check "the quota held the load at 50% (+$CPU_TOLERANCE_POINTS)" num_lt "$measured" $((50 + CPU_TOLERANCE_POINTS))
  check "throttled periods reported (>= 5)" num_ge "$periods" 5
  check "throttled time reported" num_lt 0 "$throttled_ms"
  check "cpu.stat throttled in most of the window's 40 periods" num_ge "$HOG_THROTTLED" 25
}

test_cpu_cores_all_from_the_quota() {
  local cg dry workers cpus
  new_cgroup cg cpu-wide
  echo "150000 100000" >"$cg/cpu.max"
  cpus=$(nproc)
  workers=$((cpus < 2 ? cpus : 2))
  dry=$(mktemp)
  in_cgroup "$cg" cpu-hog -c 80 -k all --dry-run --output json >"$dry"
  check "-k all under 1.5 cores is $workers workers on $cpus CPU(s)" \
    [ "$(jqr "$dry" .parameters.workers)" = "$workers" ]
  hog_in "$cg" 3 -c 80 -k all --of-limit
  assert_held "$(awk -v w="$workers" 'BEGIN { print 80 * 1.5 / w }')"
}

test_cpu_of_limit_in_a_cgroup_namespace() {
  local cg view
  new_cgroup cg cpu-container
  echo "50000 100000" >"$cg/cpu.max"
  # shellcheck disable=SC2016 # expanded by the inner sh, on purpose
  view=$(in_cgroup "$cg" unshare --cgroup --mount sh -c \
    'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && cat /proc/self/cgroup && cat /sys/fs/cgroup/cpu.max')
  note "inside: /proc/self/cgroup and cpu.max read $(echo "$view" | tr '\n' ' ')"
  check "the process's cgroup is the namespace root" [ "$(echo "$view" | head -n 1)" = "0::/" ]
  check "the container's cgroup2 mount shows its cpu.max" [ "$(echo "$view" | tail -n 1)" = "50000 100000" ]
  hog_in "$cg" 3 --namespace -c 80 --of-limit
  check "quota read as 0.5 core inside" near "$(jqr "$HOG_REPORT" .observations.cgroupCpuQuotaCores)" 0.5 0.001
  assert_held 40
}
