#!/bin/bash
# latency-injector's netem engine on a kernel that has sch_netem (this machine's CI host
# does not): what is delayed and what is not, connections opened before the fault,
# jitter's bounds, probability, the exact revert, the guard after a SIGKILL and after a
# SIGSTOP (its deadline), --cleanup, and the refusal to replace a root qdisc that is not
# ours. In the lab of net.sh (namespaces C and A on 198.51.100.0/30, echo servers on A's
# 8080, 9090 and 6379); delays are timed inside one shell on a connection opened
# beforehand (delay_ms), never around a process start.

# root_of NS DEV: "KIND HANDLE" of DEV's root qdisc in NS.
root_of() {
  ip netns exec "$1" tc -j qdisc show dev "$2" | jq -r '.[] | select(.root == true) | "\(.kind) \(.handle)"'
}
root_is() { [ "$(root_of "$1" "$2")" = "$3" ]; }

# start_netem NS RUN_ID ARGS...: starts latency-injector in NS for $NETEM_DURATION
# seconds (default 60; report /tmp/RUN_ID.json, log /tmp/RUN_ID.err) and waits until its
# log says the setup (root, netem, filters) is in place. Sets TOOL_PID, and
# NETEM_LAUNCHED ($EPOCHREALTIME just before the launch: its guard starts after it).
start_netem() {
  local ns=$1 run_id=$2
  shift 2
  NETEM_LAUNCHED=$EPOCHREALTIME
  CHAOS_STATE_DIR=$(mktemp -d) ip netns exec "$ns" latency-injector "$@" --run-id "$run_id" \
    -d "${NETEM_DURATION:-60}" -y \
    --output json >"/tmp/$run_id.json" 2>"/tmp/$run_id.err" &
  TOOL_PID=$!
  TEST_PIDS+=("$TOOL_PID")
  wait_until 30 grep -q "with netem .* in place" "/tmp/$run_id.err" \
    || { cat "/tmp/$run_id.err"; fail "latency-injector never set netem up"; }
}

# samples_ms NS HOST PORT N: N echo round trips on one connection, milliseconds each.
samples_ms() {
  # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
  ip netns exec "$1" timeout 120 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
    for ((i = 0; i < $3; i++)); do
      t0=$EPOCHREALTIME
      printf "ping\n" >&3
      read -r -t 5 line <&3 || exit 1
      t1=$EPOCHREALTIME
      printf "%s " "$(( (10#${t1/./} - 10#${t0/./}) / 1000 ))"
    done' sh "$2" "$3" "$4"
}

# A second destination on A, reached over the same interface: 203.0.113.2:8080.
second_destination() {
  ip -n "$NS_A" addr add 203.0.113.2/32 dev "va$BASHPID"
  ip -n "$NS_C" route add 203.0.113.2/32 dev "vc$BASHPID"
  ip netns exec "$NS_A" socat "TCP-LISTEN:8080,bind=203.0.113.2,fork,reuseaddr" PIPE &
  TEST_PIDS+=("$!")
  wait_until 10 reaches "$NS_C" 203.0.113.2 8080 || fail "echo server on 203.0.113.2:8080 never answered"
}

test_netem_auto_delays_only_the_target_and_reverts_exactly() {
  lab
  second_destination
  local dev="vc$BASHPID" before after base other_base delayed other_port other_host back
  before=$(ip netns exec "$NS_C" tc qdisc show)
  base=$(delay_ms "$NS_C" 198.51.100.2 6379)
  other_base=$(delay_ms "$NS_C" 203.0.113.2 8080)
  # auto (the default) picks netem here.
  start_netem "$NS_C" nauto -H 198.51.100.2 -p 6379 -l 300
  delayed=$(delay_ms "$NS_C" 198.51.100.2 6379)
  other_port=$(delay_ms "$NS_C" 198.51.100.2 8080)
  other_host=$(delay_ms "$NS_C" 203.0.113.2 8080)
  note "before $base ms; with 300 ms on :6379: $delayed ms; :8080 $other_port ms; 203.0.113.2:8080 $other_host ms"
  check "the target is delayed by at least 300 ms" num_ge "$delayed" 300
  check "and not much more (under 300 ms + 150 ms of TCG slack)" num_lt "$delayed" $((base + 450))
  check "another port of the target is not delayed" num_lt "$other_port" $((base + 100))
  check "another destination is not delayed" num_lt "$other_host" $((other_base + 100))
  check "the root is a prio of ours" [ "$(root_of "$NS_C" "$dev" | cut -d' ' -f1)" = prio ]
  stop_tool nauto
  check "the report says auto chose netem" \
    jq -e '.parameters.engine == "auto" and .observations.engine == "netem" and (.observations.engineReason | startswith("auto: "))' /tmp/nauto.json
  check "netem counted the delayed packets" jq -e '.observations.packets > 0 and .observations.drops == 0' /tmp/nauto.json
  check "the revert deleted the qdisc" \
    jq -e '.revert.details.engine == "netem" and .revert.details.deleted == true and .revert.details.guard == "stopped"' /tmp/nauto.json
  # The whole report (samples shortened) on the console, for checking against the schema.
  note "report: $(jq -c '.observations.samples |= .[:2]' /tmp/nauto.json)"
  after=$(ip netns exec "$NS_C" tc qdisc show)
  note "tc qdisc show after revert: $(tr '\n' ';' <<<"$after")"
  check "tc qdisc show is as before" [ "$before" = "$after" ]
  back=$(delay_ms "$NS_C" 198.51.100.2 6379)
  check "the target is direct again (under +100 ms)" num_lt "$back" $((base + 100))
}

