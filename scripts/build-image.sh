#!/usr/bin/env bash
# Builds the chaos-tools debug image as an OCI image archive, without a container engine:
# the static tools from dist/ plus what the network tools call (`nft`, `ss`, `ip` and `tc`, with the
# shared libraries they need, taken from this machine's Debian packages), nothing else.
# umoci assembles the image, skopeo writes the archive. See docs/debug-image.md.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(chaos_root)

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
tag="$version"
name="lomash-wood/chaos-tools"
dist="$root/dist"
out=""
rebuild=0
tools=(cpu-hog memory-leak net-partition latency-injector pod-killer)
helpers=(nft ss ip tc)

usage() {
  cat <<TXT
Usage: scripts/build-image.sh [--out FILE] [--tag TAG] [--dist DIR] [--rebuild]

Builds the debug image ${name}:TAG as an OCI archive (default dist/chaos-tools-TAG.oci.tar):
the static binaries of DIR (default dist/, built with scripts/build-static.sh when
missing) in /usr/local/bin, and ${helpers[*]} with their shared libraries. Needs umoci,
skopeo and the Debian packages nftables and iproute2 (installed when run as root).

  --out FILE   where to write the archive
  --tag TAG    image tag [${tag}]
  --dist DIR   the static binaries [dist/]
  --rebuild    run scripts/build-static.sh even if DIR has every binary
  -h, --help   this help
TXT
}

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a file}; shift 2 ;;
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --dist) dist=${2:?--dist needs a directory}; shift 2 ;;
    --rebuild) rebuild=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "--tag '$tag' is not a valid image tag"
[ -n "$out" ] || out="$dist/chaos-tools-$tag.oci.tar"

ensure_packages umoci:umoci skopeo:skopeo nft:nftables ss:iproute2 ip:iproute2 tc:iproute2 readelf:binutils
for cmd in umoci skopeo ldd readelf "${helpers[@]}"; do
  command -v "$cmd" >/dev/null || die "$cmd is not installed"
done

incomplete=0
for tool in "${tools[@]}"; do [ -x "$dist/$tool" ] || incomplete=1; done
if [ "$rebuild" -eq 1 ] || [ "$incomplete" -eq 1 ]; then
  log "building the static binaries (scripts/build-static.sh --out $dist)"
  "$root/scripts/build-static.sh" --out "$dist" >/dev/null
fi

work=$(mktemp -d)
remove_work() { rm -rf "$work"; }
on_exit remove_work
rootfs="$work/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/sbin" "$rootfs/etc" "$rootfs/tmp" \
  "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/run"
chmod 1777 "$rootfs/tmp"

for tool in "${tools[@]}"; do
  # The tools must stay static: a dynamic build would need a libc in the image it does
  # not get, and would fail only once deployed.
  if readelf -l "$dist/$tool" | grep -q 'Requesting program interpreter'; then
    die "$dist/$tool is dynamically linked: build the static set with scripts/build-static.sh"
  fi
  install -m 0755 "$dist/$tool" "$rootfs/usr/local/bin/$tool"
done

# copy_with_libs PROGRAM: the program at its own path, and every library ldd names (the
# dynamic loader included) at theirs.
copy_with_libs() {
  local program lib
  program=$(command -v "$1")
  program=$(readlink -f "$program")
  install -D -m 0755 "$program" "$rootfs/usr/sbin/$1"
  while read -r lib; do
    [ -n "$lib" ] || continue
    [ -e "$rootfs$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done < <(ldd "$program" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }')
}
for helper in "${helpers[@]}"; do
  copy_with_libs "$helper"
done

# Enough of /etc for names and users; the kubelet mounts resolv.conf and hosts.
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
# nft reads its own configuration directory for `include`s; an empty one is enough.
mkdir -p "$rootfs/etc/nftables"

layout="$work/layout"
bundle="$work/bundle"
log "assembling ${name}:${tag} with umoci"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$bundle" >/dev/null
cp -a "$rootfs/." "$bundle/rootfs/"
umoci repack --image "$layout:$tag" "$bundle"
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
umoci config --image "$layout:$tag" \
  --config.user 0:0 \
  --config.env "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --config.workingdir / \
  --config.cmd /usr/local/bin/net-partition --config.cmd --help \
  --config.label "org.opencontainers.image.title=chaos-tools" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.revision=$revision" \
  --config.label "org.opencontainers.image.description=chaos-tools debug image: the static tools, nft, ss, ip and tc" \
  --architecture amd64 --os linux
umoci gc --layout "$layout"

mkdir -p "$(dirname "$out")"
rm -f "$out"
skopeo copy --quiet "oci:$layout:$tag" "oci-archive:$out:$name:$tag"
size=$(du -h "$out" | cut -f1)
log "wrote $out ($size): ${name}:${tag} with ${tools[*]} ${helpers[*]}"
printf '%s\n' "$out"
