#!/usr/bin/env bash
# Builds the release binaries linked statically (+crt-static on the gnu target) into
# dist/, stripped, so they run in a scratch or distroless debug image. The test
# support binaries (kube-test-server) are not part of the set.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: scripts/build-static.sh [--out DIR]

Builds every chaos-tools binary statically linked and stripped into DIR (default dist/).
TXT
}

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(chaos_root)
out="$root/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

target=$(rustc -vV | sed -n 's/^host: //p')
case "$target" in
  *-linux-gnu) ;;
  *) die "static builds are set up for the gnu Linux target; host is $target" ;;
esac

cd "$root"
# A separate target dir keeps the static flags from invalidating the debug build cache.
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --quiet --workspace --exclude chaos-tests --bins --target "$target" \
  --target-dir "$root/target/static"

mkdir -p "$out"
bins=$(cargo metadata --no-deps --format-version 1 \
  | jq -r '.packages[] | select(.name != "chaos-tests") | .targets[] | select(.kind[] == "bin") | .name')
for bin in $bins; do
  src="$root/target/static/$target/release/$bin"
  [ -f "$src" ] || continue
  install -m 0755 "$src" "$out/$bin"
  strip "$out/$bin" 2>/dev/null || true
  printf '%s\t%s bytes\n' "$out/$bin" "$(stat -c %s "$out/$bin")"
done
