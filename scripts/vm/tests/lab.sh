#!/bin/bash
# The lab (tests/src/lab, docs/lab.md) on cgroup v2, judged by the real kubectl: its
# kubelet writes a container's limits as the kubelet does on v2 (memory.max, cpu.max,
# cpu.weight, memory.oom.group=1), an OOM kill of one process takes the whole container
# (the kernel's group kill, counted in memory.events oom_group_kill), the container
# restarts with lastState.terminated.reason OOMKilled, and the lab leaves nothing behind.
#
# The payload (scripts/vm-test.sh): /vm/lab holds `lab` and `lab-init` (the debug build of
# the chaos-tests package, stripped; glibc-dynamic, they need only libc, libm and
# libgcc_s, which minbase has) and the host's kubectl (a static Go binary); the
# chaos-tools image maps to the static tools of /vm/bin (dist/).

LAB_DIR=/vm/lab
LAB_POD=oom-victim
LAB_NS=vm-lab

# lab_kubectl ARGS...: kubectl against the guest's lab, never for more than 100 s (a hung
# call is a failure with its diagnosis, not a guest that never powers off).
lab_kubectl() { KUBECONFIG=$LAB_STATE/kubeconfig timeout -k 5 100 "$LAB_DIR/kubectl" "$@"; }

# lab_up: starts `lab serve` in the background (LAB_PID) and waits for its ready line.
lab_up() {
  LAB_STATE=$(mktemp -d)
  setsid "$LAB_DIR/lab" serve --kubeconfig-out "$LAB_STATE/kubeconfig" --dist /vm/bin \
    >"$LAB_STATE/lab.log" 2>&1 </dev/null &
  LAB_PID=$!
  local deadline=$((SECONDS + 120))
  until grep -q '^ready ' "$LAB_STATE/lab.log"; do
    kill -0 "$LAB_PID" 2>/dev/null || { cat "$LAB_STATE/lab.log"; fail "lab serve ended before it was ready"; }
    [ "$SECONDS" -lt "$deadline" ] || { cat "$LAB_STATE/lab.log"; fail "lab serve not ready within 120 s"; }
    pause 0.1
  done
  LAB_ID=$(sed -n 's/^ready .* lab \(l[0-9]*\)$/\1/p' "$LAB_STATE/lab.log")
  [ -n "$LAB_ID" ] || fail "no lab id in the ready line: $(head -n 1 "$LAB_STATE/lab.log")"
}

# lab_down: SIGTERM (as scripts/lab.sh down), waits up to 30 s for the lab to end.
# Sets LAB_DOWN_STATUS. Idempotent.
lab_down() {
  [ -n "${LAB_PID:-}" ] || return 0
  kill -TERM "$LAB_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$LAB_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do pause 0.1; done
  kill -KILL "$LAB_PID" 2>/dev/null || true
  LAB_DOWN_STATUS=0
  wait "$LAB_PID" 2>/dev/null || LAB_DOWN_STATUS=$?
  LAB_PID=""
}

# lab_leftovers ID: what lab ID left behind, one line each (nothing when clean): cgroups,
# network namespaces, links, routes into the lab's ranges, the Service table, processes,
# files under /run/chaos-lab (the slot locks only with ANY=any: `lab sweep` removes idle
# ones, as scripts/lab.sh down does).
lab_leftovers() {
  local id=$1 any=${2:-} procs
  find "$CG" -maxdepth 1 -name "chaos-lab-$id" -printf 'cgroup %p\n'
  ip netns list | awk -v p="chaos-$id-" 'index($1, p) == 1 { print "netns " $1 }'
  ip -o link show | awk -F': ' -v s="$id" 'index($2, s) { print "link " $2 }'
  ip route show | awk '/^(198\.51\.100|203\.0\.113)\./ { print "route " $0 }'
  nft list tables | awk '$NF == "chaos-lab" { print "nft " $0 }'
  procs=$(ps -eo pid=,args=)
  grep -E "$LAB_DIR/lab|/run/chaos-lab/|sleep 100000|memory-leak" <<<"$procs" | sed 's/^/process /' || true
  if [ -n "$any" ]; then
    find /run/chaos-lab -mindepth 1 -maxdepth 1 -printf 'file %p\n' 2>/dev/null || true
  else
    find /run/chaos-lab -mindepth 1 -maxdepth 1 ! -name 'slot-*.lock' -printf 'file %p\n' 2>/dev/null || true
  fi
}

