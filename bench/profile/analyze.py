#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Names the instruction counts of bench/profile/insn_profile.c.

    analyze.py RESULTS_DIR SYSTEM_MAP

RESULTS_DIR holds profile.txt (the guest's "profile window=N impl=... d=..." and "sym ADDR t NAME
[module]" lines) and profile/win.N (the plugin's windows). Writes RESULTS_DIR/profile.md: for each
direction, the guest instructions per map+unmap pair of the kernel's swiotlb and of ours, split
by function, counted over the whole window (the benchmark's own loop and the idle vCPU
included, the same for both).
"""
import bisect
import re
import sys
from collections import defaultdict
from pathlib import Path

DIRS = {0: "bidirectional", 1: "to-device", 2: "from-device"}


def rust_name(sym):
    """A short name for a v0-mangled Rust symbol (its last path components), else sym."""
    if not sym.startswith("_R"):
        return sym
    idents, i = [], 2
    while i < len(sym):
        m = re.match(r"(\d+)_?", sym[i:])
        if not m:
            i += 1
            continue
        n = int(m.group(1))
        start = i + m.end()
        ident = sym[start:start + n]
        if n and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ident):
            idents.append(ident)
            i = start + n
        else:
            i += m.end()
    # Drop the crate and module names the reader does not need.
    keep = [x for x in idents if x not in ("xen_swiotlb_rs", "kernel", "core")]
    return "::".join(keep[-3:]) or sym


class Symbols:
    def __init__(self, system_map, module_lines):
        entries = []
        for line in Path(system_map).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "tTwW":
                entries.append((int(parts[0], 16), parts[2]))
        for line in module_lines:
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "tTwW":
                entries.append((int(parts[0], 16), "[ours] " + rust_name(parts[2])))
        entries.sort()
        self.addrs = [a for a, _ in entries]
        self.names = [n for _, n in entries]
        self.start = {}
        for a, n in entries:
            self.start.setdefault(n, a)

    def name(self, addr):
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i < 0:
            return "?"
        return self.names[i]


def window(path, syms):
    """Instructions per function, executions of each function's first block, and atomic
    read-modify-write instructions executed."""
    insns, entries = defaultdict(int), defaultdict(int)
    atomics = 0
    for line in Path(path).read_text().splitlines():
        va, n, ex, at = line.split()
        va, n, ex, at = int(va, 16), int(n), int(ex), int(at)
        atomics += at * ex
        if va < 0xffff800000000000:
            name = "(user space)"
        else:
            name = syms.name(va)
        insns[name] += n * ex
        if syms.start.get(name) == va:
            entries[name] += ex
    return insns, entries, atomics


def main():
    rdir, system_map = Path(sys.argv[1]), sys.argv[2]
    lines = (rdir / "profile.txt").read_text().splitlines()
    syms = Symbols(system_map, [l[4:] for l in lines if l.startswith("sym ")])
    runs = []
    for l in lines:
        if l.startswith("profile "):
            a = dict(kv.split("=", 1) for kv in l.split()[1:])
            runs.append(a)
    L = []
    w = L.append
    w("## Instruction profile: one page, one thread (plain QEMU, `swiotlb=force`)")
    w("")
    w("Guest instructions counted by a QEMU plugin (`bench/profile/insn_profile.c`) over one "
      "dma_map_benchmark run per implementation and direction, in a boot of its own, divided by the "
      "number of map+unmap pairs (calls of `dma_map_page_attrs`). Everything the guest ran in the "
      "window is counted (the benchmark's loop, timer interrupts, the idle vCPU), the same for both "
      "implementations; the functions are the ones each block starts in (inlined code counts in "
      "its caller). `[ours]`: xen_swiotlb_rs.")
    w("")
    for d in (0, 1, 2):
        per = {}
        for impl in ("kernel", "ours"):
            run = next((a for a in runs if a["impl"] == impl and int(a["d"]) == d), None)
            f = rdir / "profile" / f"win.{run['window']}" if run else None
            if not f or not f.exists():
                continue
            insns, entries, atomics = window(f, syms)
            pairs = entries.get("dma_map_page_attrs", 0)
            if pairs == 0:
                continue
            per[impl] = (insns, pairs, entries, atomics, run)
        if len(per) < 2:
            w(f"{DIRS[d]}: no profile (a window is missing)")
            w("")
            continue
        tk = sum(per["kernel"][0].values()) / per["kernel"][1]
        to = sum(per["ours"][0].values()) / per["ours"][1]
        w(f"### {DIRS[d]}: {tk:.0f} instructions per pair with the kernel's swiotlb, {to:.0f} with "
          f"ours (×{to / tk:.2f}); {per['kernel'][1]} and {per['ours'][1]} pairs")
        w("")
        w("| per map+unmap pair | kernel's swiotlb | ours |")
        w("| --- | ---: | ---: |")
        w(f"| instructions | {tk:.0f} | {to:.0f} |")
        for what, f in (("function calls (entries)", lambda p: sum(p[2].values()) / p[1]),
                        ("atomic read-modify-writes (lock prefix, xchg)", lambda p: p[3] / p[1]),
                        ("map µs (dma_map_benchmark, this run)", lambda p: float(p[4]["map"])),
                        ("unmap µs", lambda p: float(p[4]["unmap"]))):
            w(f"| {what} | {f(per['kernel']):.1f} | {f(per['ours']):.1f} |")
        w("")
        w("| function (kernel's swiotlb) | instructions per pair | function (ours) | instructions per pair |")
        w("| --- | ---: | --- | ---: |")
        tops = []
        for impl in ("kernel", "ours"):
            insns, pairs = per[impl][:2]
            tops.append(sorted(((v / pairs, k) for k, v in insns.items()), reverse=True)[:14])
        for (vk, kk), (vo, ko) in zip(*tops):
            w(f"| `{kk}` | {vk:.0f} | `{ko}` | {vo:.0f} |")
        w("")
    (rdir / "profile.md").write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
