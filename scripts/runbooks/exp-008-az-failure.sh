#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2317  # functions the library calls by name
# EXP-008: AZ failure simulation with AWS Fault Injection Service (docs/runbooks.md#exp-008).
#
# The experiment template (fis-az-failure.json: every subnet of one AZ loses its network,
# the RDS cluster fails over, a CloudWatch alarm stops it) is rendered with this run's
# values, created and started with the `aws` CLI (argument vectors only), polled until it
# ends, stopped on abort or Ctrl-C, and its template deleted. Meanwhile k6 loads the
# products and the Stripe webhook endpoint, RDS events are read for the failover, and
# kubectl watches the pods leave the zone.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rb_experiment EXP-008 "AZ failure simulation (AWS FIS)" \
  "If one Availability Zone becomes unavailable, RDS Multi-AZ failover completes within 120 seconds, and EKS workloads are rescheduled across the remaining AZs with no more than 90 seconds of elevated error rates."
rb_option --az AZ "" "the Availability Zone to fail, e.g. eu-west-2a (required)"
rb_option --vpc-id VPC_ID "" "the VPC whose subnets in --az lose their network (required)"
rb_option --db-cluster-arn DB_CLUSTER_ARN "" "the RDS cluster that fails over (required; its region is the experiment's)"
rb_option --role-arn ROLE_ARN "" "the IAM role AWS FIS acts as (required)"
rb_option --stop-alarm-arn STOP_ALARM_ARN "" "the CloudWatch alarm that stops the experiment (required)"
rb_option --template TEMPLATE "$RB_LIB_DIR/fis-az-failure.json" "the experiment template (placeholders @AZ@, @VPC_ID@, ...)"
rb_option --aws AWS_CLI aws "the AWS CLI program"
rb_option --poll POLL 5 "seconds between polls of FIS, RDS events and pods" seconds
rb_option --failover-within FAILOVER_WITHIN 120 "pass: RDS failover completed within S seconds of the start" seconds
rb_option --reschedule-within RESCHEDULE_WITHIN 180 "pass: every pod Ready outside --az within S seconds" seconds
rb_option --spike-max-seconds SPIKE_SECONDS 90 "pass: error rate above the baseline band for less than S seconds" seconds
rb_defaults baseline=120 fault=300 recovery=300 vus=10
rb_parse_args "$@"
rb_uses_kube
rb_destructive