# The victim: two processes beside PID 1, limits as the platform's small services have.
lab_pod_manifest() {
  cat <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $LAB_NS}
---
apiVersion: v1
kind: Pod
metadata: {name: $LAB_POD, namespace: $LAB_NS}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ghcr.io/lomash-wood/chaos-tools:lab
    command: ["sh", "-c", "sleep 100000 & sleep 100000 & wait"]
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: 500m, memory: 96Mi}
EOF
}

# lab_diagnose: what kubectl and the lab's log say, for a failure's output.
lab_diagnose() {
  echo "--- pod status:"
  lab_kubectl get pod "$LAB_POD" -n "$LAB_NS" -o 'jsonpath={.status}' 2>&1 || true
  echo
  echo "--- events:"
  lab_kubectl get events -n "$LAB_NS" -o 'jsonpath={range .items[*]}{.reason}: {.message}{"\n"}{end}' 2>&1 || true
  echo "--- kubectl logs (this instance, then the previous one):"
  lab_kubectl logs -n "$LAB_NS" "$LAB_POD" 2>&1 | tail -n 10 || true
  lab_kubectl logs -n "$LAB_NS" "$LAB_POD" --previous 2>&1 | tail -n 10 || true
  echo "--- lab.log (last 30 lines):"
  tail -n 30 "$LAB_STATE/lab.log"
}

# pod_field JSONPATH: one field of the victim's status.
pod_field() { lab_kubectl get pod "$LAB_POD" -n "$LAB_NS" -o "jsonpath=$1"; }

# comm_of PID: the process's name, or "gone".
comm_of() { cat "/proc/$1/comm" 2>/dev/null || echo gone; }

