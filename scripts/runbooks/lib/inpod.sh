# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# In-pod tools (EXP-005, EXP-006): a static chaos-tools binary run INSIDE a pod's container
# (so that the container's cgroup pays, as the HPA and the OOM killer see it). The tools'
# remote mode (docs/remote.md) does the same by itself; these runbooks have not moved onto
# it yet (docs/runbooks.md says why), so these functions do it with kubectl:
#
#   copy:   tar of chaos-TOOL-RUNID/TOOL | kubectl exec -i POD -c C -- tar -x -f - -C /tmp
#           (what `kubectl cp` does; /tmp is the platform's writable emptyDir)
#   run:    kubectl exec POD -c C -- /tmp/chaos-TOOL-RUNID/TOOL ARG... --run-id RUNID-NAME
#           --output json --log-format json --yes, in a session of its own (a Ctrl-C to the
#           terminal's process group must not end the exec that carries the run's report);
#           report in faults/NAME.json, logs in faults/NAME-pod.log
#   stop:   kubectl exec ... TOOL --stop RUNID-NAME (the in-pod run reverts and reports),
#           even when the exec has ended (an in-pod run outlives a client that went away)
#   remove: kubectl exec ... rm -rf /tmp/chaos-TOOL-RUNID
#   verify: no TOOL among the container's processes, no copy left
#
# One in-pod fault per runbook. The run's own --duration (given by the runbook) is the
# backstop should the runbook be killed outright.

INPOD_NAME=""
INPOD_TOOL=""
INPOD_BIN=""
INPOD_POD=""
INPOD_CONTAINER=""
INPOD_RUN=""
INPOD_DIR=""
INPOD_PID=""

# rb_inpod_tool NAME TOOL BINARY: declares the in-pod fault's tool; BINARY empty: the
# static build, $CHAOS_DIST/TOOL else dist/TOOL of this checkout.
rb_inpod_tool() {
  INPOD_NAME=$1
  INPOD_TOOL=$2
  INPOD_BIN=${3:-${CHAOS_DIST:-$RB_REPO/dist}/$2}
}

rb__inpod_ids() {
  INPOD_RUN="${RB_RUN_ID:-RUNID}-$INPOD_NAME"
  INPOD_DIR="chaos-$INPOD_TOOL-$INPOD_RUN"
}

# rb_inpod_pick APP: the first Running pod labelled app=APP, by name (the seed's
# `kubectl get pod -l app=... -o name | head -1`); empty when none.
rb_inpod_pick() {
  rb_kubectl get pods -n "$RB_NAMESPACE" -l "app=$1" --field-selector=status.phase=Running \
    -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' | LC_ALL=C sort | head -n 1
}

# rb_inpod_container POD: the pod's default-container annotation, else its first container.
rb_inpod_container() {
  local c
  c=$(rb_kubectl get pod "$1" -n "$RB_NAMESPACE" -o 'jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/default-container}') || return 1
  [ -n "$c" ] || c=$(rb_kubectl get pod "$1" -n "$RB_NAMESPACE" -o 'jsonpath={.spec.containers[0].name}') || return 1
  printf '%s\n' "$c"
}

# rb_inpod_check_binary FLAG: the binary exists and is statically linked (a dynamically
# linked one names its loader in .interp, within its first page); exit 2 otherwise.
rb_inpod_check_binary() {
  if ! [ -f "$INPOD_BIN" ] || ! [ -x "$INPOD_BIN" ]; then
    rb_fail 2 "no $INPOD_TOOL at $INPOD_BIN: build the static tools (scripts/build-static.sh) or give $1"
  fi
  if head -c 4096 "$INPOD_BIN" | LC_ALL=C grep -aq -e '/ld-linux' -e '/ld-musl'; then
    rb_fail 2 "$INPOD_BIN is dynamically linked and may not run in the pod: use the static build (scripts/build-static.sh, dist/$INPOD_TOOL)"
  fi
}

rb_inpod_exec() {
  rb_kubectl exec -n "$RB_NAMESPACE" "$INPOD_POD" -c "$INPOD_CONTAINER" -- "$@"
}

# rb_inpod_argv ARG...: the in-pod command line, in INPOD_ARGV.
rb_inpod_argv() {
  rb__inpod_ids
  INPOD_ARGV=("/tmp/$INPOD_DIR/$INPOD_TOOL" "$@" --run-id "$INPOD_RUN" --output json --log-format json --yes)
}

# rb_inpod_dry_run POD CONTAINER ARG...: the copy and the run, for --dry-run.
rb_inpod_dry_run() {
  local pod=${1:-POD} container=${2:-CONTAINER}
  shift 2
  rb_inpod_argv "$@"
  printf '  in-pod fault: tar of %s as %s/%s | %s\n' "$INPOD_BIN" "$INPOD_DIR" "$INPOD_TOOL" \
    "$(rb_show kubectl exec -i -n "$RB_NAMESPACE" "$pod" -c "$container" -- tar -x -f - -C /tmp)"
  printf '  then: %s\n' "$(rb_show kubectl exec -n "$RB_NAMESPACE" "$pod" -c "$container" -- "${INPOD_ARGV[@]}")"
}

