#!/usr/bin/env bash
# Remote mode on the lab against the originals' path, side by side in one run: time from
# the command to the fault active in every target pod, and from Ctrl-C to the fault gone,
# for 1 pod and for N pods (default 10), plus the copies of the binary per container.
#   ours:      cpu-hog --pod POD | --deployment D (one command; concurrent delivery)
#   originals: per pod, in sequence, one `kubectl exec -i POD -- tar -x` (what
#              `kubectl cp` does) then one `kubectl exec POD -- cpu-hog ...` left running;
#              Ctrl-C: per pod, in sequence, `kubectl exec POD -- cpu-hog --stop RUNID`.
# Both run the same static cpu-hog in the pod; only the delivery differs. Measured from
# outside the tools (scripts/bench/lib/remote-watch.py): a pod is active once a cpu-hog
# process is in its container's cgroup and the cgroup has burnt 5 ms of CPU since; gone
# once no cpu-hog process is left in it; a copy is a file named cpu-hog written into the
# container's /tmp (inotify from the host). Brings its own lab up and down. Needs root.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
root=$(chaos_root)

samples=3
many=10
deployment=customer-service
percent=20
paths="ours originals"
dist="${CHAOS_DIST:-$root/dist}"

usage() {
  cat <<EOF
Usage: scripts/bench.sh remote [OPTIONS]

Brings up a lab of its own (scripts/lab.sh up --no-build), scales a Deployment to N
replicas, and measures cpu-hog's remote mode against the originals' path (one kubectl
exec per pod, in sequence): command -> fault active in every pod, Ctrl-C -> fault gone
in every pod, and the copies of the binary per container, for 1 pod and for N pods.
Prints a Markdown table; the lab is brought down on every exit. Needs root, kubectl,
the lab built (cargo build -p chaos-tests --bins) and the static set in dist/
(scripts/build-static.sh).

Options:
  --samples N        runs per case and path [${samples}]
  --pods N           the many-pod case [${many}]
  --deployment NAME  the Deployment scaled to --pods (one without an HPA) [${deployment}]
  --cpu-percent P    cpu-hog -c in each pod [${percent}]
  --dist DIR         where the static cpu-hog is [\$CHAOS_DIST or dist/]
  --paths "..."      any of: ours originals [${paths}]
  -h, --help         this help
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --samples) samples=${2:?--samples needs a value}; shift 2 ;;
    --pods) many=${2:?--pods needs a value}; shift 2 ;;
    --deployment) deployment=${2:?--deployment needs a name}; shift 2 ;;
    --cpu-percent) percent=${2:?--cpu-percent needs a value}; shift 2 ;;
    --dist) dist=${2:?--dist needs a directory}; shift 2 ;;
    --paths) paths=${2:?--paths needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count --samples "$samples"
require_count --pods "$many"
require_count --cpu-percent "$percent"
[ "$percent" -le 100 ] || die "--cpu-percent must be at most 100 (got '$percent')"
[[ "$deployment" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "--deployment: '$deployment' is not a Deployment name"
for value in $paths; do
  case "$value" in ours|originals) ;; *) die "--paths: unknown '$value'" ;; esac
done
is_root || die "needs root: the lab (network namespaces, cgroups, nftables)"
command -v kubectl >/dev/null || die "kubectl is not installed (apt-get install kubernetes-client)"
command -v python3 >/dev/null || die "python3 is not installed"
command -v jq >/dev/null || die "jq is not installed (apt-get install jq)"
cpu_hog="$dist/cpu-hog"
[ -x "$cpu_hog" ] || die "$cpu_hog is missing: run scripts/build-static.sh (or give --dist)"
watch="$root/scripts/bench/lib/remote-watch.py"

export CHAOS_LAB_DIR="/run/chaos-lab/bench-remote-$$"
work=$(mktemp -d)
lab_pid=""
lab_started=0
watch_pid=""

cleanup() {
  [ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null || true
  stop_tracked
  if [ "$lab_started" = 1 ]; then
    [ -f "$CHAOS_LAB_DIR/pid" ] && lab_pid=$(cat "$CHAOS_LAB_DIR/pid")
    "$root/scripts/lab.sh" down >/dev/null 2>&1 || log "scripts/lab.sh down failed"
    if [ -n "$lab_pid" ]; then
      if ip netns list | grep -q "chaos-l$lab_pid-"; then
        log "left behind: network namespaces of lab $lab_pid"
      fi
      if nft list tables 2>/dev/null | grep -qE "l${lab_pid}([^0-9]|$)"; then
        log "left behind: nftables tables of lab $lab_pid"
      fi
    fi
  fi
  rm -rf "$work"
}
on_exit cleanup

# --- The lab ---------------------------------------------------------------------------
log "lab up ($CHAOS_LAB_DIR)"
lab_started=1
"$root/scripts/lab.sh" up --no-build >"$work/exports" 2>"$work/lab-up.log" \
  || { tail -n 20 "$work/lab-up.log" >&2; die "scripts/lab.sh up failed"; }
# shellcheck disable=SC1091 # written by lab.sh up: export KUBECONFIG=..., BASE_URL=...
source "$work/exports"
lab_pid=$(cat "$CHAOS_LAB_DIR/pid")
export KUBECACHEDIR="$work/kube-cache"
ns=lomash-wood
kubectl scale -n "$ns" "deployment/$deployment" --replicas="$many" >/dev/null
kubectl rollout status -n "$ns" "deployment/$deployment" --timeout=120s >/dev/null \
  || die "deployment/$deployment did not reach $many Ready replicas"
selector="app=$deployment"
mapfile -t all_pods < <(kubectl get pods -n "$ns" -l "$selector" \
  --field-selector=status.phase=Running -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' | sort)
[ "${#all_pods[@]}" -eq "$many" ] || die "expected $many Running pods of $deployment, got ${#all_pods[@]}"
declare -A cgroup=()
for pod in "${all_pods[@]}"; do
  cgroup[$pod]=$("$root/scripts/lab.sh" cgroup "$pod" | awk '$1 ~ /cpuacct/ { print $2; exit }')
  [ -f "${cgroup[$pod]}/cpuacct.usage" ] || die "no cpuacct cgroup for $pod (cgroup v1 expected)"
done

# watch MODE T0 POD... : remote-watch.py over those pods' cgroups; prints the slowest pod's
# ms (or "timeout").
watch_pods() {
  local mode=$1 t0=$2 pod args=() out
  shift 2
  for pod in "$@"; do args+=("$pod=${cgroup[$pod]}"); done
  if out=$(python3 "$watch" "$mode" "$t0" 60 cpu-hog "${args[@]}"); then
    awk '$2 > m { m = $2 } END { print m + 0 }' <<<"$out"
  else
    echo timeout
  fi
}

start_copies() {
  local pod args=()
  for pod in "$@"; do args+=("$pod=${cgroup[$pod]}"); done
  python3 "$watch" copies 0 600 cpu-hog "${args[@]}" >"$work/copies" 2>"$work/copies.err" &
  watch_pid=$!
  local _
  for _ in $(seq 100); do
    grep -q '^watching' "$work/copies.err" && return 0
    sleep 0.05
  done
  cat "$work/copies.err" >&2
  die "the copy watcher did not start"
}

# stop_copies: sets copies to "MIN-MAX" copies of the binary per container in the run.
# Not run in a subshell: it waits for the watcher, its own child.
stop_copies() {
  kill -TERM "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  watch_pid=""
  copies=$(awk 'NR == 1 || $2 < lo { lo = $2 } NR == 1 || $2 > hi { hi = $2 }
       END { print (lo == hi ? lo : lo "-" hi) }' "$work/copies")
}

# Each run sets: active_ms, gone_ms, copies.
active_ms="" gone_ms="" copies=""

# --- Ours: one command --------------------------------------------------------------------
run_ours() {
  local t0 pid rc target=()
  if [ "$#" -eq 1 ]; then target=(--pod "$1"); else target=(--deployment "$deployment"); fi
  start_copies "$@"
  t0=$(date +%s%N)
  "$cpu_hog" "${target[@]}" -n "$ns" --max-pods "$many" -c "$percent" -d 120 -y \
    --output json --log-format json >"$work/ours.json" 2>"$work/ours.log" &
  pid=$!
  track_pid "$pid"
  active_ms=$(watch_pods active "$t0" "$@")
  if [ "$active_ms" = timeout ]; then
    tail -n 5 "$work/ours.log" >&2
    die "cpu-hog remote did not make every pod active within 60 s (its log above)"
  fi
  sleep 1
  t0=$(date +%s%N)
  kill -INT "$pid"
  gone_ms=$(watch_pods gone "$t0" "$@")
  rc=0
  wait "$pid" || rc=$?
  untrack_pid "$pid"
  stop_copies
  [ "$rc" -eq 0 ] || { tail -n 5 "$work/ours.log" >&2; die "cpu-hog remote exited $rc"; }
  # Its own report must agree: every pod's run aborted by the Ctrl-C and reverted.
  jq -e --argjson n "$#" '.result == "aborted" and (.targets | length) == $n
      and all(.targets[]; .details.report.revert.status == "reverted")' \
    "$work/ours.json" >/dev/null || die "cpu-hog remote's report is not $# pods aborted and reverted"
}

# --- The originals' path: one kubectl exec per pod, in sequence ---------------------------
run_originals() {
  local t0 pod i=0 dir="/tmp/chaos-bench-orig-$$" run_id
  run_id="bench-orig-$$-$RANDOM"
  mkdir -p "$work/stage/chaos-bench-orig-$$"
  cp "$cpu_hog" "$work/stage/chaos-bench-orig-$$/cpu-hog"
  start_copies "$@"
  t0=$(date +%s%N)
  for pod in "$@"; do
    tar -c -f - -C "$work/stage" "chaos-bench-orig-$$" \
      | kubectl exec -i -n "$ns" "$pod" -- tar -x -f - -C /tmp
    kubectl exec -n "$ns" "$pod" -- "$dir/cpu-hog" -c "$percent" -d 120 -y \
      --run-id "$run_id-$i" --output json >/dev/null 2>&1 &
    track_pid $!
    i=$((i + 1))
  done
  active_ms=$(watch_pods active "$t0" "$@")
  sleep 1
  t0=$(date +%s%N)
  i=0
  for pod in "$@"; do
    kubectl exec -n "$ns" "$pod" -- "$dir/cpu-hog" --stop "$run_id-$i" >/dev/null 2>&1
    i=$((i + 1))
  done
  gone_ms=$(watch_pods gone "$t0" "$@")
  stop_tracked
  stop_copies
  for pod in "$@"; do kubectl exec -n "$ns" "$pod" -- rm -rf "$dir"; done
}

# median LIST / max LIST of whole numbers; "timeout" when a run timed out.
median() {
  if grep -q timeout <<<"$1"; then echo timeout; return; fi
  tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
maximum() {
  if grep -q timeout <<<"$1"; then echo timeout; return; fi
  tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | tail -n 1
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "measuring: $samples sample(s) per case; pods: 1 and $many of $deployment; cpu-hog -c $percent"
declare -A act=() gone=() cop=()
for _ in $(seq "$samples"); do
  for n in 1 "$many"; do
    pods=("${all_pods[@]:0:$n}")
    for path in $paths; do
      "run_$path" "${pods[@]}"
      key="$path/$n"
      act[$key]="${act[$key]:-} $active_ms"
      gone[$key]="${gone[$key]:-} $gone_ms"
      cop[$key]="${cop[$key]:-} $copies"
      [ "${copies##*-}" -le 1 ] || log "$path, $n pod(s): a container got the binary $copies times"
      log "$path, $n pod(s): active $active_ms ms, gone $gone_ms ms after Ctrl-C, copies per container $copies"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "| pods | path | command -> active in every pod, median (max) | Ctrl-C -> gone in every pod, median (max) | copies per container, each run (min-max over the pods) | goal |"
echo "|---|---|---|---|---|---|"
for n in 1 "$many"; do
  goal=$([ "$n" = 1 ] && echo "< 2 s" || echo "< 3 s")
  for path in $paths; do
    key="$path/$n"
    label=$([ "$path" = ours ] && echo "cpu-hog remote (one command)" || echo "originals' path (kubectl exec per pod, in sequence)")
    printf '| %s | %s | %s ms (%s) | %s ms (%s) | %s | %s |\n' "$n" "$label" \
      "$(median "${act[$key]}")" "$(maximum "${act[$key]}")" \
      "$(median "${gone[$key]}")" "$(maximum "${gone[$key]}")" \
      "$(echo "${cop[$key]}" | xargs)" "$([ "$path" = ours ] && echo "$goal" || echo "-")"
  done
done
echo
echo "Machine: $(nproc) CPU(s), load average $load_before before, $load_after after (1/5/15 min)."