test_netem_delays_connections_opened_before_the_fault() {
  lab
  local go="/tmp/go-$BASHPID" ready="/tmp/ready-$BASHPID" out="/tmp/pre-$BASHPID" pid before after
  # One shell holds a connection across the start of the fault.
  # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
  ip netns exec "$NS_C" timeout 120 bash -c 'exec 3<>/dev/tcp/198.51.100.2/6379 || exit 1
    exec 4<> <(:)
    rt() { t0=$EPOCHREALTIME; printf "ping\n" >&3; read -r -t 5 line <&3 || exit 1; t1=$EPOCHREALTIME
      printf "%s" "$(( (10#${t1/./} - 10#${t0/./}) / 1000 ))"; }
    b=$(rt); : >"$1"
    until [ -e "$2" ]; do read -r -t 0.05 -u 4 _ || true; done
    a=$(rt); echo "$b $a"' sh "$ready" "$go" >"$out" &
  pid=$!
  TEST_PIDS+=("$pid")
  wait_for_file "$ready" 20 || fail "the connection was never opened"
  start_netem "$NS_C" npre --engine netem --target 198.51.100.2:6379 -l 300
  : >"$go"
  wait "$pid" || fail "the held connection broke"
  read -r before after <"$out"
  note "one connection: $before ms before the fault, $after ms with 300 ms of netem"
  check "it was direct before" num_lt "$before" 150
  check "it is delayed now, opened before or not" num_ge "$after" 300
  stop_tool npre
  check "nothing bypassed it: no --reset-existing needed" jq -e '.observations.engine == "netem"' /tmp/npre.json
}

test_netem_jitter_stays_within_its_bounds() {
  lab
  local base samples s min=999999 max=0 n=0
  base=$(delay_ms "$NS_C" 198.51.100.2 6379)
  start_netem "$NS_C" njit --engine netem --target 198.51.100.2:6379 -l 200 -j 100
  samples=$(samples_ms "$NS_C" 198.51.100.2 6379 25) || fail "the samples' connection broke"
  for s in $samples; do
    n=$((n + 1))
    ((s < min)) && min=$s
    ((s > max)) && max=$s
  done
  note "200 ± 100 ms (base $base ms): $n round trips, min $min, max $max ms: $samples"
  check "25 round trips" [ "$n" -eq 25 ]
  check "none below 200 - 100 ms" num_ge "$min" 100
  check "none above 200 + 100 ms (+ base + 150 ms of TCG slack)" num_lt "$max" $((300 + base + 150))
  check "they spread: jitter is applied (max - min >= 50 ms)" num_ge $((max - min)) 50
  stop_tool njit
}

test_netem_guard_removes_the_qdisc_after_sigkill() {
  lab
  local dev="vc$BASHPID" t0
  start_netem "$NS_C" nkill --engine netem --target 198.51.100.2:6379 -l 300
  t0=$EPOCHREALTIME
  kill -KILL "$TOOL_PID"
  check "the guard put the default qdisc back within 2 s" wait_until 2 root_is "$NS_C" "$dev" "noqueue 0:"
  note "root back to noqueue $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms after SIGKILL"
  check "the target is reached directly" num_lt "$(delay_ms "$NS_C" 198.51.100.2 6379)" 150
}

