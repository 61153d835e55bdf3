#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Names the instruction counts of bench/profile/insn_profile.c.

    analyze.py RESULTS_DIR SYSTEM_MAP

RESULTS_DIR holds profile.txt (the guest's "profile window=N impl=... d=..." and "sym ADDR t NAME
[module]" lines) and profile/win.N (the plugin's windows), and likewise profile_odp.txt and
profile_odp/win.N. Writes RESULTS_DIR/profile.md: for each direction, the guest instructions per
map+unmap pair of the kernel's swiotlb and of ours, and for 1 and 16 pages per fault, the
instructions per fault of ours and of the kernel's test_hmm, split by function, counted over the
whole window (the benchmark's own loop and the idle vCPU included).
"""
import bisect
import re
import sys
from collections import defaultdict
from pathlib import Path

DIRS = {0: "bidirectional", 1: "to-device", 2: "from-device"}


def rust_name(sym):
    """A short name for a v0-mangled Rust symbol (its last path components outside generic
    arguments), else sym. A heuristic reading of the grammar: identifiers are <length><text>,
    disambiguators and back references end at '_', a generic path is 'I', its name, its
    arguments, 'E'."""
    if not sym.startswith("_R"):
        return sym
    # The generic path's own name follows its 'I' (I <path> <args> E): kept, its args not.
    idents, i, depth, base = [], 2, 0, False
    while i < len(sym):
        c = sym[i]
        if c.isdigit():
            m = re.match(r"(\d+)_?", sym[i:])
            n, start = int(m.group(1)), i + m.end()
            if depth == 0 or base:
                idents.append(sym[start:start + n])
            base = False
            i = start + n
        elif c in "sB":
            j = sym.find("_", i)
            i = len(sym) if j < 0 else j + 1
        elif c == "I":
            base = depth == 0
            depth += 1
            i += 1
        elif c == "E":
            depth = max(depth - 1, 0)
            i += 1
        else:
            i += 1
    keep = [x for x in idents if x and not x.endswith("_rust") and x not in ("kernel", "core")]
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
            if len(parts) >= 4 and parts[1] in "tTwW":
                module = parts[3].strip("[]")
                tag = "[ours]" if module in ("xen_swiotlb_rs", "odp_umem") else f"[{module}]"
                entries.append((int(parts[0], 16), f"{tag} {rust_name(parts[2])}"))
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


# The copies: the same for both implementations of a bounce (and the benchmark's own memset).
COPY_FUNCTIONS = ("memcpy_orig", "memset_orig")


def window(path, syms):
    """Instructions per function, executions of each function's first block, atomic
    read-modify-write instructions executed, and totals: blocks executed, guest memory accesses,
    and memory accesses outside the copy routines (a window written before the plugin counted
    memory accesses has 0 there)."""
    insns, entries = defaultdict(int), defaultdict(int)
    atomics = 0
    totals = {"blocks": 0, "mem": 0, "mem_nocopy": 0}
    for line in Path(path).read_text().splitlines():
        cols = line.split()
        va, n, ex, at = int(cols[0], 16), int(cols[1]), int(cols[2]), int(cols[3])
        mem = int(cols[4]) if len(cols) > 4 else 0
        atomics += at * ex
        if va < 0xffff800000000000:
            name = "(user space)"
        else:
            name = syms.name(va)
        insns[name] += n * ex
        totals["blocks"] += ex
        totals["mem"] += mem
        if name not in COPY_FUNCTIONS:
            totals["mem_nocopy"] += mem
        if syms.start.get(name) == va:
            entries[name] += ex
    return insns, entries, atomics, totals


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
            insns, entries, atomics, totals = window(f, syms)
            pairs = entries.get("dma_map_page_attrs", 0)
            if pairs == 0:
                continue
            per[impl] = (insns, pairs, entries, atomics, run, totals)
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
                        ("translation blocks executed", lambda p: p[5]["blocks"] / p[1]),
                        ("guest memory accesses (loads, stores)", lambda p: p[5]["mem"] / p[1]),
                        ("of which outside " + " and ".join(COPY_FUNCTIONS),
                         lambda p: p[5]["mem_nocopy"] / p[1]),
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
    odp_section(rdir, system_map, w)
    (rdir / "profile.md").write_text("\n".join(L) + "\n")


def odp_section(rdir, system_map, w):
    """The ODP fault path: ours (odp_umem through the C API) against test_hmm, per fault."""
    f = rdir / "profile_odp.txt"
    if not f.exists():
        return
    lines = f.read_text().splitlines()
    syms = Symbols(system_map, [l[4:] for l in lines if l.startswith("sym ")])
    passes = {}
    for l in lines:
        if l.startswith("profile_odp "):
            a = dict(kv.split("=", 1) for kv in l.split()[1:])
            passes[(a["kind"], int(a["chunk"]))] = a
    w("## Instruction profile: the ODP fault path (plain QEMU, no bounce)")
    w("")
    w("One pass of faults over a resident 16 MiB region per kind and fault size, each a window of "
      "the plugin: `odp` is ours (`odp_umem_map_and_lock`, the bus address of each page, "
      "`odp_umem_unlock`, from the benchmark driver), `hmm` the kernel's test_hmm mirror "
      "(`HMM_DMIRROR_READ` from user space: the syscall and its copy of each page to user space "
      "are counted, which ours does not have). Per fault; `[ours]`: odp_umem.")
    w("")
    for chunk in (1, 16):
        per = {}
        for kind in ("odp", "hmm"):
            a = passes.get((kind, chunk))
            path = rdir / "profile_odp" / f"win.{a['window']}" if a else None
            if not path or not path.exists():
                continue
            insns, entries, atomics, _ = window(path, syms)
            faults = int(a["pages"]) // chunk
            per[kind] = (insns, faults, entries, atomics)
        if len(per) < 2:
            w(f"{chunk} page(s) per fault: no profile (a window is missing)")
            w("")
            continue
        w(f"### {chunk} page{'s' if chunk > 1 else ''} per fault")
        w("")
        w("| per fault | ours (odp_umem) | test_hmm |")
        w("| --- | ---: | ---: |")
        for what, fn in (("instructions", lambda p: sum(p[0].values()) / p[1]),
                         ("function calls (entries)", lambda p: sum(p[2].values()) / p[1]),
                         ("atomic read-modify-writes", lambda p: p[3] / p[1])):
            w(f"| {what} | {fn(per['odp']):.0f} | {fn(per['hmm']):.0f} |")
        w("")
        w("| function (ours) | instructions per fault | function (test_hmm) | instructions per fault |")
        w("| --- | ---: | --- | ---: |")
        tops = [sorted(((v / per[k][1], n) for n, v in per[k][0].items()), reverse=True)[:14]
                for k in ("odp", "hmm")]
        for (vo, ko), (vh, kh) in zip(*tops):
            w(f"| `{ko}` | {vo:.0f} | `{kh}` | {vh:.0f} |")
        w("")


if __name__ == "__main__":
    main()