# rb_inpod_start POD CONTAINER READY_ERE ARG...: copies the tool into the pod, starts it
# with ARG..., and returns once its log matches READY_ERE (at most 30 s; 1 when it ended
# or never said so).
rb_inpod_start() {
  local stage="$RB_DIR/faults/stage" ready=$3 tries=0
  INPOD_POD=$1
  INPOD_CONTAINER=$2
  shift 3
  rb_inpod_argv "$@"
  mkdir -p "$stage/$INPOD_DIR"
  cp "$INPOD_BIN" "$stage/$INPOD_DIR/$INPOD_TOOL"
  tar -C "$stage" -cf - "$INPOD_DIR" |
    rb_kubectl exec -i -n "$RB_NAMESPACE" "$INPOD_POD" -c "$INPOD_CONTAINER" -- tar -x -f - -C /tmp ||
    {
      echo "cannot copy $INPOD_TOOL into $INPOD_POD"
      return 1
    }
  rm -rf "$stage"
  setsid kubectl ${RB_CONTEXT:+--context "$RB_CONTEXT"} exec -n "$RB_NAMESPACE" "$INPOD_POD" -c "$INPOD_CONTAINER" -- "${INPOD_ARGV[@]}" \
    >"$RB_DIR/faults/$INPOD_NAME.json" 2>"$RB_DIR/faults/$INPOD_NAME-pod.log" </dev/null &
  INPOD_PID=$!
  until grep -Eq -- "$ready" "$RB_DIR/faults/$INPOD_NAME-pod.log"; do
    if ! kill -0 "$INPOD_PID" 2>/dev/null || [ "$tries" -ge 300 ]; then
      echo "$INPOD_TOOL did not start in $INPOD_POD (faults/$INPOD_NAME-pod.log)"
      return 1
    fi
    sleep 0.1
    tries=$((tries + 1))
  done
}

# rb_inpod_running: the exec carrying the in-pod run has not ended.
rb_inpod_running() {
  [ -n "$INPOD_PID" ] && kill -0 "$INPOD_PID" 2>/dev/null
}

rb__inpod_pod_exists() {
  rb_kubectl get pod "$INPOD_POD" -n "$RB_NAMESPACE" -o name >/dev/null 2>&1
}

# rb_inpod_revert: stops the in-pod run, waits for its exec (at most 30 s, then ends the
# client), removes the copy. A pod that is gone took the run with it.
rb_inpod_revert() {
  local tries=0
  rm -rf "$RB_DIR/faults/stage"
  [ -n "$INPOD_POD" ] || return 0
  if [ -n "$INPOD_PID" ] && rb__inpod_pod_exists; then
    rb_inpod_exec "/tmp/$INPOD_DIR/$INPOD_TOOL" --stop "$INPOD_RUN" ||
      echo "$INPOD_TOOL --stop $INPOD_RUN in $INPOD_POD: not running (or failed)"
  fi
  while rb_inpod_running && [ "$tries" -lt 300 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  if rb_inpod_running; then
    echo "the exec of $INPOD_TOOL in $INPOD_POD did not end: stopping it"
    kill "$INPOD_PID" 2>/dev/null || true
  fi
  [ -z "$INPOD_PID" ] || wait "$INPOD_PID" 2>/dev/null || true
  # A container the fault killed (OOM) is restarting: its /tmp (an emptyDir) keeps the
  # copy, removed once it runs again (at most 60 s).
  tries=0
  while rb__inpod_pod_exists && ! rb_inpod_exec rm -rf "/tmp/$INPOD_DIR"; do
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || {
      echo "cannot remove /tmp/$INPOD_DIR from $INPOD_POD"
      return 1
    }
    sleep 1
  done
}

# rb_inpod_verify [report]: no copy and no TOOL process left in the container; with
# `report`, the in-pod run's report also says it reverted (when it was started, in a pod
# still there).
rb_inpod_verify() {
  [ -n "$INPOD_POD" ] || return 0
  rb__inpod_pod_exists || return 0
  # Both answers must come from the container: an exec that fails proves nothing.
  local copy comms
  # shellcheck disable=SC2016  # $1 is the in-pod shell's argument, on purpose
  copy=$(rb_inpod_exec sh -c 'if [ -e "$1" ]; then echo present; else echo absent; fi' sh "/tmp/$INPOD_DIR") || copy=""
  [ "$copy" = absent ] || {
    echo "/tmp/$INPOD_DIR in $INPOD_POD: ${copy:-the container did not answer}"
    return 1
  }
  comms=$(rb_inpod_exec sh -c 'cat /proc/[0-9]*/comm 2>/dev/null; echo listed') || comms=""
  grep -qx listed <<<"$comms" || {
    echo "cannot list the processes of $INPOD_POD"
    return 1
  }
  if grep -qx -- "$INPOD_TOOL" <<<"$comms"; then
    echo "a $INPOD_TOOL process still runs in $INPOD_POD"
    return 1
  fi
  [ "${1:-}" = report ] && [ -n "$INPOD_PID" ] || return 0
  local status
  status=$(rb_verdict get "$RB_DIR/faults/$INPOD_NAME.json" /revert/status 2>/dev/null) || status=""
  [ "$status" = reverted ] || {
    echo "the in-pod report (faults/$INPOD_NAME.json) says revert '${status:-missing}'"
    return 1
  }
}
