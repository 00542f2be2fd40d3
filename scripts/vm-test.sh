#!/usr/bin/env bash
# The VM lane: the tests that need a second kernel (cgroup v2 with memory.oom.group, a
# second nf_tables) run in a Debian bookworm guest under qemu. Builds (or reuses) the
# guest image (scripts/vm/image.sh), puts the static dist/ set and the guest suite
# (scripts/vm/) on a payload disk, boots the distribution kernel (KVM when a guest
# actually boots there, else TCG), streams the guest's results from its serial console,
# and exits with the guest suite's status.
#
# With --bench NAME it runs a benchmark in the guest instead of the suite (scripts/bench.sh
# NAME with the sections that need the guest's kernel; only `latency`, netem vs proxy),
# prints its Markdown tables and keeps them in target/vm/bench-NAME.md.
#
# Exit status: the suite's (0 all passed, 1 some failed), 1 when the guest did not finish,
# 2 bad arguments, 77 when the lane cannot run here (not root, no qemu or debootstrap, no
# Debian archive): a loud skip with the reason, never a silent pass.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(chaos_root)

accel=auto
timeout_s=1200
kvm_probe_s=20
groups=all
build=1
bench=""

usage() {
  cat <<EOF
Usage: scripts/vm-test.sh [OPTIONS]

Runs the guest suite (scripts/vm/suite.sh) in a qemu VM on Debian's kernel with cgroup v2.
Needs root, qemu-system-x86_64, debootstrap and mkfs.ext4 (installed when missing) and
access to deb.debian.org the first time (the image is cached under target/vm/). The lab
group also needs the lab's binaries (target/debug/lab, lab-init: cargo build -p
chaos-tests) and kubectl on this host; the guest test fails, saying so, without them.

Options:
  --accel auto|kvm|tcg  accelerator; auto tries KVM for ${kvm_probe_s} s, then TCG [${accel}]
  --groups LIST         suite groups to run, comma-separated (cpu,memory,net,netem,lab) [all]
  --bench NAME          run scripts/bench.sh NAME in the guest instead of the suite
                        (latency: the netem engine against the proxy engine)
  --timeout SECONDS     give up on the guest after this long [${timeout_s}]
  --no-build            use dist/ as it is (default: scripts/build-static.sh first)
  -h, --help            this help
Exit status: the suite's; 77 when the lane cannot run here (the reason is printed).
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --accel) accel=${2:?--accel needs a value}; shift 2 ;;
    --groups) groups=${2:?--groups needs a value}; shift 2 ;;
    --bench) bench=${2:?--bench needs a name}; shift 2 ;;
    --timeout) timeout_s=${2:?--timeout needs a value}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$accel" in auto|kvm|tcg) ;; *) die "--accel must be auto, kvm or tcg" ;; esac
[[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a number of seconds"
[[ "$groups" =~ ^[a-z,]+$ ]] || die "--groups must be a comma-separated list of group names"
case "$bench" in ""|latency) ;; *) die "--bench: only 'latency' runs in the guest" ;; esac

skip() {
  printf '\n*** SKIPPED the VM lane (cgroup v2, second kernel): %s ***\n\n' "$*" >&2
  exit 77
}

started=$(date +%s)
is_root || skip "it needs root (debootstrap, mkfs.ext4 -d of a root filesystem)"
ensure_packages qemu-system-x86_64:qemu-system-x86 debootstrap:debootstrap \
  mkfs.ext4:e2fsprogs jq:jq kubectl:kubernetes-client
for tool in qemu-system-x86_64 debootstrap mkfs.ext4; do
  command -v "$tool" >/dev/null || skip "$tool is not installed and could not be installed"
done

# shellcheck source=scripts/vm/image.sh
source "$root/scripts/vm/image.sh"

work="$root/target/vm"
mkdir -p "$work"
qemu_pid=""
cleanup() {
  if [ -n "$qemu_pid" ]; then
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [ "$build" -eq 1 ]; then
  log "building the static binaries (scripts/build-static.sh)"
  "$root/scripts/build-static.sh" >/dev/null
fi
for bin in cpu-hog memory-leak net-partition latency-injector; do
  [ -x "$root/dist/$bin" ] || die "dist/$bin is missing: run scripts/build-static.sh"
done
# The lab group (scripts/vm/tests/lab.sh) runs the lab's kubelet and API server in the
# guest: the debug build of the chaos-tests package (what the host's tests use; host and
# guest are both Debian 12 and the binaries need only libc, libm and libgcc_s).
lab_selected=0
case ",$groups," in ,all,|*,lab,*) lab_selected=1 ;; esac
if [ "$lab_selected" -eq 1 ] && [ "$build" -eq 1 ]; then
  log "building the lab (cargo build -p chaos-tests --bin lab --bin lab-init)"
  (cd "$root" && cargo build --quiet -p chaos-tests --bin lab --bin lab-init)
fi

image_started=$(date +%s)
image=$(vm_image_dir) || skip "the guest image could not be built (debootstrap of $VM_SUITE from $VM_MIRROR failed; see above)"
image_s=$(($(date +%s) - image_started))

