#!/usr/bin/env bash
# net-partition against the original's approach (one `iptables -A` per rule, then `-D`),
# side by side in one run, inside two network namespaces this script creates and deletes:
#  - time to apply and to revert a partition (median of N runs) for 1 and 10 target
#    addresses, TCP port 3000, both directions (the EXP-004 shape);
#  - the time from the start of apply until a running UDP flow (one datagram every
#    0.5 ms) stops passing data.
# Prints Markdown tables. Needs root, nft, iptables, iptables-legacy (optional), python3.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
root=$(chaos_root)

runs=20
flow_runs=5
targets_list="1 10"
port=3000
bin=""

usage() {
  cat <<USAGE
Usage: scripts/bench.sh partition [OPTIONS]

Times net-partition's apply and revert (one nft JSON transaction / one table delete)
against one iptables -A per rule and one -D per rule (iptables-nft and, if present,
iptables-legacy), and the time until a running flow is cut. Needs root.

Options:
  --runs N            apply/revert repetitions, median reported [${runs}]
  --flow-runs N       flow-cut repetitions, median reported [${flow_runs}]
  --targets "N ..."   numbers of target addresses to partition [${targets_list}]
  --net-partition P   binary to measure [built with cargo build --release -p net-partition]
  -h, --help          this help
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    --flow-runs) flow_runs=${2:?--flow-runs needs a value}; shift 2 ;;
    --targets) targets_list=${2:?--targets needs a value}; shift 2 ;;
    --net-partition) bin=${2:?--net-partition needs a path}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count --runs "$runs"
require_count --flow-runs "$flow_runs"
for n in $targets_list; do
  if ! [[ "$n" =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt 200 ]; then
    die "--targets: '$n' is not 1-200"
  fi
done
is_root || die "needs root: network namespaces and nftables"
for cmd in ip nft iptables python3; do
  command -v "$cmd" >/dev/null || die "$cmd is not installed"
done
iptables_variants=(iptables)
command -v iptables-legacy >/dev/null && iptables_variants+=(iptables-legacy)

bin=$(release_bin net-partition net-partition "$bin")

client="npbench-c-$$"
server="npbench-s-$$"
work=$(mktemp -d)

cleanup() {
  stop_tracked
  # Deleting the namespaces deletes every rule and table created inside them.
  ip netns del "$client" 2>/dev/null || true
  ip netns del "$server" 2>/dev/null || true
  rm -rf "$work"
}
on_exit cleanup

in_client() { ip netns exec "$client" "$@"; }
in_server() { ip netns exec "$server" "$@"; }

ip netns add "$client"
ip netns add "$server"
ip link add "npb$$a" netns "$client" type veth peer name "npb$$b" netns "$server"
in_client ip addr add 198.51.100.1/30 dev "npb$$a"
in_server ip addr add 198.51.100.2/30 dev "npb$$b"
for ns in "$client" "$server"; do
  ip netns exec "$ns" ip link set lo up
done
in_client ip link set "npb$$a" up
in_server ip link set "npb$$b" up
peer=198.51.100.2

# now_us: microseconds since the epoch, without forking.
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

median() {
  python3 -c 'import statistics, sys; v = [float(x) for x in sys.stdin.read().split()]; print("%.2f" % statistics.median(v))'
}

# target_ips N: the peer, then N-1 more addresses of 198.51.100.0/24 (rules only).
target_ips() {
  local n=$1 i
  echo "$peer"
  for ((i = 1; i < n; i++)); do echo "198.51.100.$((100 + i))"; done
}

# ours N: N runs of net-partition; appends applyMs, apply phase, revertMs, revert phase.
ours() {
  local n=$1 i args=() ip
  while read -r ip; do args+=(-H "$ip"); done < <(target_ips "$n")
  : >"$work/ours-apply" ; : >"$work/ours-apply-phase"; : >"$work/ours-revert"; : >"$work/ours-revert-phase"
  for ((i = 0; i < runs; i++)); do
    in_client "$bin" "${args[@]}" -p "$port" --protocol tcp --bidirectional -d 100ms -y \
      --output json --run-id "bench-$i" 2>/dev/null >"$work/report.json"
    python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
r = json.load(open(work + "/report.json"))
assert r["result"] == "ok" and r["revert"]["status"] == "reverted", r
phase = {p["name"]: p["durationMs"] for p in r["phases"]}
for name, value in [("ours-apply", r["observations"]["applyMs"]), ("ours-apply-phase", phase["apply"]),
                    ("ours-revert", r["revert"]["details"]["revertMs"]), ("ours-revert-phase", phase["revert"])]:
    open(work + "/" + name, "a").write("%f\n" % value)
PY
  done
}

# theirs CMD N: N runs of one `CMD -A` per rule, then one `CMD -D` per rule.
theirs() {
  local cmd=$1 n=$2 i t0 t1 t2 ip rules=()
  while read -r ip; do
    rules+=("OUTPUT -d $ip -p tcp --dport $port -j DROP" "INPUT -s $ip -p tcp --sport $port -j DROP")
  done < <(target_ips "$n")
  : >"$work/theirs-apply"; : >"$work/theirs-revert"
  local rule spec
  for ((i = 0; i < runs; i++)); do
    t0=$(now_us)
    for rule in "${rules[@]}"; do
      read -r -a spec <<<"$rule"
      in_client "$cmd" -A "${spec[@]}"
    done
    t1=$(now_us)
    for rule in "${rules[@]}"; do
      read -r -a spec <<<"$rule"
      in_client "$cmd" -D "${spec[@]}"
    done
    t2=$(now_us)
    echo "$((t1 - t0))" | awk '{ printf "%f\n", $1 / 1000 }' >>"$work/theirs-apply"
    echo "$((t2 - t1))" | awk '{ printf "%f\n", $1 / 1000 }' >>"$work/theirs-revert"
  done
}

# The flow: a UDP datagram every 0.5 ms from the client to the peer; the receiver prints
# the time (µs since the epoch) of the last datagram before a gap of 1 s, then exits.
receiver_py='
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.2", 5000))
s.settimeout(1.0)
last, seen, deadline = None, 0, time.time() + 30
while time.time() < deadline:
    try:
        s.recv(64)
        last, seen = time.time_ns() // 1000, seen + 1
    except socket.timeout:
        if seen > 100:
            break
print(last if seen > 100 else "none")
'
sender_py='
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 8
while time.time() < end:
    try:
        s.sendto(b"x", ("198.51.100.2", 5000))
    except OSError:
        pass
    time.sleep(0.0005)
'

# flow_cut WHO: one measurement; appends ms from apply start to the last datagram.
flow_cut() {
  local who=$1 t0 last started
  in_server python3 -c "$receiver_py" >"$work/last" &
  local receiver=$!
  track_pid "$receiver"
  sleep 0.3
  in_client python3 -c "$sender_py" &
  local sender=$!
  track_pid "$sender"
  sleep 1
  t0=$(now_us)
  case "$who" in
    ours)
      in_client "$bin" -H "$peer" -p 5000 --protocol udp --bidirectional -d 2 -y \
        --output json --run-id flow 2>/dev/null >"$work/flow.json"
      started=$(python3 -c 'import json, sys, datetime
r = json.load(open(sys.argv[1]))
p = [p for p in r["phases"] if p["name"] == "apply"][0]
t = datetime.datetime.fromisoformat(p["startedAt"].replace("Z", "+00:00"))
print(int(t.timestamp() * 1e6))' "$work/flow.json")
      ;;
    *)
      in_client "$who" -A OUTPUT -d "$peer" -p udp --dport 5000 -j DROP
      in_client "$who" -A INPUT -s "$peer" -p udp --sport 5000 -j DROP
      started=$t0
      sleep 2
      in_client "$who" -D OUTPUT -d "$peer" -p udp --dport 5000 -j DROP
      in_client "$who" -D INPUT -s "$peer" -p udp --sport 5000 -j DROP
      ;;
  esac
  wait "$receiver" || true
  untrack_pid "$receiver"
  kill "$sender" 2>/dev/null || true
  wait "$sender" 2>/dev/null || true
  untrack_pid "$sender"
  last=$(cat "$work/last")
  [ "$last" != none ] || die "the flow never started"
  awk -v l="$last" -v t="$t0" 'BEGIN { printf "%f\n", (l - t) / 1000 }' >>"$work/cut-$who"
  awk -v l="$last" -v t="$started" 'BEGIN { printf "%f\n", (l - t) / 1000 }' >>"$work/cut-phase-$who"
}

