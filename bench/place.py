#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Reads the results of the `place` boot (BENCH_BOOTS=place scripts/bench.sh; bench/guest/bench.sh)
and prints how a mapping's cost depends on where it lands against its buffer, and the
one-page dma_map_benchmark runs in time order (Documentation/bench.rst, "Spells of the
emulated machine").

usage: place.py RESULTS_DIR   (build/bench/results: reads place.txt)
"""
import re
import statistics
import sys
from collections import defaultdict


def fields(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


def quart(xs):
    xs = sorted(xs)
    if not xs:
        return "-"
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return f"n={len(xs)} min={xs[0]:.2f} q1={q[0]:.2f} med={q[1]:.2f} q3={q[2]:.2f} max={xs[-1]:.2f}"


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "build/bench/results"
    place, dmbp = [], []
    for line in open(f"{d}/place.txt"):
        if line.startswith("place "):
            f = fields(line)
            if "ps" in f:
                place.append(f)
            else:
                print("error:", line.strip())
        elif line.startswith("dmbp "):
            dmbp.append(fields(line))
        elif line.startswith(("error", "unavailable")):
            print(line.strip())

    for g in ("1", "16"):
        rows = [f for f in place if f["g"] == g]
        if not rows:
            continue
        print(f"\n== {g} page(s) to-device, ns per map+unmap pair, by implementation")
        for impl in ("kernel", "ours"):
            xs = [int(f["ps"]) / 1000 for f in rows if f["impl"] == impl]
            print(f"  {impl:6} {quart(xs)}")
        ours = [f for f in rows if f["impl"] == "ours"]
        seen = sorted({int(f["seen"]) for f in ours})
        print(f"  ours: distinct bus addresses per loop: {seen}")
        n = int(g)
        for t in (64, 128, 256, 512, 1024):
            # Pages of the buffer and of the mapping that share an entry of a direct-mapped TLB
            # of t entries (distance x mod t, n pages each).
            groups = defaultdict(list)
            for f in ours:
                x = int(f["dist"]) % t
                shared = max(0, n - min(x, t - x)) if n > 1 else int(x == 0)
                groups[shared > 0].append(int(f["ps"]) / 1000)
            print(f"  ours, TLB {t:4}: sharing {quart(groups[True])}")
            print(f"  {'':15} apart   {quart(groups[False])}")
        # The slowest offsets of ours, with their distance.
        worst = sorted(ours, key=lambda f: -int(f["ps"]))[:8]
        print("  ours' slowest: " + ", ".join(
            f"off={f['off']} dist={f['dist']} ({int(f['dist']) % 1024} mod 1024) "
            f"{int(f['ps']) / 1000:.0f} ns" for f in worst))
        by_pair = defaultdict(list)
        for f in ours:
            by_pair[f["pair"]].append(int(f["ps"]) / 1000)
        for p in sorted(by_pair, key=int):
            print(f"  ours pair {p}: {quart(by_pair[p])}")

    if dmbp:
        print("\n== dma_map_benchmark, 1 page, 1 thread, in time order (map+unmap µs)")
        for d in ("1", "0"):
            line = []
            for f in dmbp:
                if f["d"] == d:
                    line.append(f"{f['impl'][0]}{f['pair']}:{float(f['map']) + float(f['unmap']):.1f}")
            print(f"  d={d}: " + " ".join(line))


if __name__ == "__main__":
    main()
