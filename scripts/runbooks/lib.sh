#!/usr/bin/env bash
# shellcheck shell=bash source-path=SCRIPTDIR
#
# The shared library of the EXP runbooks (docs/runbooks.md). A runbook sources it,
# declares its experiment, options, load, faults and checks, and hands over to rb_main:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   rb_experiment EXP-001 "Pod failure (single replica)" "Deleting one pod ... no errors"
#   rb_option --target TARGET product-service "the Deployment whose pod is deleted"
#   rb_parse_args "$@"
#   rb_load products products.js
#   rb_fault_tool kill pod-killer --namespace "$RB_NAMESPACE" --deployment "$TARGET"
#   rb_check "baseline p95 < 300 ms" window=baseline metric=p95 lt=300
#   rb_check "< 5 errors in the deletion window" window=fault metric=errors lt=5
#   rb_main
#
# rb_main runs the seed's seven steps, timed and written to the run's timeline:
# hypothesis, preflight (blast radius and safety rules), baseline, injection,
# observation (the abort guard every second), recovery, result (verdict, run directory,
# result log row). A trap reverts every fault on Ctrl-C, SIGTERM and errors, verifies the
# removal, and still writes the verdict and the result log row.
#
# Layout: lib/common.sh (output, values, programs), lib/args.sh (declarations, flags,
# --help), lib/preflight.sh (safety rules, cluster, freeze switch, tool dry-runs),
# lib/load.sh (k6), lib/faults.sh (start, stop, verify), lib/guard.sh (abort guard),
# lib/run.sh (checks, phases, run directory, manifest), lib/result.sh (verdict, result
# log, traps), lib/dryrun.sh (--dry-run), lib/checklist.sh (guided procedures: EXP-009),
# lib/inpod.sh (a tool copied into a pod and run there: EXP-005, EXP-006), lib/redisdown.sh
# (Redis scaled to zero: EXP-003, the game day), lib/podoom.sh (a pod OOM-killed by an
# in-pod memory-leak: EXP-006, the game day), lib/scenario.sh (game-day scenario files),
# lib/debrief.sh (the game day's debrief.md).

set -euo pipefail

RB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RB_REPO=$(cd "$RB_LIB_DIR/../.." && pwd)

# shellcheck source=lib/common.sh
source "$RB_LIB_DIR/lib/common.sh"
# shellcheck source=lib/args.sh
source "$RB_LIB_DIR/lib/args.sh"
# shellcheck source=lib/preflight.sh
source "$RB_LIB_DIR/lib/preflight.sh"
# shellcheck source=lib/load.sh
source "$RB_LIB_DIR/lib/load.sh"
# shellcheck source=lib/faults.sh
source "$RB_LIB_DIR/lib/faults.sh"
# shellcheck source=lib/guard.sh
source "$RB_LIB_DIR/lib/guard.sh"
# shellcheck source=lib/run.sh
source "$RB_LIB_DIR/lib/run.sh"
# shellcheck source=lib/result.sh
source "$RB_LIB_DIR/lib/result.sh"
# shellcheck source=lib/dryrun.sh
source "$RB_LIB_DIR/lib/dryrun.sh"
# shellcheck source=lib/checklist.sh
source "$RB_LIB_DIR/lib/checklist.sh"
# shellcheck source=lib/inpod.sh
source "$RB_LIB_DIR/lib/inpod.sh"
# shellcheck source=lib/redisdown.sh
source "$RB_LIB_DIR/lib/redisdown.sh"
# shellcheck source=lib/podoom.sh
source "$RB_LIB_DIR/lib/podoom.sh"
# shellcheck source=lib/scenario.sh
source "$RB_LIB_DIR/lib/scenario.sh"
# shellcheck source=lib/debrief.sh
source "$RB_LIB_DIR/lib/debrief.sh"
