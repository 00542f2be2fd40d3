#!/usr/bin/env python3
"""Watches lab containers from the host for scripts/bench/remote.sh (outside the tools).

    remote-watch.py active|gone T0_NS TIMEOUT_S COMM POD=CGROUP_DIR...

CGROUP_DIR is the container's cpuacct cgroup directory (scripts/lab.sh cgroup POD).
active: a pod is active once a process named COMM is in its cgroup and the cgroup has
        used at least 5 ms of CPU since that process was first seen (the tool burning,
        not just started: the copy's tar and the exec'd process's start-up do not count).
gone:   a pod is gone once no process named COMM is left in its cgroup.
Prints "POD MS" per pod (ms since T0_NS, CLOCK_REALTIME as `date +%s%N`), exit 0 when
every pod got there, 1 with the pods that did not within TIMEOUT_S.
copies: until SIGTERM (or TIMEOUT_S), counts the files named COMM written into each
        container's /tmp (or a directory below it), as distinct inodes, through inotify
        on the container's /tmp seen from the host and a scan of it every 50 ms and at
        the end (inotify alone missed a copy now and then on the lab; a copy lives for
        the whole run, so the scan cannot miss it): the copies of the binary. Prints
        "POD N". Says
        "watching" on stderr once every watch is in place.
"""
import ctypes
import os
import select
import signal
import struct
import sys
import time

BURN_NS = 5_000_000
POLL_S = 0.005


def procs_named(cgroup, comm):
    found = False
    try:
        with open(f"{cgroup}/cgroup.procs") as f:
            pids = f.read().split()
    except OSError:
        return False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == comm:
                    found = True
                    break
        except OSError:
            continue
    return found


IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_ISDIR = 0x8, 0x80, 0x100, 0x40000000
EVENT = struct.Struct("iIII")


class Copies:
    """Copies of COMM into a container's /tmp, seen through inotify from the host on
    /proc/PID/root/tmp (the container's mount namespace): one per distinct inode of a
    file named COMM in /tmp or a directory below it (tar unlinks and creates anew)."""

    def __init__(self, libc, fd, comm):
        self.libc, self.fd, self.comm = libc, fd, comm
        self.dirs = {}  # wd -> (pod, path)
        self.inodes = {}  # pod -> set of inodes
        self.tops = {}  # pod -> its /tmp seen from the host

    def watch(self, pod, path, top=False):
        self.inodes.setdefault(pod, set())
        mask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            if top:
                sys.exit(f"cannot watch {path} ({pod}): errno {ctypes.get_errno()}")
            print(f"cannot watch {path} ({pod}): errno {ctypes.get_errno()}", file=sys.stderr)
            return
        if top:
            self.tops[pod] = path
        self.dirs[wd] = (pod, path)
        # What was created before the watch was in place (tar is fast).
        for name in os.listdir(path):
            self.seen(pod, os.path.join(path, name))

    def seen(self, pod, path):
        try:
            st = os.lstat(path)
        except OSError:
            return
        if os.path.basename(path) == self.comm and not os.path.isdir(path):
            self.inodes[pod].add(st.st_ino)

    def rescan(self):
        """Files named COMM still in place when the watch ends: one whose events were
        missed (a directory watched late) is counted all the same."""
        for pod, path in list(self.tops.items()):
            try:
                names = os.listdir(path)
            except OSError:
                continue
            for name in names:
                sub = os.path.join(path, name)
                self.seen(pod, sub)
                if os.path.isdir(sub) and not os.path.islink(sub):
                    try:
                        for inner in os.listdir(sub):
                            self.seen(pod, os.path.join(sub, inner))
                    except OSError:
                        continue

    def read(self):
        data = os.read(self.fd, 65536)
        offset = 0
        while offset < len(data):
            wd, mask, _, length = EVENT.unpack_from(data, offset)
            name = data[offset + EVENT.size:offset + EVENT.size + length].rstrip(b"\0")
            offset += EVENT.size + length
            if wd not in self.dirs:
                continue
            pod, parent = self.dirs[wd]
            path = os.path.join(parent, os.fsdecode(name))
            if mask & IN_ISDIR:
                self.watch(pod, path)
            else:
                self.seen(pod, path)


def container_pid(cgroup):
    """A process of the cgroup inside the container's mount namespace (the lab's
    launcher can sit in the cgroup in the host's: its /tmp is the host's)."""
    host = os.readlink("/proc/self/ns/mnt")
    with open(f"{cgroup}/cgroup.procs") as f:
        pids = f.read().split()
    candidates = []
    for pid in pids:
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") == host:
                continue
            with open(f"/proc/{pid}/stat") as f:
                started = int(f.read().rsplit(")", 1)[1].split()[19])
        except (OSError, IndexError, ValueError):
            continue
        candidates.append((started, pid))
    if not candidates:
        sys.exit(f"no process of {cgroup} in a mount namespace of its own")
    # The oldest: the container's main process, not an exec'd one about to exit
    # (a watch through a process that is gone fails).
    return min(candidates)[1]


def count_copies(pods, timeout, comm):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        sys.exit(f"inotify_init1 failed: errno {ctypes.get_errno()}")
    copies = Copies(libc, fd, comm)
    for pod, cgroup in pods.items():
        copies.watch(pod, f"/proc/{container_pid(cgroup)}/root/tmp", top=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("watching", file=sys.stderr, flush=True)
    deadline = time.time() + timeout
    while not stop and time.time() < deadline:
        try:
            ready, _, _ = select.select([fd], [], [], 0.05)
        except InterruptedError:
            continue
        if ready:
            copies.read()
        copies.rescan()
    while select.select([fd], [], [], 0)[0]:
        copies.read()
    copies.rescan()
    for pod, inodes in copies.inodes.items():
        print(f"{pod} {len(inodes)}")


def usage(cgroup):
    with open(f"{cgroup}/cpuacct.usage") as f:
        return int(f.read())


def main():
    mode, t0, timeout, comm = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    pods = dict(arg.split("=", 1) for arg in sys.argv[5:])
    if mode == "copies":
        count_copies(pods, timeout, comm)
        return
    base = {}
    done = {}
    deadline = time.time() + timeout
    while len(done) < len(pods) and time.time() < deadline:
        for pod, cgroup in pods.items():
            if pod in done:
                continue
            present = procs_named(cgroup, comm)
            if mode == "gone":
                if not present:
                    done[pod] = time.time_ns()
            elif present:
                now = usage(cgroup)
                base.setdefault(pod, now)
                if now - base[pod] >= BURN_NS:
                    done[pod] = time.time_ns()
        time.sleep(POLL_S)
    for pod, at in done.items():
        print(f"{pod} {(at - t0) / 1e6:.0f}")
    missing = [pod for pod in pods if pod not in done]
    if missing:
        print(f"not {mode} within {timeout:.0f} s: {' '.join(missing)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
