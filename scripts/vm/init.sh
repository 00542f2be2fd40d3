#!/bin/bash
# The guest's init (pid 1), run from the payload disk mounted at /vm by the image's stub
# init: sets up the system the suite needs (a cgroup v2 unified hierarchy with the cpu
# and memory controllers delegated to children, loopback up, writable /tmp), runs the
# suite with its output on the serial console, prints the status line scripts/vm-test.sh
# waits for, and powers the machine off. Pid 1 must never exit (the kernel would panic).
set -u

export PATH=/vm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8

say() { printf 'chaos-vm: %s\n' "$*"; }

power_off() {
  sync
  echo o >/proc/sysrq-trigger
  # The power-off is asynchronous: pid 1 waits for it rather than exit.
  while :; do sleep 60; done
}

setup() {
  mountpoint -q /proc || mount -t proc proc /proc || return 1
  mountpoint -q /sys || mount -t sysfs sysfs /sys || return 1
  mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev || return 1
  mkdir -p /dev/pts /dev/shm
  mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
  mount -t tmpfs -o mode=1777 tmpfs /tmp || return 1
  mount -t tmpfs -o mode=0755 tmpfs /run || return 1
  mkdir -p /run/netns
  # The unified hierarchy only, as on the platform's nodes (EKS on Amazon Linux 2023).
  mountpoint -q /sys/fs/cgroup || mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || return 1
  # The root cgroup may not hold processes while its children have controllers:
  # everything moves to a leaf first, then the controllers are delegated.
  mkdir -p /sys/fs/cgroup/init.scope
  local pid
  while read -r pid; do
    echo "$pid" >/sys/fs/cgroup/init.scope/cgroup.procs 2>/dev/null || true
  done </sys/fs/cgroup/cgroup.procs
  echo "+cpu +memory +pids" >/sys/fs/cgroup/cgroup.subtree_control || return 1
  hostname chaos-vm
  ip link set lo up
  echo 1 >/proc/sys/kernel/sysrq
}

say "init started (kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime 2>/dev/null) s)"
if ! setup; then
  say "setting up the guest failed"
  say "suite exit status 125"
  power_off
fi
say "cgroup v2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
say "nft: $(nft --version 2>&1)"
status=0
if [ -n "${chaos_bench:-}" ]; then
  # A benchmark instead of the suite (scripts/vm-test.sh --bench NAME): the sections that
  # need this kernel, with the static binaries of the payload.
  say "bench output begins"
  case "$chaos_bench" in
    latency)
      bash /vm/scripts/bench.sh latency --sections engines --injector /vm/bin/latency-injector \
        </dev/null || status=$?
      ;;
    *) echo "no benchmark '$chaos_bench' in the guest"; status=2 ;;
  esac
  say "bench output ends"
else
  bash /vm/suite.sh "$@" </dev/null || status=$?
fi
say "suite exit status $status"
power_off
