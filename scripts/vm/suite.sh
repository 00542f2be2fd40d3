#!/bin/bash
# The guest suite of the VM lane: the root tests that need a second kernel (cgroup v2,
# memory.oom.group, a second nf_tables), run inside the guest by init.sh. Each test is a
# function `test_<group>_<name>` in tests/<group>.sh, run in a subshell of its own with
# `set -euo pipefail`; it prints detail lines and fails through `check`/`fail`
# (lib.sh). Output, for a person reading the serial console:
#
#   PASS cpu_of_limit_host_view (4.1 s)
#       report 39.9%, cpu.stat 39.8% for a 40% target
#   ...
#   12 passed, 0 failed
#
# Groups run: $chaos_suite (a kernel command-line word, e.g. chaos_suite=cpu,memory),
# default all. Exit status: 0 when every test passed, 1 otherwise.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/vm/lib.sh
source "$here/lib.sh"
for file in "$here"/tests/*.sh; do
  # shellcheck source=/dev/null
  source "$file"
done

groups=${chaos_suite:-all}
selected() {
  [ "$groups" = all ] && return 0
  case ",$groups," in *",$1,"*) return 0 ;; esac
  return 1
}

passed=0
failed=0
failures=()
for fn in $(declare -F | awk '$3 ~ /^test_/ { print $3 }'); do
  name=${fn#test_}
  selected "${name%%_*}" || continue
  log_file=$(mktemp)
  started=$(now_ns)
  (
    set -euo pipefail
    trap cleanup_test EXIT
    "$fn"
  ) >"$log_file" 2>&1
  status=$?
  seconds=$(awk -v a="$started" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    printf 'PASS %s (%s s)\n' "$name" "$seconds"
    grep '^    ' "$log_file" || true
  else
    failed=$((failed + 1))
    failures+=("$name")
    printf 'FAIL %s (%s s, status %s)\n' "$name" "$seconds" "$status"
    sed 's/^/  | /' "$log_file"
  fi
  rm -f "$log_file"
done

[ "$failed" -eq 0 ] || printf 'failed: %s\n' "${failures[*]}"
printf '%s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