log "apply/revert: $runs runs per cell; flow cut: $flow_runs runs; $(nproc) CPU(s); $("$bin" --version)"
header="| measurement (median) | net-partition: nft JSON, one transaction |"
sep="|---|---|"
for v in "${iptables_variants[@]}"; do
  header+=" $v ($( "$v" --version | awk '{print $2, $3}' )), one command per rule |"
  sep+="---|"
done
echo "$header"
echo "$sep"
for n in $targets_list; do
  ours "$n"
  row_apply="| apply, $n target(s), TCP port $port both ways ($((2 * n)) iptables rules) | $(median <"$work/ours-apply") ms (whole apply step incl. watchdog start: $(median <"$work/ours-apply-phase") ms) |"
  row_revert="| revert, $n target(s) | $(median <"$work/ours-revert") ms (whole revert step incl. watchdog stop: $(median <"$work/ours-revert-phase") ms) |"
  for v in "${iptables_variants[@]}"; do
    theirs "$v" "$n"
    row_apply+=" $(median <"$work/theirs-apply") ms |"
    row_revert+=" $(median <"$work/theirs-revert") ms |"
  done
  echo "$row_apply"
  echo "$row_revert"
done

for who in ours "${iptables_variants[@]}"; do
  : >"$work/cut-$who"; : >"$work/cut-phase-$who"
  for ((i = 0; i < flow_runs; i++)); do flow_cut "$who"; done
done
row="| flow cut: start of apply to last datagram through (UDP every 0.5 ms) | $(median <"$work/cut-ours") ms from launching net-partition ($(median <"$work/cut-phase-ours") ms from its apply step, ms clock) |"
for v in "${iptables_variants[@]}"; do
  row+=" $(median <"$work/cut-$v") ms |"
done
echo "$row"
