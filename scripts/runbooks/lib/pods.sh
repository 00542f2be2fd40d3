# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# One pod as the target of a remote tool (EXP-005, EXP-006). The pod is chosen in
# preflight as the seed does (`kubectl get pod -l app=APP -o name | head -1`: the first
# Running pod by name) and given to the tool as `--pod pod/NAME`: the tool's remote mode
# (docs/remote.md) copies its static binary into the pod's container, runs it there (the
# container's cgroup pays, as the HPA and the OOM killer see it), stops it on `TOOL --stop
# RUNID`, removes the copy, and reports per pod (targets[].details: the pod's own report,
# memory-leak's OOM observation).

RB_FAULT_BINS=()

# rb_first_pod APP: the first Running pod labelled app=APP, by name; empty when none.
rb_first_pod() {
  rb_kubectl get pods -n "$RB_NAMESPACE" -l "app=$1" --field-selector=status.phase=Running \
    -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' | LC_ALL=C sort | head -n 1
}

# rb_pod_container POD: the container a remote tool picks by default: the pod's
# default-container annotation, else its first container.
rb_pod_container() {
  local c
  c=$(rb_kubectl get pod "$1" -n "$RB_NAMESPACE" -o 'jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/default-container}') || return 1
  [ -n "$c" ] || c=$(rb_kubectl get pod "$1" -n "$RB_NAMESPACE" -o 'jsonpath={.spec.containers[0].name}') || return 1
  printf '%s\n' "$c"
}

# rb_fault_pod NAME POD: the tool fault NAME (declared with `--pod pod/POD` as a
# placeholder) targets pod POD; called in preflight, before the tools' dry runs.
rb_fault_pod() {
  local i j
  i=$(rb__fault_index "$1")
  local -n _rb_pod_argv="RB_FAULT_ARGV_$i"
  for j in "${!_rb_pod_argv[@]}"; do
    if [ "${_rb_pod_argv[$j]}" = --pod ]; then
      _rb_pod_argv[j + 1]="pod/$2"
      return 0
    fi
  done
  rb_fail 2 "internal: fault '$1' has no --pod"
}

# rb_fault_binary NAME PATH: run this binary for tool fault NAME instead of the one found
# on PATH, CHAOS_BIN_DIR, target/ or dist/ (empty PATH: no change). A statically linked
# one copies itself into the pod; else the tool copies $CHAOS_DIST/TOOL or dist/TOOL.
rb_fault_binary() {
  local i
  i=$(rb__fault_index "$1")
  RB_FAULT_BINS[i]=$2
}

# rb__fault_bin I: RB_FAULT_PATHS[I], the binary of tool fault I: rb_fault_binary's, else
# the one rb_bin finds; exit 2 when there is none.
rb__fault_bin() {
  local i=$1 path
  path=${RB_FAULT_BINS[$1]:-}
  if [ -z "$path" ]; then
    path=$(rb_bin "${RB_FAULT_TOOLS[$i]}") || rb_fail 2 "${RB_FAULT_TOOLS[$i]} not found (PATH, CHAOS_BIN_DIR, target/, dist/)"
  elif [ ! -f "$path" ] || [ ! -x "$path" ]; then
    rb_fail 2 "${RB_FAULT_TOOLS[$i]} at $path is not an executable file"
  fi
  RB_FAULT_PATHS[i]=$path
}

# rb_fault_applied NAME: true once tool fault NAME logged its fault applied in a pod.
rb_fault_applied() {
  [ -n "$RB_DIR" ] && grep -q 'fault applied in pod' "$RB_DIR/faults/$1.log" 2>/dev/null
}

# rb_pod_clean NAME POD CONTAINER: nothing of tool fault NAME left in the container: no
# process of the tool's name, not its copy /tmp/chaos-TOOL-RUNID-NAME (the remote default
# --remote-dir); a pod that is gone took everything with it. Both answers must come from
# the container: an exec that fails proves nothing.
rb_pod_clean() {
  local i tool copy pod=$2 container=$3 answer comms
  i=$(rb__fault_index "$1")
  tool=${RB_FAULT_TOOLS[$i]}
  copy=/tmp/chaos-$tool-$(rb__fault_run_id "$i")
  rb_kubectl get pod "$pod" -n "$RB_NAMESPACE" -o name >/dev/null 2>&1 || return 0
  # shellcheck disable=SC2016  # $1 is the in-pod shell's argument, on purpose
  answer=$(rb_kubectl exec -n "$RB_NAMESPACE" "$pod" -c "$container" -- sh -c 'if [ -e "$1" ]; then echo present; else echo absent; fi' sh "$copy") || answer=""
  [ "$answer" = absent ] || {
    echo "$copy in $pod: ${answer:-the container did not answer}"
    return 1
  }
  comms=$(rb_kubectl exec -n "$RB_NAMESPACE" "$pod" -c "$container" -- sh -c 'cat /proc/[0-9]*/comm 2>/dev/null; echo listed') || comms=""
  grep -qx listed <<<"$comms" || {
    echo "cannot list the processes of $pod"
    return 1
  }
  if grep -qx -- "$tool" <<<"$comms"; then
    echo "a $tool process still runs in $pod"
    return 1
  fi
  echo "no $tool process and no $copy left in $pod/$container"
}
