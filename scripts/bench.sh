#!/usr/bin/env bash
# Benchmarks, each measured side by side with the reference tool in one run and printed
# as a Markdown table: scripts/bench.sh NAME [ARGS...] runs scripts/bench/NAME.sh.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(chaos_root)

usage() {
  echo "Usage: scripts/bench.sh NAME [ARGS...]   (NAME --help for its options)"
  echo "Benchmarks:"
  for f in "$root"/scripts/bench/*.sh; do
    [ -e "$f" ] || continue
    printf '  %s\n' "$(basename "$f" .sh)"
  done
}

[ $# -ge 1 ] || { usage; exit 2; }
case "$1" in
  -h|--help) usage; exit 0 ;;
esac
name=$1
shift
script="$root/scripts/bench/$name.sh"
if [[ ! "$name" =~ ^[a-z0-9-]+$ ]] || [ ! -f "$script" ]; then
  die "unknown benchmark '$name' (see scripts/bench.sh --help)"
fi
exec bash "$script" "$@"
