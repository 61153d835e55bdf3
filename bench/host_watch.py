#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""What the host and QEMU did while a benchmark VM ran, to name the cause of a slow run.

    host_watch.py CONSOLE_LOG PREFIX [QMP_SOCKET]

Runs beside one boot of scripts/bench.sh until it is killed or its parent exits, and writes:

PREFIX.host   every 0.25 s: "cpu TIME QEMU_TICKS BUSY_TICKS STOLEN_TICKS ALL_TICKS", the QEMU
              process's user + system time (/proc/PID/stat) and the host's CPU time (/proc/stat;
              busy excludes stolen); after each result line, if QMP_SOCKET is given:
              "jit TIME TB_FLUSHES TB_INVALIDATIONS TLB_FULL TLB_PARTIAL TLB_ELIDED", QEMU's own
              counters (QMP x-query-jit: its translated code thrown away, and its software TLB
              flushed whole or in part, summed over the vCPUs).
PREFIX.times  "TIME LINE" for every "@@B" result line of the console, as it arrives: a run's line
              ends it.

Only the console is polled often (every 50 ms); QEMU is asked for its counters once per result
line, between runs, so that the watch itself stays out of the measurements.
"""
import json
import os
import re
import socket
import sys
import time

SAMPLE_S = 0.25
POLL_S = 0.05
JIT_KEYS = ("TB flush count", "TB invalidate count", "TLB full flushes", "TLB partial flushes",
            "TLB elided flushes")


def qemu_pid(log):
    """The QEMU process writing its serial console to `log`, or None."""
    want = f"file:{log}".encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]).startswith(b"qemu-system") and want in argv:
            return int(d)
    return None


def host_ticks():
    """(busy, stolen, all) ticks of the host, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + idle + iowait + steal


def pid_ticks(pid):
    """User + system ticks of process `pid` (all its threads), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


class Qmp:
    """A QMP connection to QEMU, made when its socket appears."""

    def __init__(self, path):
        self.path = path
        self.f = None

    def _connect(self):
        if not self.path or not os.path.exists(self.path):
            return False
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(self.path)
            f = s.makefile("rw")
            f.readline()  # the greeting
            f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
            f.flush()
            f.readline()
            self.f = f
            return True
        except OSError:
            return False

    def jit(self):
        """QEMU's translation and TLB counters, or None."""
        if self.f is None and not self._connect():
            return None
        try:
            self.f.write(json.dumps({"execute": "x-query-jit"}) + "\n")
            self.f.flush()
            while True:
                line = self.f.readline()
                if not line:
                    raise OSError("QMP closed")
                r = json.loads(line)
                if "return" in r or "error" in r:
                    break
        except (OSError, ValueError):
            self.f = None
            return None
        text = r.get("return", {}).get("human-readable-text", "")
        out = []
        for k in JIT_KEYS:
            m = re.search(re.escape(k) + r"\s+(\d+)", text)
            if not m:
                return None
            out.append(int(m.group(1)))
        return out


def main():
    log, prefix = sys.argv[1], sys.argv[2]
    qmp = Qmp(sys.argv[3] if len(sys.argv) > 3 else None)
    host = open(prefix + ".host", "w", buffering=1)
    times = open(prefix + ".times", "w", buffering=1)
    host.write(f"# clk_tck={os.sysconf('SC_CLK_TCK')} cpus={os.cpu_count()}\n")
    # Ends with the script that started it, if that one is killed before it can stop the watch.
    parent = os.getppid()
    pid = None
    pos = 0
    rest = b""
    next_sample = 0.0
    while os.getppid() == parent:
        now = time.time()
        if pid is None:
            pid = qemu_pid(log)
        try:
            with open(log, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() < pos:  # truncated: QEMU started over
                    pos, rest = 0, b""
                f.seek(pos)
                data = f.read()
                pos += len(data)
        except OSError:
            data = b""
        if data:
            *lines, rest = (rest + data).split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").replace("\r", "")
                at = line.find("@@B ")
                if at < 0:
                    continue
                times.write(f"{now:.6f} {line[at + 4:].strip()}\n")
                j = qmp.jit()
                if j is not None:
                    host.write(f"jit {time.time():.6f} " + " ".join(map(str, j)) + "\n")
        if now >= next_sample:
            q = pid_ticks(pid) if pid is not None else None
            if q is not None:
                busy, steal, total = host_ticks()
                host.write(f"cpu {now:.6f} {q} {busy} {steal} {total}\n")
            next_sample = now + SAMPLE_S
        time.sleep(POLL_S)


if __name__ == "__main__":
    main()
