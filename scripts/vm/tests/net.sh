#!/bin/bash
# net-partition and latency-injector's proxy engine on the guest's kernel (6.1, its own
# nf_tables): apply, revert, the watchdog after a SIGKILL, and --cleanup, in network
# namespaces this test creates (a client "pod" C linked to a server A on 198.51.100.0/30).
# Traffic is measured from C with socat, compared with the same measurement taken before
# the fault. The netem engine's tests (latency-netem.sh, group netem) use the same lab.

# lab: namespaces C and A joined by a veth pair, 198.51.100.1 (C) <-> 198.51.100.2 (A),
# and echo servers on A's ports 8080, 9090 and 6379. Sets NS_C, NS_A.
lab() {
  NS_C="vmc$BASHPID"
  NS_A="vma$BASHPID"
  ip netns add "$NS_C"
  TEST_NETNS+=("$NS_C")
  ip netns add "$NS_A"
  TEST_NETNS+=("$NS_A")
  ip link add "vc$BASHPID" type veth peer name "va$BASHPID"
  ip link set "vc$BASHPID" netns "$NS_C"
  ip link set "va$BASHPID" netns "$NS_A"
  ip -n "$NS_C" addr add 198.51.100.1/30 dev "vc$BASHPID"
  ip -n "$NS_A" addr add 198.51.100.2/30 dev "va$BASHPID"
  local ns port
  for ns in "$NS_C" "$NS_A"; do
    ip -n "$ns" link set lo up
  done
  ip -n "$NS_C" link set "vc$BASHPID" up
  ip -n "$NS_A" link set "va$BASHPID" up
  for port in 8080 9090 6379; do
    ip netns exec "$NS_A" socat "TCP-LISTEN:$port,bind=198.51.100.2,fork,reuseaddr" PIPE &
    TEST_PIDS+=("$!")
  done
  for port in 8080 9090 6379; do
    wait_until 10 reaches "$NS_C" 198.51.100.2 "$port" || fail "echo server on :$port never answered"
  done
}

# rtt_ms NS HOST PORT: milliseconds of one echo round trip on a new connection from NS
# (socat's start included, the same in every measurement), or "fail".
rtt_ms() {
  local t0 t1 out
  t0=$EPOCHREALTIME
  out=$(printf 'ping\n' | ip netns exec "$1" socat -T 3 - "TCP:$2:$3,connect-timeout=1" 2>/dev/null) \
    || { echo fail; return 0; }
  t1=$EPOCHREALTIME
  [ "$out" = ping ] || { echo fail; return 0; }
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }'
}

reaches() { [ "$(rtt_ms "$@")" != fail ]; }

# delay_ms NS HOST PORT: milliseconds between writing a line and reading its echo on a
# connection from NS opened beforehand, timed inside one shell (no process start in the
# measured interval: under TCG that costs hundreds of ms, more than the delays measured).
delay_ms() {
  # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
  ip netns exec "$1" timeout 10 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
    t0=$EPOCHREALTIME
    printf "ping\n" >&3
    read -r -t 5 line <&3 || exit 1
    t1=$EPOCHREALTIME
    [ "$line" = ping ] || exit 1
    awk -v a="$t0" -v b="$t1" "BEGIN { printf \"%.0f\", (b - a) * 1000 }"' sh "$2" "$3" \
    || echo fail
}

# wait_until SECONDS CMD...: polls CMD every 50 ms.
wait_until() {
  local deadline
  deadline=$(awk -v n="$EPOCHREALTIME" -v s="$1" 'BEGIN { printf "%.6f", n + s }')
  shift
  until "$@"; do
    num_lt "$EPOCHREALTIME" "$deadline" || return 1
    pause 0.05
  done
}

# has_table NS NAME: NS has an nftables table named exactly NAME (any family).
has_table() { ip netns exec "$1" nft list tables | awk -v n="$2" '$3 == n { found = 1 } END { exit !found }'; }
no_table() { ! has_table "$@"; }

# start_tool NS TOOL RUN_ID ARGS...: starts TOOL in NS in the background (report to
# /tmp/RUN_ID.json); waits for its table chaos-TOOL-RUN_ID. Sets TOOL_PID.
start_tool() {
  local ns=$1 tool=$2 run_id=$3
  shift 3
  CHAOS_STATE_DIR=$(mktemp -d) ip netns exec "$ns" "$tool" "$@" --run-id "$run_id" -d 60 -y \
    --output json >"/tmp/$run_id.json" 2>"/tmp/$run_id.err" &
  TOOL_PID=$!
  TEST_PIDS+=("$TOOL_PID")
  wait_until 15 has_table "$ns" "chaos-$tool-$run_id" \
    || { cat "/tmp/$run_id.err"; fail "$tool never created table chaos-$tool-$run_id"; }
}

# stop_tool RUN_ID: SIGTERM, then the report must say it was reverted.
stop_tool() {
  local status=0
  kill -TERM "$TOOL_PID"
  wait "$TOOL_PID" || status=$?
  [ "$status" -eq 0 ] || { cat "/tmp/$1.err"; fail "exit $status after SIGTERM"; }
  check "the report says aborted and reverted" \
    jq -e '.result == "aborted" and .revert.status == "reverted"' "/tmp/$1.json"
}