test_lab_kubelet_on_cgroup_v2_oom_kills_the_whole_container() {
  local f
  for f in lab lab-init kubectl; do
    [ -x "$LAB_DIR/$f" ] || fail "$LAB_DIR/$f is not in the payload (scripts/vm-test.sh puts the lab's binaries and the host's kubectl there)"
  done
  trap 'lab_down; cleanup_test' EXIT
  local t0=$SECONDS
  lab_up
  lab_pod_manifest | lab_kubectl apply -f - >/dev/null
  lab_kubectl wait -n "$LAB_NS" --for=condition=Ready "pod/$LAB_POD" --timeout=90s >/dev/null \
    || { lab_diagnose; fail "the pod did not become Ready"; }
  note "lab $LAB_ID up and the pod Ready in $((SECONDS - t0)) s"

  # The container's cgroup, as `lab cgroup` names it, and the limits read back.
  local line cg
  line=$(timeout 60 "$LAB_DIR/lab" cgroup "$LAB_NS/$LAB_POD" app)
  check "one unified (v2) cgroup: '$line'" [ "${line%% *}" = unified ]
  cg=${line#unified }
  check "the container's cgroup is under the lab's" [ "$cg" = "$CG/chaos-lab-$LAB_ID/$(pod_field '{.metadata.uid}')/app" ]
  local max cpu weight group
  max=$(cat "$cg/memory.max") cpu=$(cat "$cg/cpu.max") weight=$(cat "$cg/cpu.weight")
  group=$(cat "$cg/memory.oom.group")
  note "limits read back from $cg: memory.max $max, cpu.max '$cpu', cpu.weight $weight, memory.oom.group $group"
  check "memory.max = 96Mi" [ "$max" = 100663296 ]
  check "cpu.max from limits.cpu 500m" [ "$cpu" = "50000 100000" ]
  check "cpu.weight from requests.cpu 250m (shares 256)" [ "$weight" = 10 ]
  check "memory.oom.group = 1" [ "$group" = 1 ]
  local inside
  inside=$(lab_kubectl exec -n "$LAB_NS" "$LAB_POD" -- cat /sys/fs/cgroup/memory.max)
  check "the container sees its own cgroup as / with the limit ($inside)" [ "$inside" = 100663296 ]

  # Every process of the container is in its cgroup, and nothing else is (the shims
  # live in the pod's _shims leaf: v2 refuses processes in the pod's own cgroup).
  local before=() pid comms=""
  mapfile -t before <"$cg/cgroup.procs"
  for pid in "${before[@]}"; do comms+="$(comm_of "$pid") "; done
  note "container processes before: ${before[*]} ($comms)"
  check "sh and its two sleeps, nothing else (no lab-init shim)" [ "$(tr ' ' '\n' <<<"$comms" | sort | xargs)" = "sh sleep sleep" ]
  check "the shims are in the pod's _shims leaf" grep -q . "$(dirname "$cg")/_shims/cgroup.procs"

  # One process leaks past the limit: the kernel kills the whole group.
  local restarts0 kills0 groups0 exec_status=0
  restarts0=$(pod_field '{.status.containerStatuses[0].restartCount}')
  kills0=$(memory_event "$cg" oom_kill) groups0=$(memory_event "$cg" oom_group_kill)
  lab_kubectl exec -n "$LAB_NS" "$LAB_POD" -- memory-leak --limit-mb 256 --rate-mb-per-second 50 \
    --watch-oom -y --output json >/tmp/lab-leak.json 2>/tmp/lab-leak.err || exec_status=$?
  lab_kubectl wait -n "$LAB_NS" "pod/$LAB_POD" --timeout=90s \
    --for=jsonpath='{.status.containerStatuses[0].restartCount}'=$((restarts0 + 1)) >/dev/null \
    || { lab_diagnose; fail "the container did not restart"; }
  lab_kubectl wait -n "$LAB_NS" --for=condition=Ready "pod/$LAB_POD" --timeout=90s >/dev/null \
    || { lab_diagnose; fail "the pod was not Ready again after the restart"; }
  local reason code restarts kills1 groups1 survivors=""
  reason=$(pod_field '{.status.containerStatuses[0].lastState.terminated.reason}')
  code=$(pod_field '{.status.containerStatuses[0].lastState.terminated.exitCode}')
  restarts=$(pod_field '{.status.containerStatuses[0].restartCount}')
  kills1=$(memory_event "$cg" oom_kill) groups1=$(memory_event "$cg" oom_group_kill)
  for pid in "${before[@]}"; do
    [ "$(comm_of "$pid")" = gone ] || survivors+="$pid "
  done
  note "kubectl exec memory-leak: exit $exec_status ($(tail -n 1 /tmp/lab-leak.err));" \
    "kubectl: restartCount $restarts0 -> $restarts, lastState.terminated $reason exit $code;" \
    "memory.events oom_kill $kills0 -> $kills1, oom_group_kill $groups0 -> $groups1"
  check "kubectl exec ended with the SIGKILL's 137" [ "$exec_status" -eq 137 ]
  check "lastState.terminated.reason OOMKilled" [ "$reason" = OOMKilled ]
  check "lastState.terminated.exitCode 137" [ "$code" = 137 ]
  check "restartCount + 1" [ "$restarts" -eq $((restarts0 + 1)) ]
  check "the kernel killed the group (oom_group_kill)" [ "$groups1" -gt "$groups0" ]
  check "every killed process counted (oom_kill +4 or more: sh, 2 sleeps, memory-leak)" [ "$kills1" -ge $((kills0 + 4)) ]
  check "no process of the first instance survived: $survivors" [ -z "$survivors" ]
  check "an OOMKilling Event" grep -q OOMKilling <<<"$(lab_kubectl get events -n "$LAB_NS" -o 'jsonpath={.items[*].reason}')"

  # Torn down: nothing of the lab is left by its own teardown, and nothing at all once
  # `lab sweep` has dropped the idle slot locks (scripts/lab.sh down: SIGTERM, sweep).
  local id=$LAB_ID left swept
  lab_down
  left=$(lab_leftovers "$id")
  timeout 60 "$LAB_DIR/lab" sweep >/dev/null || fail "lab sweep failed or hung"
  swept=$(lab_leftovers "$id" any)
  note "lab down (exit $LAB_DOWN_STATUS), leftovers: ${left:-none}; after lab sweep: ${swept:-none};" \
    "$((SECONDS - t0)) s in all"
  check "the lab exited cleanly on SIGTERM" [ "$LAB_DOWN_STATUS" -eq 0 ]
  check "nothing left by the lab's own teardown: $left" [ -z "$left" ]
  check "nothing left after lab sweep: $swept" [ -z "$swept" ]
}
