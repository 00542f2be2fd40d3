#!/usr/bin/env bash
# The lab: a local Lomash Wood cluster whose pods are real processes (docs/lab.md).
#
#   eval "$(scripts/lab.sh up)"     # KUBECONFIG and BASE_URL for this shell
#   scripts/lab.sh status
#   scripts/lab.sh cgroup POD [CONTAINER]
#   scripts/lab.sh down             # everything the lab created goes; twice is harmless
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: scripts/lab.sh up [--no-build] [--oom-kill group|process] [--hpa-sync SECONDS]
       scripts/lab.sh down
       scripts/lab.sh status
       scripts/lab.sh cgroup POD [CONTAINER]

up      builds what the lab needs (unless --no-build), starts the lab in the background,
        applies tests/lab/manifests/ with kubectl, waits until every pod is Ready and
        prints two eval-able lines: export KUBECONFIG=... and export BASE_URL=http://...
        (the api-gateway Service, reachable from this host). Needs root.
          --oom-kill process   cgroup v1 behaviour: an OOM kill ends only the killed
                               process (default group: the whole container, as on v2)
          --hpa-sync SECONDS   the HPA controller's sync period (default 5)
down    stops the lab and removes everything it created (processes, network namespaces,
        veths, routes, nftables tables, cgroups, files); running it twice is harmless.
status  the running lab and its pods.
cgroup  the container's cgroup directories, one "CONTROLLER PATH" line each.
The lab's files live in $CHAOS_LAB_DIR (default /run/chaos-lab/lab.sh).
TXT
}

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(chaos_root)
dir=${CHAOS_LAB_DIR:-/run/chaos-lab/lab.sh}
lab_bin="$root/target/debug/lab"

# The pid of the running lab, if the pid file names a live `lab serve`.
running_pid() {
  local pid
  [ -f "$dir/pid" ] || return 1
  pid=$(cat "$dir/pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "lab serve" || return 1
  printf '%s\n' "$pid"
}

print_exports() {
  local ip
  ip=$(KUBECONFIG="$dir/kubeconfig" kubectl get service api-gateway -n lomash-wood \
    -o 'jsonpath={.spec.clusterIP}')
  [ -n "$ip" ] || die "the api-gateway Service has no ClusterIP (see $dir/lab.log)"
  printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
  printf 'export BASE_URL=%q\n' "http://$ip:3000"
}

up() {
  local build=1 serve_args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --no-build) build=0 ;;
      --oom-kill) [ $# -ge 2 ] || die "--oom-kill needs group or process"; serve_args+=(--oom-kill "$2"); shift ;;
      --hpa-sync) [ $# -ge 2 ] || die "--hpa-sync needs a number of seconds"; serve_args+=(--hpa-sync-seconds "$2"); shift ;;
      *) die "unknown argument '$1' to up (see --help)" ;;
    esac
    shift
  done
  is_root || die "the lab needs root (network namespaces, cgroups, nftables)"
  if running_pid >/dev/null; then
    log "the lab is already up"
    print_exports
    return 0
  fi
  ensure_packages ip:iproute2 nft:nftables redis-server:redis-server redis-cli:redis-tools \
    kubectl:kubernetes-client curl:curl socat:socat
  if [ "$build" -eq 1 ]; then
    log "building the lab (cargo build -p chaos-tests --bins)"
    (cd "$root" && cargo build --quiet -p chaos-tests --bins)
    if [ ! -x "$root/dist/net-partition" ]; then
      log "building the static tools for the chaos-tools image (scripts/build-static.sh)"
      "$root/scripts/build-static.sh" >/dev/null
    fi
  fi
  [ -x "$lab_bin" ] || die "$lab_bin is not built: run without --no-build"
  local started=$SECONDS
  "$lab_bin" sweep >/dev/null
  mkdir -p "$dir"
  chmod 700 "$dir"
  rm -f "$dir/kubeconfig"
  setsid "$lab_bin" serve --kubeconfig-out "$dir/kubeconfig" "${serve_args[@]}" \
    >"$dir/lab.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local _
  for _ in $(seq 100); do
    grep -q '^ready ' "$dir/lab.log" 2>/dev/null && break
    running_pid >/dev/null || { cat "$dir/lab.log" >&2; down; die "the lab did not start"; }
    sleep 0.1
  done
  grep -q '^ready ' "$dir/lab.log" || { cat "$dir/lab.log" >&2; down; die "the lab did not start within 10 s"; }
  export KUBECONFIG="$dir/kubeconfig"
  kubectl apply -f "$root/tests/lab/manifests/" >&2
  local w
  for w in $(kubectl get deployments,statefulsets -n lomash-wood -o name); do
    kubectl rollout status -n lomash-wood "$w" --timeout=90s >/dev/null \
      || { down; die "$w did not become Ready (kubectl describe; $dir/lab.log)"; }
  done
  kubectl wait -n lomash-wood --for=condition=Ready pod --all --timeout=60s >/dev/null \
    || { down; die "not every pod became Ready"; }
  log "lab up: every pod Ready in $((SECONDS - started)) s"
  print_exports
}

down() {
  local pid _
  if pid=$(running_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  if [ -x "$lab_bin" ]; then
    "$lab_bin" sweep >/dev/null
  fi
  rm -rf "$dir"
  rmdir /run/chaos-lab 2>/dev/null || true
  log "lab down"
}

status() {
  [ -x "$lab_bin" ] || die "$lab_bin is not built: run scripts/lab.sh up"
  "$lab_bin" status
  if running_pid >/dev/null; then
    KUBECONFIG="$dir/kubeconfig" kubectl get pods -n lomash-wood
  fi
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  cgroup)
    shift
    if [ $# -lt 1 ] || [ $# -gt 2 ]; then
      die "usage: scripts/lab.sh cgroup POD [CONTAINER]"
    fi
    [ -x "$lab_bin" ] || die "$lab_bin is not built: run scripts/lab.sh up"
    "$lab_bin" cgroup "$@" ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