test_net_partition_applies_and_reverts() {
  lab
  start_tool "$NS_C" net-partition cut1 -H 198.51.100.2 -p 8080
  local cut other
  cut=$(rtt_ms "$NS_C" 198.51.100.2 8080)
  other=$(rtt_ms "$NS_C" 198.51.100.2 9090)
  note "during: :8080 $cut, :9090 $other ms"
  check "the target port is cut" [ "$cut" = fail ]
  check "another port still passes" [ "$other" != fail ]
  stop_tool cut1
  check "the table is gone" no_table "$NS_C" chaos-net-partition-cut1
  check "the target passes again" reaches "$NS_C" 198.51.100.2 8080
}

test_net_partition_watchdog_removes_the_table_after_sigkill() {
  lab
  start_tool "$NS_C" net-partition kill1 -H 198.51.100.2 -p 8080 --reject
  local t0
  check "reject refuses the target" [ "$(rtt_ms "$NS_C" 198.51.100.2 8080)" = fail ]
  t0=$EPOCHREALTIME
  kill -KILL "$TOOL_PID"
  check "the watchdog deleted the table within 2 s" wait_until 2 no_table "$NS_C" chaos-net-partition-kill1
  note "table gone $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms after SIGKILL"
  check "the target passes again" reaches "$NS_C" 198.51.100.2 8080
}

test_net_partition_cleanup_removes_only_its_tables() {
  lab
  ip netns exec "$NS_C" nft add table inet chaos-net-partition-left1
  ip netns exec "$NS_C" nft add table ip chaos-net-partition-left2
  ip netns exec "$NS_C" nft add table inet keepme
  local state
  state=$(mktemp -d)
  CHAOS_STATE_DIR=$state ip netns exec "$NS_C" net-partition --cleanup --output json >/tmp/np-clean.json
  note "after --cleanup: $(ip netns exec "$NS_C" nft list tables | tr '\n' ' ')"
  check "our leftover (an inet table named like ours) is gone" no_table "$NS_C" chaos-net-partition-left1
  # The tool only ever creates inet tables: an ip table is someone else's, whatever its
  # name (as in tests/tests/net_partition.rs).
  check "an ip-family table named like ours is kept" has_table "$NS_C" chaos-net-partition-left2
  check "another table is kept" has_table "$NS_C" keepme
  check "a second --cleanup is a no-op" env CHAOS_STATE_DIR="$state" ip netns exec "$NS_C" net-partition --cleanup
}

test_net_latency_explicit_proxy_delays_and_reverts() {
  lab
  local direct delayed
  direct=$(delay_ms "$NS_C" 198.51.100.2 8080)
  CHAOS_STATE_DIR=$(mktemp -d) ip netns exec "$NS_C" latency-injector --listen 127.0.0.1:7001 \
    --upstream 198.51.100.2:8080 -l 200 -d 60 --run-id prox1 -y --output json \
    >/tmp/prox1.json 2>/tmp/prox1.err &
  TOOL_PID=$!
  TEST_PIDS+=("$TOOL_PID")
  wait_until 15 reaches "$NS_C" 127.0.0.1 7001 || { cat /tmp/prox1.err; fail "the proxy never answered"; }
  delayed=$(delay_ms "$NS_C" 127.0.0.1 7001)
  note "direct $direct ms, through the proxy with 200 ms: $delayed ms"
  check "the proxy delays by at least 200 ms" num_ge "$delayed" 200
  check "and not much more (under 200 ms + 150 ms of TCG slack)" num_lt "$delayed" $((direct + 350))
  stop_tool prox1
  check "the proxy's port is closed" [ "$(rtt_ms "$NS_C" 127.0.0.1 7001)" = fail ]
}

test_net_latency_transparent_egress_delays_only_the_target() {
  lab
  local base delayed other after
  base=$(delay_ms "$NS_C" 198.51.100.2 6379)
  start_tool "$NS_C" latency-injector egr1 --engine proxy --target 198.51.100.2:6379 -l 300
  delayed=$(delay_ms "$NS_C" 198.51.100.2 6379)
  other=$(delay_ms "$NS_C" 198.51.100.2 8080)
  note "before $base ms; with 300 ms on :6379: $delayed ms, :8080 $other ms"
  check "the target is delayed by at least 300 ms" num_ge "$delayed" 300
  check "and not much more (under 300 ms + 150 ms of TCG slack)" num_lt "$delayed" $((base + 450))
  check "another port is not delayed (under +100 ms)" num_lt "$other" $((base + 100))
  stop_tool egr1
  check "the redirect was deleted" jq -e '.revert.details.redirect.deleted == true' /tmp/egr1.json
  check "the table is gone" no_table "$NS_C" chaos-latency-injector-egr1
  after=$(delay_ms "$NS_C" 198.51.100.2 6379)
  note "after revert: $after ms"
  check "the target is direct again (under +100 ms)" num_lt "$after" $((base + 100))
}

test_net_latency_watchdog_and_cleanup() {
  lab
  start_tool "$NS_C" latency-injector kil2 --engine proxy --target 198.51.100.2:6379 -l 300
  kill -KILL "$TOOL_PID"
  check "the watchdog deleted the redirect table within 2 s" \
    wait_until 2 no_table "$NS_C" chaos-latency-injector-kil2
  check "the target is reached directly (no redirect to a dead port)" reaches "$NS_C" 198.51.100.2 6379
  ip netns exec "$NS_C" nft add table inet chaos-latency-injector-left1
  ip netns exec "$NS_C" nft add table inet keepme
  CHAOS_STATE_DIR=$(mktemp -d) ip netns exec "$NS_C" latency-injector --cleanup >/dev/null 2>&1
  check "--cleanup removed our leftover" no_table "$NS_C" chaos-latency-injector-left1
  check "--cleanup kept another table" has_table "$NS_C" keepme
}
