#!/usr/bin/env bash
# pod-killer against the Kubernetes API test server (HTTPS, admin client certificate),
# side by side in one run with the
# reference tools: kubectl (delete, then `kubectl wait`, which watches) and the original
# TypeScript tool's method (a `kubectl get` poll every 5 s). Two figures per sample:
#   start-up to deletion: process start -> the API server accepted the deletion;
#   Ready to recorded: the test server marks the replacement Ready (its clock, in the
#   pod annotation kube-test-server.chaos-tools/ready-at-us) -> the tool records it.
# Prints a Markdown table (median and max over the samples). Needs kubectl and jq.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

samples=5
poll=5
bin_dir=""

usage() {
  cat <<EOF
Usage: scripts/bench.sh podkiller [OPTIONS]

Measures pod-killer's start-up-to-deletion time and how late it records a replacement
becoming Ready, next to kubectl and to the original 5 s polling, against a
kube-test-server on 127.0.0.1. Prints a Markdown table.

Options:
  --samples N     kills measured per tool [${samples}]
  --poll S        poll period of the original method, in seconds [${poll}]
  --bin-dir DIR   where pod-killer and kube-test-server are [built with cargo build --release]
  -h, --help      this help
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --samples) samples=${2:?--samples needs a value}; shift 2 ;;
    --poll) poll=${2:?--poll needs a value}; shift 2 ;;
    --bin-dir) bin_dir=${2:?--bin-dir needs a path}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
require_count --samples "$samples"
require_count --poll "$poll"
command -v kubectl >/dev/null || die "kubectl is not installed (apt-get install kubernetes-client)"
command -v jq >/dev/null || die "jq is not installed (apt-get install jq)"

if [ -n "$bin_dir" ]; then
  pod_killer=$(release_bin pod-killer pod-killer "$bin_dir/pod-killer")
  server=$(release_bin chaos-tests kube-test-server "$bin_dir/kube-test-server")
else
  pod_killer=$(release_bin pod-killer pod-killer)
  server=$(release_bin chaos-tests kube-test-server)
fi

work=$(mktemp -d)
cleanup() {
  stop_tracked
  rm -rf "$work"
}
# Ctrl-C ends the script here and now (the trap removes the server and the work dir);
# it does not go on with the next sample in a deleted directory.
on_exit cleanup

# One Deployment whose replacements take 1.5 s to become Ready, so every tool is
# already watching (or polling) when it happens.
cat >"$work/fixture.yaml" <<'YAML'
namespaces:
  - name: lomash-wood
    deployments:
      - name: bench
        scheduleDelayMs: 100
        startDelayMs: 200
        readyDelayMs: 1500
YAML
export KUBECONFIG="$work/kubeconfig" KUBECACHEDIR="$work/cache"
"$server" --listen 127.0.0.1:0 --fixture "$work/fixture.yaml" \
  --kubeconfig-out "$KUBECONFIG" >"$work/server.log" 2>&1 &
track_pid $!
for _ in $(seq 50); do
  [ -s "$KUBECONFIG" ] && break
  sleep 0.1
done
[ -s "$KUBECONFIG" ] || die "kube-test-server did not start: $(cat "$work/server.log")"

now_ms() { date +%s%3N; }
rfc3339_ms() { date -d "$1" +%s%3N; }
ready_at_ms() {
  local us
  us=$(kubectl get pod "$1" -o jsonpath='{.metadata.annotations.kube-test-server\.chaos-tools/ready-at-us}')
  echo $((us / 1000))
}
pods() { kubectl get pods -l app=bench -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort; }
settle() { kubectl wait --for=condition=Ready pod -l app=bench --timeout=30s >/dev/null; }
new_pod() {
  local before=$1 name
  for _ in $(seq 100); do
    name=$(comm -13 <(printf '%s\n' "$before") <(pods) | head -n 1)
    if [ -n "$name" ]; then
      echo "$name"
      return 0
    fi
    sleep 0.02
  done
  die "no replacement pod appeared"
}

pk_start=()
pk_ready=()
kc_start=()
kc_ready=()
poll_ready=()
for i in $(seq "$samples"); do
  settle
  # pod-killer: one kill, timed by its own watch.
  t0=$(now_ms)
  "$pod_killer" --deployment bench -c 1 -y --output json --run-id "bench-$i" >"$work/pk.json" 2>"$work/pk.log" \
    || die "pod-killer failed: $(tail -n 3 "$work/pk.log")"
  accepted=$(rfc3339_ms "$(jq -r '.observations.kills[0].deletionAcceptedAt' "$work/pk.json")")
  replacement=$(jq -r '.observations.kills[0].replacement' "$work/pk.json")
  recorded=$(rfc3339_ms "$(jq -r '.observations.kills[0].replacementReadyAt' "$work/pk.json")")
  pk_start+=($((accepted - t0)))
  pk_ready+=($((recorded - $(ready_at_ms "$replacement"))))
  settle

  # kubectl: delete (returns once accepted with --wait=false), then kubectl wait.
  before=$(pods)
  t0=$(now_ms)
  kubectl delete pod "$(head -n 1 <<<"$before")" --grace-period=0 --wait=false >/dev/null
  kc_start+=($(($(now_ms) - t0)))
  replacement=$(new_pod "$before")
  kubectl wait --for=condition=Ready "pod/$replacement" --timeout=30s >/dev/null
  kc_ready+=($(($(now_ms) - $(ready_at_ms "$replacement"))))
  settle

  # The original: kubectl get every $poll s until the replacement is Ready.
  before=$(pods)
  kubectl delete pod "$(head -n 1 <<<"$before")" --grace-period=0 --wait=false >/dev/null
  replacement=$(new_pod "$before")
  until [ "$(kubectl get pod "$replacement" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = "True" ]; do
    sleep "$poll"
  done
  poll_ready+=($(($(now_ms) - $(ready_at_ms "$replacement"))))
  log "sample $i/$samples done"
done

# stats V... -> "median / max"
stats() {
  local sorted n
  mapfile -t sorted < <(printf '%s\n' "$@" | sort -n)
  n=${#sorted[@]}
  echo "${sorted[$((n / 2))]} / ${sorted[$((n - 1))]}"
}

echo "| ms, median / max of $samples samples | pod-killer (watch) | kubectl (reference) | original method (${poll} s poll) |"
echo "|---|---|---|---|"
echo "| start-up to deletion accepted | $(stats "${pk_start[@]}") | $(stats "${kc_start[@]}") (kubectl delete) | same as kubectl delete |"
echo "| replacement Ready to recorded | $(stats "${pk_ready[@]}") | $(stats "${kc_ready[@]}") (kubectl wait, incl. exit) | $(stats "${poll_ready[@]}") |"