test_netem_guard_removes_the_qdisc_of_a_stopped_injector_after_its_deadline() {
  lab
  local dev="vc$BASHPID" status=0 waited
  # Planned end: 2 s + the 1 s drain after the guard starts (after the launch); the guard
  # waits the watchdog's grace (10 s) more.
  NETEM_DURATION=2 start_netem "$NS_C" nstop --engine netem --target 198.51.100.2:6379 -l 300 \
    --drain-timeout 1s
  kill -STOP "$TOOL_PID"
  check "the guard put the default qdisc back by the deadline (+ 10 s of slack)" \
    wait_until 25 root_is "$NS_C" "$dev" "noqueue 0:"
  waited=$(awk -v a="$NETEM_LAUNCHED" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  note "root back to noqueue ${waited} s after the launch (planned end 3 s + 10 s of grace)"
  check "not before the planned end and the grace (13 s after the launch)" num_ge "$waited" 13
  check "the target is reached directly while the injector is stopped" \
    num_lt "$(delay_ms "$NS_C" 198.51.100.2 6379)" 150
  kill -CONT "$TOOL_PID"
  wait "$TOOL_PID" || status=$?
  note "resumed injector: exit $status, $(jq -c '{result, stopReason, revert: .revert.status}' /tmp/nstop.json)"
  check "the resumed injector reports the overrun (exit 1)" [ "$status" -eq 1 ]
  check "as failed, overran, and its revert finds nothing left" \
    jq -e '.result == "failed" and (.stopReason | startswith("overran")) and .revert.status == "reverted"' /tmp/nstop.json
  check "nothing is left" root_is "$NS_C" "$dev" "noqueue 0:"
}

test_netem_probability_delays_about_that_share_of_packets() {
  lab
  local samples s slow=0 fast=0 other=0
  start_netem "$NS_C" nprob --engine netem --target 198.51.100.2:6379 -l 300 --probability 50
  samples=$(samples_ms "$NS_C" 198.51.100.2 6379 40) || fail "the samples' connection broke"
  for s in $samples; do
    if ((s >= 300)); then
      slow=$((slow + 1))
    elif ((s < 150)); then
      fast=$((fast + 1))
    else
      other=$((other + 1))
    fi
  done
  stop_tool nprob
  note "--probability 50 on 40 round trips: $slow delayed, $fast direct, $other between: $samples"
  note "netem: $(jq -c '.observations | {packets, packetsNotDelayed}' /tmp/nprob.json)"
  # Binomial(40, 0.5): fewer than 8 or more than 32 happens about once in 10^5 runs.
  check "8 to 32 of the 40 were delayed" near "$slow" 20 12
  check "the others went at once" [ $((fast + slow)) -eq 40 ]
  check "netem counted the packets it sent at once" \
    jq -e '.observations.packetsNotDelayed > 0 and .observations.packetsNotDelayed < .observations.packets' /tmp/nprob.json
}

test_netem_cleanup_removes_only_ours() {
  lab
  local dev="vc$BASHPID" guard
  # Another interface with a netem of someone else's, and a prio that looks like ours
  # but has three bands.
  ip -n "$NS_C" link add "xa$BASHPID" type veth peer name "xb$BASHPID"
  ip -n "$NS_C" link set "xa$BASHPID" up
  ip -n "$NS_C" link set "xb$BASHPID" up
  ip netns exec "$NS_C" tc qdisc add dev "xa$BASHPID" root handle 1: netem delay 5ms
  ip netns exec "$NS_C" tc qdisc add dev "xb$BASHPID" root handle 4c01: prio bands 3
  # A leftover of ours: the run and its guard killed.
  start_netem "$NS_C" nleft --engine netem --target 198.51.100.2:6379 -l 300
  guard=$(ps -o pid= --ppid "$TOOL_PID" | tr -d ' ')
  [ -n "$guard" ] || fail "no guard process under the injector"
  kill -KILL "$guard" "$TOOL_PID"
  check "our qdisc is left behind" [ "$(root_of "$NS_C" "$dev" | cut -d' ' -f1)" = prio ]
  CHAOS_STATE_DIR=$(mktemp -d) ip netns exec "$NS_C" latency-injector --cleanup --dry-run --output json >/tmp/nclean-dry.json
  check "--cleanup --dry-run lists it and removes nothing" \
    jq -e '(.plan | map(select(contains("netem engine"))) | length) == 1' /tmp/nclean-dry.json
  check "(still there)" [ "$(root_of "$NS_C" "$dev" | cut -d' ' -f1)" = prio ]
  CHAOS_STATE_DIR=$(mktemp -d) ip netns exec "$NS_C" latency-injector --cleanup --output json >/tmp/nclean.json
  note "after --cleanup: $(ip netns exec "$NS_C" tc qdisc show | tr '\n' ';')"
  check "ours is gone" root_is "$NS_C" "$dev" "noqueue 0:"
  check "the foreign netem on another interface is kept" root_is "$NS_C" "xa$BASHPID" "netem 1:"
  check "a three-band prio in our handle range is kept" root_is "$NS_C" "xb$BASHPID" "prio 4c01:"
  check "a second --cleanup is a no-op" \
    env CHAOS_STATE_DIR="$(mktemp -d)" ip netns exec "$NS_C" latency-injector --cleanup
}

test_netem_a_foreign_root_qdisc_refuses_netem_and_auto_takes_the_proxy() {
  lab
  local dev="vc$BASHPID" status=0 delayed base
  ip netns exec "$NS_C" tc qdisc add dev "$dev" root handle 1: htb default 1
  base=$(delay_ms "$NS_C" 198.51.100.2 6379)
  CHAOS_STATE_DIR=$(mktemp -d) ip netns exec "$NS_C" latency-injector --engine netem \
    --target 198.51.100.2:6379 -l 300 -d 5 -y >/dev/null 2>/tmp/nref.err || status=$?
  note "--engine netem: exit $status: $(grep -m1 ERROR /tmp/nref.err)"
  check "--engine netem is refused (exit 3)" [ "$status" -eq 3 ]
  check "naming the foreign qdisc" grep -q "has a root qdisc that is not ours (htb 1:)" /tmp/nref.err
  check "which is untouched" root_is "$NS_C" "$dev" "htb 1:"
  start_tool "$NS_C" latency-injector nprox --target 198.51.100.2:6379 -l 300
  delayed=$(delay_ms "$NS_C" 198.51.100.2 6379)
  note "auto with the htb root: $delayed ms (base $base ms)"
  check "auto delays through the proxy" num_ge "$delayed" 300
  stop_tool nprox
  check "the report says proxy, because of the htb" \
    jq -e '.observations.engine == "proxy" and (.observations.engineReason | contains("htb 1:"))' /tmp/nprox.json
  check "the htb root is still there" root_is "$NS_C" "$dev" "htb 1:"
}

test_netem_without_a_target_delays_every_outgoing_connection_but_loopback() {
  lab
  local base port_only other all other_all local_ms
  ip netns exec "$NS_C" socat "TCP-LISTEN:7777,bind=127.0.0.1,fork,reuseaddr" PIPE &
  TEST_PIDS+=("$!")
  wait_until 10 reaches "$NS_C" 127.0.0.1 7777 || fail "loopback echo server never answered"
  base=$(delay_ms "$NS_C" 198.51.100.2 8080)
  # The originals' form with a port: every destination, that port only.
  start_netem "$NS_C" nport -l 300 -p 6379
  port_only=$(delay_ms "$NS_C" 198.51.100.2 6379)
  other=$(delay_ms "$NS_C" 198.51.100.2 8080)
  stop_tool nport
  start_netem "$NS_C" nall -l 300 -j 0
  all=$(delay_ms "$NS_C" 198.51.100.2 9090)
  other_all=$(delay_ms "$NS_C" 198.51.100.2 8080)
  local_ms=$(delay_ms "$NS_C" 127.0.0.1 7777)
  stop_tool nall
  note "-p 6379: :6379 $port_only ms, :8080 $other ms; no target: :9090 $all ms, :8080 $other_all ms, loopback $local_ms ms (base $base ms)"
  check "-p alone delays that port" num_ge "$port_only" 300
  check "and no other" num_lt "$other" $((base + 100))
  check "no target delays every port" num_ge "$all" 300
  check "(every one)" num_ge "$other_all" 300
  # A delayed round trip is never shorter than the 300 ms netem holds it; the base varies
  # by tens of ms under TCG on a busy host, so "not delayed" is "under the delay".
  check "but not loopback (under the 300 ms a delayed round trip takes at least)" \
    num_lt "$local_ms" 300
  check "the report names it" \
    jq -e '.parameters.mode == "egress-all-tcp" and .targets[0].name == "every outgoing TCP connection"' /tmp/nall.json
}