# ---- Flags that need each other -------------------------------------------------------
REGION=REGION
ACCOUNT=ACCOUNT
DB_CLUSTER=CLUSTER
if [ "$RB_HELP" -eq 0 ]; then
  arn='arn:aws[a-z-]*'
  [[ $AZ =~ ^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$ ]] || rb_fail 2 "--az must be an Availability Zone such as eu-west-2a, not '$AZ'"
  [[ $VPC_ID =~ ^vpc-[0-9a-f]{8,17}$ ]] || rb_fail 2 "--vpc-id must be a VPC id such as vpc-0abc12345678def90, not '$VPC_ID'"
  [[ $DB_CLUSTER_ARN =~ ^$arn:rds:([a-z0-9-]+):([0-9]{12}):cluster:([a-z][a-z0-9-]{0,62})$ ]] ||
    rb_fail 2 "--db-cluster-arn must be an RDS cluster ARN (arn:aws:rds:REGION:ACCOUNT:cluster:NAME), not '$DB_CLUSTER_ARN'"
  REGION=${BASH_REMATCH[1]}
  ACCOUNT=${BASH_REMATCH[2]}
  DB_CLUSTER=${BASH_REMATCH[3]}
  [[ $ROLE_ARN =~ ^$arn:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$ ]] || rb_fail 2 "--role-arn must be an IAM role ARN, not '$ROLE_ARN'"
  [[ $STOP_ALARM_ARN =~ ^$arn:cloudwatch:[a-z0-9-]+:[0-9]{12}:alarm:[A-Za-z0-9\ +=,.@_:/#-]{1,255}$ ]] ||
    rb_fail 2 "--stop-alarm-arn must be a CloudWatch alarm ARN (no quotes or backslashes in the name), not '$STOP_ALARM_ARN'"
  [ -r "$TEMPLATE" ] || rb_fail 2 "--template $TEMPLATE cannot be read"
  [ -n "${STRIPE_WEBHOOK_SECRET:-}" ] || rb_fail 2 "export STRIPE_WEBHOOK_SECRET (the endpoint's signing secret, whsec_...): unsigned webhook deliveries are refused (400) and would read as a broken endpoint"
  [ "$RB_FAULT_DURATION" -ge 60 ] || rb_log "warning: AWS FIS refuses network disruptions shorter than 60 s (--fault-duration $RB_FAULT_DURATION)"
fi

rb_load products products.js
rb_load webhooks webhooks.js VUS=1 SLEEP=1

FIS_TEMPLATE_ID=""
FIS_EXPERIMENT_ID=""
FIS_STATUS=""
FIS_START_MS=""
FIS_LAST_POLL=0
RDS_DONE=""
PODS_DONE=""
NEXT_RDS_POLL=0
NEXT_POD_POLL=0

# aws ARG...: the AWS CLI in the experiment's region, JSON out.
aws_cli() {
  "$AWS_CLI" "$@" --region "$REGION" --output json
}

# render OUT: the template with this run's values (each checked above: no quote, no
# backslash, so a plain substitution keeps the JSON valid; chaos-verdict then parses it).
render() {
  local text
  text=$(<"$TEMPLATE")
  text=${text//@AZ@/$AZ}
  text=${text//@VPC_ID@/$VPC_ID}
  text=${text//@DB_CLUSTER_ARN@/$DB_CLUSTER_ARN}
  text=${text//@ROLE_ARN@/$ROLE_ARN}
  text=${text//@STOP_ALARM_ARN@/$STOP_ALARM_ARN}
  text=${text//@DURATION_SECONDS@/$RB_FAULT_DURATION}
  text=${text//@RUN_ID@/$RB_RUN_ID}
  [[ ! $text =~ @[A-Z_]+@ ]] || rb_fail 2 "$TEMPLATE: placeholder ${BASH_REMATCH[0]} has no value (known: @AZ@ @VPC_ID@ @DB_CLUSTER_ARN@ @ROLE_ARN@ @STOP_ALARM_ARN@ @DURATION_SECONDS@ @RUN_ID@)"
  printf '%s\n' "$text" >"$1"
  rb_verdict get "$1" "" >/dev/null || rb_fail 2 "$TEMPLATE does not render to JSON (see above)"
}

rb_hook_preflight() {
  command -v "$AWS_CLI" >/dev/null 2>&1 || rb_fail 2 "$AWS_CLI not found: install the AWS CLI v2 or give --aws PATH"
  render "$RB_TMP/fis-template.json"
  local out rc=0 account
  out=$(aws_cli sts get-caller-identity 2>&1) || rc=$?
  [ "$rc" -eq 0 ] || rb_fail 3 "cannot reach AWS (aws sts get-caller-identity, exit $rc): ${out//$'\n'/ }"
  printf '%s\n' "$out" >"$RB_TMP/caller.json"
  account=$(rb_verdict get "$RB_TMP/caller.json" /Account) || rb_fail 3 "aws sts get-caller-identity gave no Account"
  [ "$account" = "$ACCOUNT" ] || rb_fail 2 "the credentials are for account $account, --db-cluster-arn is in $ACCOUNT"
  local nodes
  nodes=$(rb_kubectl get nodes -l "topology.kubernetes.io/zone=$AZ" -o name 2>&1) || rb_fail 3 "cannot list the nodes: ${nodes//$'\n'/ }"
  [ -n "$nodes" ] || rb_fail 2 "no node is labelled topology.kubernetes.io/zone=$AZ: failing it would test nothing (kubectl get nodes -L topology.kubernetes.io/zone)"
  rb_log "AZ $AZ holds $(wc -l <<<"$nodes") node(s); account $account, region $REGION, RDS cluster $DB_CLUSTER"
}

rb_hook_dry_run() {
  printf '    the FIS experiment (rendered template: %s):\n' "$RB_TMP/fis-template.json (removed after the dry run)"
  printf '      %s\n' "$(rb_show "$AWS_CLI" fis create-experiment-template --cli-input-json "file://RUNDIR/fis/template.json" --region "$REGION" --output json)"
  printf '      %s\n' "$(rb_show "$AWS_CLI" fis start-experiment --experiment-template-id TEMPLATE_ID --tags "chaos-run-id=$RB_RUN_ID" --region "$REGION" --output json)"
  printf '      every %s s: %s\n' "$POLL" "$(rb_show "$AWS_CLI" fis get-experiment --id EXPERIMENT_ID --region "$REGION" --output json)"
  printf '      every %s s: %s\n' "$POLL" "$(rb_show "$AWS_CLI" rds describe-events --source-type db-cluster --source-identifier "$DB_CLUSTER" --event-categories failover --start-time START --region "$REGION" --output json)"
  printf '      every %s s: kubectl get nodes -l topology.kubernetes.io/zone=%s; kubectl get pods -n %s\n' "$POLL" "$AZ" "$RB_NAMESPACE"
}

# ---- The fault: the FIS experiment -----------------------------------------------------
# The library calls these in a condition, where `set -e` does not apply: every step that
# can fail says so itself.
fis_apply() {
  mkdir -p "$RB_DIR/fis" || return 1
  render "$RB_DIR/fis/template.json"
  aws_cli fis create-experiment-template --cli-input-json "file://$RB_DIR/fis/template.json" >"$RB_DIR/fis/create.json" || return 1
  FIS_TEMPLATE_ID=$(rb_verdict get "$RB_DIR/fis/create.json" /experimentTemplate/id) || return 1
  rb_log "FIS experiment template $FIS_TEMPLATE_ID created"
  aws_cli fis start-experiment --experiment-template-id "$FIS_TEMPLATE_ID" --tags "chaos-run-id=$RB_RUN_ID" >"$RB_DIR/fis/start.json" || return 1
  FIS_EXPERIMENT_ID=$(rb_verdict get "$RB_DIR/fis/start.json" /experiment/id) || return 1
  local started
  started=$(rb_verdict get "$RB_DIR/fis/start.json" /experiment/startTime 2>/dev/null) || started=""
  FIS_START_MS=$(rb_epoch_ms "$started") || FIS_START_MS=$(rb_now_ms)
  rb_mark fis-started "experiment $FIS_EXPERIMENT_ID from template $FIS_TEMPLATE_ID"
  rb_log "FIS experiment $FIS_EXPERIMENT_ID started"
}

# fis_poll: the experiment's state into fis/state.json and FIS_STATUS.
fis_poll() {
  aws_cli fis get-experiment --id "$FIS_EXPERIMENT_ID" >"$RB_DIR/fis/state.json" || return 1
  FIS_STATUS=$(rb_verdict get "$RB_DIR/fis/state.json" /experiment/state/status)
}

fis_terminal() {
  case $FIS_STATUS in
    completed | stopped | failed | cancelled) return 0 ;;
    *) return 1 ;;
  esac
}

# The end probe: polled every --poll seconds; 0 once FIS says the experiment is over.
fis_ended() {
  [ -n "$FIS_EXPERIMENT_ID" ] || return 1
  local now
  now=$(rb_now_ms)
  [ $((now - FIS_LAST_POLL)) -ge $((POLL * 1000)) ] || return 1
  FIS_LAST_POLL=$now
  fis_poll || return 1
  fis_terminal
}

# The revert: stop the experiment if it still runs (FIS restores the subnets' network),
# wait until it is over, delete the template. The failover itself is not undone.
fis_revert() {
  local tries=0 rc=0
  if [ -n "$FIS_EXPERIMENT_ID" ]; then
    fis_poll || FIS_STATUS=unknown
    if ! fis_terminal; then
      rb_log "stopping FIS experiment $FIS_EXPERIMENT_ID"
      aws_cli fis stop-experiment --id "$FIS_EXPERIMENT_ID" >"$RB_DIR/fis/stop.json" || rc=1
      until fis_terminal || [ "$tries" -ge 120 ]; do
        sleep 0.5
        fis_poll || true
        tries=$((tries + 1))
      done
      fis_terminal || rc=1
    fi
  fi
  if [ -n "$FIS_TEMPLATE_ID" ]; then
    aws_cli fis delete-experiment-template --id "$FIS_TEMPLATE_ID" >"$RB_DIR/fis/delete.json" || rc=1
  fi
  return "$rc"
}

# Removal verified: FIS reports the experiment over (or none was started).
fis_verify() {
  [ -n "$FIS_EXPERIMENT_ID" ] || return 0
  fis_poll && fis_terminal
}

rb_fault_custom fis fis_apply fis_revert \
  "aws fis stop-experiment --id EXPERIMENT_ID --region $REGION (FIS restores the subnets' network), then aws fis delete-experiment-template --id TEMPLATE_ID --region $REGION; the RDS failover is not undone: fail back with aws rds failover-db-cluster --db-cluster-identifier $DB_CLUSTER --target-db-instance-identifier INSTANCE if wanted (the ids are in the run's fis/ directory and its log)" \
  "AWS FIS: create the experiment template ($(basename "$TEMPLATE"): network of ${AZ:-AZ} in ${VPC_ID:-VPC} disrupted, $DB_CLUSTER failed over, stopped by the alarm) and start it, polled until it ends"
rb_fault_ends_when fis fis_ended
rb_fault_verify fis fis_verify

# ---- Observations: RDS failover and pods leaving the zone ------------------------------
rds_poll() {
  [ -z "$RDS_DONE" ] && [ -n "$FIS_START_MS" ] || return 0
  local now date event_ms start
  now=$(rb_now_ms)
  [ "$now" -ge "$NEXT_RDS_POLL" ] || return 0
  NEXT_RDS_POLL=$((now + POLL * 1000))
  start=$(date -u -d "@$((FIS_START_MS / 1000 - 60))" +%Y-%m-%dT%H:%M:%SZ)
  aws_cli rds describe-events --source-type db-cluster --source-identifier "$DB_CLUSTER" \
    --event-categories failover --start-time "$start" >"$RB_DIR/fis/rds-events.json" 2>>"$RB_DIR/faults/fis.log" || return 0
  date=$(rb_verdict find "$RB_DIR/fis/rds-events.json" /Events --contains /Message=completed --get /Date 2>/dev/null) || return 0
  event_ms=$(rb_epoch_ms "$date") || return 0
  RDS_DONE=1
  rb_mark rds-failover "failover completed at $date"
  rb_verdict manifest --out "$RB_DIR/fis/rds-failover.json" "failoverSeconds:json=$(rb_seconds_between "$FIS_START_MS" "$event_ms")" \
    "eventDate=$date" "experimentStartMs:json=$FIS_START_MS"
}

# pods_poll: the first moment every pod of the namespace is Ready on a node outside --az.
pods_poll() {
  [ -z "$PODS_DONE" ] && [ -n "$FIS_START_MS" ] || return 0
  local now nodes rows name node ready phase left=0 total=0
  now=$(rb_now_ms)
  [ "$now" -ge "$NEXT_POD_POLL" ] || return 0
  NEXT_POD_POLL=$((now + POLL * 1000))
  nodes=$(rb_kubectl get nodes -l "topology.kubernetes.io/zone=$AZ" -o 'jsonpath={.items[*].metadata.name}' 2>/dev/null) || return 0
  rows=$(rb_kubectl get pods -n "$RB_NAMESPACE" --no-headers \
    -o 'custom-columns=NAME:.metadata.name,NODE:.spec.nodeName,READY:.status.conditions[?(@.type=="Ready")].status,PHASE:.status.phase' 2>/dev/null) || return 0
  while read -r name node ready phase; do
    if [ -z "$name" ] || [ "$phase" = Succeeded ]; then
      continue
    fi
    total=$((total + 1))
    if [ "$ready" != True ] || [[ " $nodes " == *" $node "* ]]; then
      left=$((left + 1))
    fi
  done <<<"$rows"
  printf '%s pods %s, not yet Ready outside %s: %s\n' "$(rb_now)" "$total" "$AZ" "$left" >>"$RB_DIR/fis/pods.log"
  [ "$total" -gt 0 ] && [ "$left" -eq 0 ] || return 0
  PODS_DONE=1
  rb_mark pods-rescheduled "all $total pods Ready outside $AZ"
  rb_verdict manifest --out "$RB_DIR/fis/pods.json" "rescheduledSeconds:json=$(rb_seconds_between "$FIS_START_MS" "$now")" "pods:json=$total"
}

rb_hook_tick() {
  rds_poll
  pods_poll
}
rb_hook_recovery_tick() {
  rds_poll
  pods_poll
}

# The experiment ran to its end: not stopped by its alarm, not failed.
fis_completed() {
  local status reason
  status=$(rb_verdict get "$RB_DIR/fis/state.json" /experiment/state/status 2>/dev/null) || {
    echo "the experiment's state was never read"
    return 1
  }
  reason=$(rb_verdict get "$RB_DIR/fis/state.json" /experiment/state/reason 2>/dev/null) || reason=""
  echo "FIS experiment $FIS_EXPERIMENT_ID: $status${reason:+ ($reason)}"
  [ "$status" = completed ]
}

rb_check "baseline error rate < 1%" window=baseline metric=error-rate lt=1
rb_check "RDS failover completed within $FAILOVER_WITHIN s" kind=value source=fis/rds-failover.json pointer=/failoverSeconds unit=s le="$FAILOVER_WITHIN"
rb_check "pods rescheduled to healthy AZs within $RESCHEDULE_WITHIN s" kind=value source=fis/pods.json pointer=/rescheduledSeconds unit=s le="$RESCHEDULE_WITHIN"
rb_check "error rate spike < 5%" window=run metric=peak-error-rate lt=5
rb_check "error rate elevated < $SPIKE_SECONDS s" window=run metric=elevated-error-seconds lt="$SPIKE_SECONDS"
rb_check "Stripe webhook endpoint operational throughout" window=fault request=stripe-webhook metric=error-rate lt=1
rb_check_cmd "FIS experiment ran to completion (not stopped by its alarm)" -- fis_completed
rb_main
