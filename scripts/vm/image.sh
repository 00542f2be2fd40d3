#!/usr/bin/env bash
# The VM lane's guest image: Debian bookworm (debootstrap --variant=minbase) with the
# distribution kernel and what the guest suite needs, as an ext4 image plus the kernel and
# initrd to boot it with. Cached under target/vm/images/<key>/, where the key is a hash of
# this script, the guest's stub init, the package list and the versions Debian's archive
# offers for those packages (apt-cache, after apt-get update) and the bookworm Release date
# (a stable point release changes it, and with it the dependencies): the image is rebuilt
# when any of them changes, and reused otherwise.
#
# Source it from scripts/vm-test.sh (it defines functions only); vm_image_dir prints the
# directory of a ready image, building it when needed.

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

VM_SUITE=bookworm
VM_MIRROR=http://deb.debian.org/debian
# What the guest suite runs: the kernel (cgroup v2, sch_netem, nf_tables), nft and ip for
# the network tools (and tc for latency-injector's netem engine), jq to read reports,
# socat as a TCP peer, procps for ps/pgrep, redis-server (and with it redis-tools:
# redis-benchmark, redis-cli) for the latency engines' benchmark. util-linux (unshare,
# setpriv, mount) and coreutils come with minbase.
VM_PACKAGES=(linux-image-amd64 iproute2 nftables jq socat procps redis-server)

# The guest's first program: mounts the payload disk (scripts/vm and dist/, attached by
# vm-test.sh as the second virtio disk) and hands over to its init. Kept in the image so
# that the suite can change without a rebuild.
vm_stub_init() {
  cat <<'EOF'
#!/bin/sh
# chaos-tools VM lane: mount the payload disk and run its init (see scripts/vm/init.sh).
echo "chaos-vm: stub init started"
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /vm
if mount -o ro /dev/vdb /vm && [ -x /vm/init.sh ]; then
  exec /vm/init.sh
fi
echo "chaos-vm: no payload disk with init.sh on /dev/vdb"
echo "chaos-vm: suite exit status 125"
echo o >/proc/sysrq-trigger
sleep 60
EOF
}

# The versions the archive offers now, from the host's apt lists: one "package version"
# line per package of VM_PACKAGES, and the Release date of the suite.
vm_package_versions() {
  local pkg version lists
  for pkg in "${VM_PACKAGES[@]}"; do
    version=$(apt-cache madison "$pkg" 2>/dev/null \
      | awk -F'|' -v s=" $VM_SUITE/main" 'index($3, s) { gsub(/ /, "", $2); print $2; exit }')
    printf '%s %s\n' "$pkg" "${version:-unknown}"
  done
  lists=$(find /var/lib/apt/lists -maxdepth 1 -name "*_dists_${VM_SUITE}_InRelease" 2>/dev/null | head -n 1)
  if [ -n "$lists" ]; then
    printf 'release %s\n' "$(sed -n 's/^Date: //p' "$lists" | head -n 1)"
  else
    printf 'release unknown\n'
  fi
}

# The cache key: what decides the image's content.
vm_image_key() {
  {
    cat "${BASH_SOURCE[0]}"
    vm_package_versions
  } | sha256sum | cut -c1-16
}

# vm_refresh_package_lists: apt-get update when the lists are over a day old (the
# ordinary client of Debian's registry; failures leave the old lists in place).
vm_refresh_package_lists() {
  local stamp=/var/lib/apt/lists
  if [ -z "$(find "$stamp" -maxdepth 0 -mmin -1440 2>/dev/null)" ] \
    || ! vm_package_versions | grep -qv ' unknown$'; then
    log "refreshing the apt package lists (apt-get update) to key the guest image"
    apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed: keying on the lists at hand"
  fi
}

# vm_build_image DIR: debootstraps, trims, and writes DIR/{rootfs.ext4,vmlinuz,initrd.img,
# manifest.txt}. Runs as root; the work directory is removed on every exit.
vm_build_image() {
  local out=$1 work rootfs kver include
  work=$(mktemp -d "$(dirname "$out")/build.XXXXXX")
  rootfs="$work/rootfs"
  include=$(IFS=,; echo "${VM_PACKAGES[*]}")
  log "building the guest image: debootstrap --variant=minbase $VM_SUITE + $include"
  if ! debootstrap --variant=minbase --include="$include" "$VM_SUITE" "$rootfs" "$VM_MIRROR" \
    >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    rm -rf "$work"
    return 1
  fi
  kver=$(basename "$(find "$rootfs/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
  # Smaller image, faster mkfs: no package cache, docs or locales, no modules for
  # hardware a virtio guest never has.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale \
    "$rootfs"/usr/share/info
  local m="$rootfs/usr/lib/modules/$kver/kernel"
  rm -rf "$m/sound" "$m/drivers/gpu" "$m/drivers/media" "$m/drivers/net/wireless" \
    "$m/drivers/infiniband" "$m/drivers/staging" "$m/drivers/bluetooth" "$m/drivers/usb" \
    "$m/drivers/scsi" "$m/drivers/hid" "$m/drivers/input" "$m/drivers/iio" "$m/net/wireless" \
    "$m/net/mac80211" "$m/net/bluetooth"
  chroot "$rootfs" depmod "$kver"
  vm_stub_init >"$rootfs/sbin/chaos-vm-init"
  chmod 0755 "$rootfs/sbin/chaos-vm-init"
  echo chaos-vm >"$rootfs/etc/hostname"
  # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
  chroot "$rootfs" dpkg-query -W -f '${Package} ${Version}\n' >"$work/manifest.txt"
  cp "$rootfs/boot/vmlinuz-$kver" "$work/vmlinuz"
  cp "$rootfs/boot/initrd.img-$kver" "$work/initrd.img"
  local size_mb
  size_mb=$(( $(du -sm "$rootfs" | cut -f1) + 400 ))
  mkfs.ext4 -q -F -L chaos-vm -d "$rootfs" "$work/rootfs.ext4" "${size_mb}M" >/dev/null
  rm -rf "$rootfs"
  mv "$work" "$out"
  log "guest image ready: $out (kernel $kver, $(wc -l <"$out/manifest.txt") packages)"
}

# vm_drop_leftover_builds CACHE: a build that was killed (debootstrap mounts /proc and
# /sys inside its root) leaves its mounts behind: unmounts them, deepest first, then
# removes the build directories without crossing into another filesystem.
vm_drop_leftover_builds() {
  local cache=$1 mnt
  awk -v p="$cache/build." 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r \
    | while IFS= read -r mnt; do
      umount "$mnt" 2>/dev/null || umount -l "$mnt" || log "cannot unmount $mnt"
    done
  find "$cache" -mindepth 1 -maxdepth 1 -name 'build.*' -exec rm -rf --one-file-system {} +
}

# vm_image_dir: prints the directory of the image for the current key, building it if
# it is not cached. Older images are removed once a new one is built.
vm_image_dir() {
  local cache key dir
  cache="$(chaos_root)/target/vm/images"
  mkdir -p "$cache"
  vm_drop_leftover_builds "$cache"
  vm_refresh_package_lists
  key=$(vm_image_key)
  dir="$cache/$key"
  if [ -f "$dir/rootfs.ext4" ]; then
    log "guest image cached: $dir"
  else
    vm_build_image "$dir" || return 1
    find "$cache" -mindepth 1 -maxdepth 1 ! -name "$key" -exec rm -rf --one-file-system {} +
  fi
  printf '%s\n' "$dir"
}