# The payload disk: the guest's init and suite, and the binaries, read-only at /vm.
payload="$work/payload"
rm -rf "$payload"
mkdir -p "$payload/bin"
cp -r "$root/scripts/vm/." "$payload/"
rm -f "$payload/image.sh"
# The benchmarks the guest can run (--bench), with the library they source.
mkdir -p "$payload/scripts"
cp -r "$root/scripts/bench.sh" "$root/scripts/lib.sh" "$root/scripts/bench" "$payload/scripts/"
for bin in "$root"/dist/*; do
  if [ -f "$bin" ] && [ -x "$bin" ]; then
    install -m 0755 "$bin" "$payload/bin/"
  fi
done
# The lab's binaries, stripped (a fifth of the debug size: a smaller disk, a faster
# mkfs), and the host's kubectl (a static Go binary), at /vm/lab. Missing ones are
# missing in the guest too, where the lab test fails and says so.
if [ "$lab_selected" -eq 1 ]; then
  mkdir -p "$payload/lab"
  for bin in lab lab-init; do
    if [ -x "$root/target/debug/$bin" ]; then
      strip -o "$payload/lab/$bin" "$root/target/debug/$bin"
    else
      log "target/debug/$bin is not built: the guest's lab test will fail (cargo build -p chaos-tests)"
    fi
  done
  if kubectl=$(command -v kubectl); then
    install -m 0755 "$(readlink -f "$kubectl")" "$payload/lab/kubectl"
  else
    log "kubectl is not installed: the guest's lab test will fail"
  fi
fi
chmod 0755 "$payload/init.sh"
mkfs.ext4 -q -F -L chaos-payload -d "$payload" "$work/payload.ext4" \
  "$(( $(du -sm "$payload" | cut -f1) + 16 ))M" >/dev/null

# boot ACCEL LOG: starts the guest in the background, its serial console into LOG.
boot() {
  local machine=(-accel "$1")
  # shellcheck disable=SC2054 # one qemu option value, commas included
  [ "$1" = tcg ] && machine=(-accel tcg,thread=multi)
  : >"$2"
  qemu-system-x86_64 "${machine[@]}" -m 1536 -smp 2 -display none -no-reboot -nic none \
    -monitor none -serial "file:$2" \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 init=/sbin/chaos-vm-init quiet loglevel=3 panic=-1 chaos_suite=$groups${bench:+ chaos_bench=$bench}" \
    -drive "file=$image/rootfs.ext4,format=raw,if=virtio,snapshot=on" \
    -drive "file=$work/payload.ext4,format=raw,if=virtio,readonly=on" \
    >"$work/qemu.log" 2>&1 &
  qemu_pid=$!
}

# started_within SECONDS LOG: true once the stub init has printed its first line.
started_within() {
  local deadline=$(($(date +%s) + $1))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    grep -q 'chaos-vm: stub init started' "$2" && return 0
    kill -0 "$qemu_pid" 2>/dev/null || return 1
    sleep 0.5
  done
  return 1
}

console="$work/console.log"
used=tcg
if [ "$accel" != tcg ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  boot kvm "$console"
  if started_within "$kvm_probe_s" "$console"; then
    used=kvm
  else
    log "a KVM guest did not reach its init within ${kvm_probe_s} s ($(tr -d '\r' <"$work/qemu.log" | tail -n 1)): falling back to TCG"
    [ "$accel" = kvm ] && die "--accel kvm: the KVM guest does not boot here"
    cleanup
    qemu_pid=""
  fi
elif [ "$accel" = kvm ]; then
  die "--accel kvm: /dev/kvm is not usable"
fi
[ "$used" = tcg ] && boot tcg "$console"
log "guest booting with $used (image $image, built or checked in ${image_s} s)"

# Stream the console until the guest powers off (or the timeout).
tail -n +1 -f --pid="$qemu_pid" "$console" | sed -u -e 's/\r$//' -e '/\x1b/d' &
streamer=$!
deadline=$(($(date +%s) + timeout_s))
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log "the guest did not finish within ${timeout_s} s: stopping it"
    cleanup
    break
  fi
  sleep 1
done
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=""
wait "$streamer" 2>/dev/null || true

status=$(tr -d '\r' <"$console" | sed -n 's/^chaos-vm: suite exit status \([0-9]*\)$/\1/p' | tail -n 1)
summary=$(tr -d '\r' <"$console" | grep -aE '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1 || true)
wall=$(($(date +%s) - started))
if [ -z "$status" ]; then
  log "the guest ended without a suite status (console: $console, qemu: $work/qemu.log)"
  tail -n 5 "$work/qemu.log" >&2 || true
  printf 'VM lane: FAILED, no result (%s s wall, %s)\n' "$wall" "$used" >&2
  exit 1
fi
if [ -n "$bench" ]; then
  tr -d '\r' <"$console" | sed -n '/^chaos-vm: bench output begins$/,/^chaos-vm: bench output ends$/p' \
    | sed '1d;$d' >"$work/bench-$bench.md"
  log "benchmark tables kept in $work/bench-$bench.md"
fi
printf 'VM lane: %s, exit status %s (%s s wall: image %s s, guest on %s; kernel %s)\n' \
  "${summary:-no summary}" "$status" "$wall" "$image_s" "$used" \
  "$(sed -n 's/^linux-image-[0-9].* \(.*\)$/\1/p' "$image/manifest.txt" | head -n 1)" >&2
exit "$status"
