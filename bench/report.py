#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns the results of scripts/bench.sh into bench/results.md and bench/latency.png.

    report.py RESULTS_DIR RESULTS_MD LATENCY_PNG [PREVIOUS_RESULTS_DIR]

RESULTS_DIR holds one NAME.txt per boot (the guest's "@@B" lines without the prefix),
machine.txt and idle.txt. Only numbers found there are reported. PREVIOUS_RESULTS_DIR, the
same of the run before (scripts/bench.sh keeps it), adds a run-to-run comparison of the ratios.
"""
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

GRANULES = (1, 16, 64)
THREADS = (1, 2)
DIRS = {0: "bidirectional", 1: "to-device", 2: "from-device"}
# The copies a bounce makes per map+unmap: in on map (FROM_DEVICE too, so that a partial device
# write leaves no stale pool data), out on unmap unless TO_DEVICE.
COPIES = {0: 2, 1: 1, 2: 2}
IMPL_NAMES = {
    "direct": "direct (no bounce)",
    "kernel": "kernel swiotlb",
    "ours": "xen_swiotlb_rs",
    "kernel-xen": "kernel swiotlb-xen (dom0)",
    "ours-xen": "xen_swiotlb_rs (dom0)",
}


def configs():
    """Every dma_map_benchmark configuration, in table order: (granule, threads, direction)."""
    for g in GRANULES:
        for t in THREADS:
            for d in DIRS:
                yield g, t, d


def kv(text):
    out = {}
    for tok in text.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


class Results:
    def __init__(self, rdir):
        self.dmb = defaultdict(list)  # (impl, g, t, d) -> [(map, unmap)]
        self.dmb_rep = defaultdict(dict)  # (impl, g, t, d) -> {rep: map + unmap}
        self.big = defaultdict(dict)  # (impl, g, d) -> {rep: (map, unmap)}
        self.bigfail = defaultdict(list)  # (impl, g, d) -> [error]
        self.big_alias = defaultdict(dict)  # (impl, g, d) -> rep -> (aliased maps, maps)
        self.errors = []
        self.floor_runs = defaultdict(list)  # (bytes, threads, cold, call, boot) -> [ns]
        self.alias = defaultdict(list)  # (boot, bytes, offset) -> [ns]
        self.pressure = {}  # (impl, pct) -> dict
        self.odp = []
        self.trace = defaultdict(dict)  # (impl, d, pair) -> {events: (map, unmap)}
        self.unavailable = {}
        # The instruction profile's tables (bench/profile/analyze.py), if that boot ran.
        prof = Path(rdir) / "profile.md"
        self.profile_md = prof.read_text() if prof.exists() else None
        self.info = defaultdict(dict)
        self.boots = {}
        self.logs = defaultdict(list)
        for f in sorted(rdir.glob("*.txt")):
            if f.name in ("machine.txt", "idle.txt"):
                continue
            boot = f.stem
            for line in f.read_text(errors="replace").splitlines():
                self.parse(boot, line.strip())
        # The floor: the fastest of the passes. A floor is a lower bound, and a pass can only be
        # slowed (QEMU's TLB between sizes, the host), never sped up: in the sixth run of
        # 2026-12-01 two of three passes of 256 KiB copies took 1.5 times the third.
        self.floor = {k: min(v) for k, v in self.floor_runs.items()}
        self.machine = {}
        if (rdir / "machine.txt").exists():
            for line in (rdir / "machine.txt").read_text().splitlines():
                k, _, v = line.partition("=")
                # A line of several numeric key=value pairs (kernel_step_s=... build_s=... ...).
                if all("=" in tok for tok in line.split()) and len(line.split()) > 1:
                    self.machine.update(kv(line))
                else:
                    self.machine[k] = v
        idle = rdir / "idle.txt"
        self.idle = idle.read_text().splitlines() if idle.exists() else []
        # What the host did during each boot (scripts/bench.sh, host_watch), if recorded.
        self.host = {}
        for f in sorted(rdir.glob("*.host")):
            h = HostLog(f, f.with_suffix(".times"))
            if h.samples:
                self.host[f.stem] = h

    def parse(self, boot, line):
        kind, _, rest = line.partition(" ")
        if kind == "dmb":
            a = kv(rest)
            try:
                key = (a["impl"], int(a["g"]), int(a["t"]), int(a["d"]))
                self.dmb[key].append((float(a["map"]), float(a["unmap"])))
                self.dmb_rep[key][int(a["rep"])] = float(a["map"]) + float(a["unmap"])
            except (KeyError, ValueError):
                self.errors.append(f"{boot}: unparsed: {line}")
        elif kind in ("big", "bigfail"):
            a = kv(rest)
            try:
                key = (a["impl"], int(a["g"]), int(a["d"]))
                if kind == "big":
                    self.big[key][int(a["rep"])] = (float(a["map"]), float(a["unmap"]))
                    if "aliased" in a and "maps" in a:
                        self.big_alias[key][int(a["rep"])] = (int(a["aliased"]), int(a["maps"]))
                else:
                    self.bigfail[key].append(a.get("error", "?").replace("_", " ").strip())
            except (KeyError, ValueError):
                self.errors.append(f"{boot}: unparsed: {line}")
        elif kind == "trace":
            a = kv(rest)
            try:
                key = (a["impl"], int(a["d"]), int(a["pair"]))
                self.trace[key][int(a["events"])] = (float(a["map"]), float(a["unmap"]))
            except (KeyError, ValueError):
                self.errors.append(f"{boot}: unparsed: {line}")
        elif kind == "alias":
            a = kv(rest)
            if "ns" in a:
                self.alias[(boot, int(a["bytes"]), int(a.get("offset", 0)))].append(float(a["ns"]))
            else:
                self.errors.append(f"{boot}: {line}")
        elif kind == "floor":
            a = kv(rest)
            if "ns" in a:
                key = (int(a["bytes"]), int(a["threads"]), int(a["cold"]), int(a.get("call", 0)), boot)
                self.floor_runs[key].append(float(a["ns"]))
            else:
                self.errors.append(f"{boot}: {line}")
        elif kind == "pressure":
            a = kv(rest)
            if "maps_per_s" in a:
                self.pressure[(a["impl"], int(a["pct"]))] = a
            else:
                self.errors.append(f"{boot}: {line}")
        elif kind == "odp":
            for part in rest.split("#"):
                part = part.strip()
                if part.startswith("odp"):
                    self.odp.append((part.split()[0], kv(part)))
                elif part:
                    self.errors.append(f"{boot}: odp: {part}")
        elif kind == "unavailable":
            a = kv(rest)
            self.unavailable[a.get("impl", "?")] = rest.split("reason=", 1)[-1].strip()
        elif kind == "info":
            self.info[boot].update(kv(rest))
        elif kind == "boot":
            self.boots[boot] = kv(rest)
        elif kind == "error":
            self.errors.append(f"{boot}: {rest}")
        elif kind == "log":
            self.logs[boot].append(rest)

    def med(self, impl, g, t, d):
        """Medians over the repeats: (map, unmap, map+unmap) in microseconds, or None."""
        runs = self.dmb.get((impl, g, t, d))
        if not runs:
            return None
        return (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
            statistics.median(r[0] + r[1] for r in runs),
        )

    def pair_ratios(self, ours, kernel, g, t, d):
        """ours/kernel map+unmap of each pair of passes run in the same boot (same rep number)."""
        o, k = self.dmb_rep.get((ours, g, t, d), {}), self.dmb_rep.get((kernel, g, t, d), {})
        return [o[p] / k[p] for p in sorted(o) if p in k and k[p] > 0]

    def rel_spread(self, impl, g, t, d):
        """The spread of an implementation's repeats: interquartile range / median of map+unmap."""
        xs = list(self.dmb_rep.get((impl, g, t, d), {}).values())
        if len(xs) < 2 or statistics.median(xs) == 0:
            return None
        q1, _, q3 = quartiles(xs)
        return (q3 - q1) / statistics.median(xs)

    def total(self, impl, g, t, d):
        m = self.med(impl, g, t, d)
        return None if m is None else m[2]

    def plain_floor_boot(self):
        """The plain-QEMU boot that measured the floor: the comparison's own (`kernel`) since
        2026-12-01; `direct` in older results."""
        return "kernel" if any(k[4] == "kernel" for k in self.floor) else "direct"

    def floor_us(self, g, t, d, boot=None, call=None):
        """The copies of a map+unmap at memcpy speed (hot buffers), in microseconds: with the
        faster of the two copy routines (call=None: the physical floor), GCC's inline expansion
        (call=0, what swiotlb_bounce runs) or the kernel's memcpy() (call=1, what ours calls)."""
        calls = (0, 1) if call is None else (call,)
        boot = boot or self.plain_floor_boot()
        ns = [self.floor.get((g * 4096, t, 0, c, boot)) for c in calls]
        ns = [x for x in ns if x is not None]
        return None if not ns else COPIES[d] * min(ns) / 1000.0


# A slow run is put down to the host when, during it, this much CPU time was stolen from the
# machine (CPUs' worth), other processes than QEMU ran this much, or QEMU ran less than this share
# of its usual CPU time in the same configuration.
HOST_STEAL_CPUS = 0.10
HOST_OTHER_CPUS = 0.25
HOST_QEMU_SHARE = 0.80
# ... or QEMU flushed its software TLB whole, or invalidated translated code, more than this many
# times as often as in the configuration's usual run (and 10 flushes, 50 blocks more).
JIT_FACTOR = 2
# When a dma_map_benchmark run ends relative to its result line's arrival on the console (the
# tool's exit, the guest's parsing and echo), seconds.
RUN_END_LAG = 0.05
RUN_START_LAG = 0.15


class HostLog:
    """What the host and QEMU did over one boot (bench/host_watch.py). `NAME.host`: "cpu" lines
    (time, QEMU's ticks, the host's busy ticks, stolen ticks, all ticks) and "jit" lines (time,
    QEMU's TB flushes, TB invalidations, full, partial and elided TLB flushes, taken after each
    result line); `NAME.times`: the arrival time of every result line."""

    def __init__(self, host, times):
        self.samples = []
        self.jit = []  # (time, [counters])
        self.clk = 100
        for line in host.read_text().splitlines() if host.exists() else []:
            if line.startswith("#"):
                self.clk = int(kv(line[1:]).get("clk_tck", 100))
                continue
            kind, *f = line.split()
            try:
                if kind == "cpu" and len(f) == 5:
                    self.samples.append((float(f[0]), *(int(x) for x in f[1:])))
                elif kind == "jit" and len(f) == 6:
                    self.jit.append((float(f[0]), [int(x) for x in f[1:]]))
            except ValueError:
                continue
        self.lines = []  # (arrival time, result line)
        for line in times.read_text(errors="replace").splitlines() if times.exists() else []:
            t, _, rest = line.strip().partition(" ")
            try:
                self.lines.append((float(t), rest.strip()))
            except ValueError:
                continue

    def _at(self, t):
        """The counters at time t, interpolated between samples (None outside them)."""
        s = self.samples
        if not s or t < s[0][0] or t > s[-1][0]:
            return None
        lo, hi = 0, len(s) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if s[mid][0] <= t:
                lo = mid
            else:
                hi = mid
        a, b = s[lo], s[hi]
        f = 0.0 if b[0] == a[0] else (t - a[0]) / (b[0] - a[0])
        return [x + f * (y - x) for x, y in zip(a[1:], b[1:])]

    def rates(self, t0, t1):
        """CPUs' worth of time used by QEMU, by other processes, and stolen, in [t0, t1]."""
        a, b = self._at(t0), self._at(t1)
        if a is None or b is None or t1 <= t0:
            return None
        q, busy, st = ((y - x) / self.clk / (t1 - t0) for x, y in zip(a[:3], b[:3]))
        return {"qemu": q, "other": max(0.0, busy - q), "steal": st}

    def jit_between(self, t0, t1):
        """QEMU's counters over [t0, t1], from the samples taken right after the result lines
        that arrived at t0 and t1: {"tb_flush", "tb_inval", "tlb"}, or None."""
        def after(t):
            return next((c for tj, c in self.jit if tj >= t), None)
        a, b = after(t0), after(t1)
        if a is None or b is None or a is b:
            return None
        d = [y - x for x, y in zip(a, b)]
        # A guest's flush of its whole TLB is counted "full" only when every MMU index of the
        # vCPU had entries, "partial" (once per index) otherwise: both are flushes.
        return {"tb_flush": d[0], "tb_inval": d[1], "tlb": d[2] + d[3]}

    def dmb_runs(self, secs):
        """(impl, g, t, d, rep) -> the host's rates during that dma_map_benchmark run, and QEMU's
        counters between the result line before it and its own ("jit", when recorded)."""
        out = {}
        prev_t = None
        for t, line in self.lines:
            kind, _, rest = line.partition(" ")
            last, prev_t = prev_t, t
            if kind != "dmb":
                continue
            a = kv(rest)
            try:
                key = (a["impl"], int(a["g"]), int(a["t"]), int(a["d"]), int(a["rep"]))
            except (KeyError, ValueError):
                continue
            rt = self.rates(t - secs - RUN_START_LAG, t - RUN_END_LAG)
            if rt is not None:
                rt["jit"] = self.jit_between(last, t) if last is not None else None
                out[key] = rt
        return out


def usual_of(runs):
    """The medians over a configuration's runs of QEMU's CPUs and of its counters."""
    u = {"qemu": statistics.median(x["qemu"] for x in runs)}
    jits = [x["jit"] for x in runs if x.get("jit")]
    for k in ("tlb", "tb_inval"):
        u[k] = statistics.median(j[k] for j in jits) if jits else None
    return u


def host_cause(rt, usual):
    """What the host or QEMU did differently during a run: a cause, or None."""
    if rt["steal"] >= HOST_STEAL_CPUS:
        return f"the host: {rt['steal']:.2f} CPUs stolen from the machine"
    if rt["other"] >= HOST_OTHER_CPUS:
        return f"the host: other processes ran {rt['other']:.2f} CPUs"
    if usual["qemu"] and rt["qemu"] < HOST_QEMU_SHARE * usual["qemu"]:
        return f"the host: QEMU ran {rt['qemu'] / usual['qemu']:.0%} of its usual CPU time"
    j = rt.get("jit")
    if j:
        if j["tb_flush"] > 0:
            return f"QEMU threw its translated code away ({j['tb_flush']} TB flushes)"
        if usual["tlb"] is not None and j["tlb"] >= JIT_FACTOR * usual["tlb"] + 10:
            return f"QEMU flushed its software TLB {j['tlb']} times (usually {usual['tlb']:.0f})"
        if usual["tb_inval"] is not None and j["tb_inval"] >= JIT_FACTOR * usual["tb_inval"] + 50:
            return (f"QEMU retranslated code: {j['tb_inval']} blocks invalidated "
                    f"(usually {usual['tb_inval']:.0f})")
    return None


def slow_runs(r, boot):
    """The slow runs (16 and 64 pages, more than 1.8 times the fastest repeat of their
    configuration) of a boot's implementations, with what the host and QEMU did during each: a
    list of (impl, g, t, d, rep, times the fastest, the run's record or None, the
    configuration's usual values, cause or None)."""
    h = r.host.get(boot)
    secs = float(r.machine.get("seconds", 2))
    rates = h.dmb_runs(secs) if h else {}
    impls = {k[0] for k in rates}
    out = []
    for (impl, g, t, d), reps in sorted(r.dmb_rep.items()):
        if g == 1 or impl not in impls or len(reps) < 2:
            continue
        fastest = min(reps.values())
        runs = [rates[(impl, g, t, d, p)] for p in reps if (impl, g, t, d, p) in rates]
        usual = usual_of(runs) if runs else None
        for p, x in sorted(reps.items()):
            if x > 1.8 * fastest:
                rt = rates.get((impl, g, t, d, p))
                cause = host_cause(rt, usual) if rt else None
                out.append((impl, g, t, d, p, x / fastest, rt, usual, cause))
    return out


def write_host(r, w):
    """The host's CPU time and QEMU's counters during the runs, and the slow runs' causes."""
    if not r.host:
        return
    w("## Slow runs: the host and QEMU")
    w("")
    w("What the host and QEMU did while each boot ran (`bench/host_watch.py`): every 0.25 s the "
      "host's CPU time (`/proc/stat`) and the QEMU process's (`/proc/PID/stat`); the arrival time of "
      "each result line on the console, which ends its run; and after each result line QEMU's own "
      "counters (QMP `x-query-jit`): translated code thrown away (TB flushes) or invalidated, and "
      "its software TLB flushed (whole, or some of its MMU indexes: both count). Per dma_map_benchmark run: `QEMU` (all its threads), "
      "`other` (the host's other processes), `stolen` (time the machine's own hypervisor took "
      "away), in CPUs' worth over the run; `TLB flushes`, `TB invalidations`: QEMU's counts since "
      "the result line before. A run is put down to the host when `stolen` ≥ "
      f"{HOST_STEAL_CPUS}, `other` ≥ {HOST_OTHER_CPUS}, or QEMU ran less than "
      f"{HOST_QEMU_SHARE:.0%} of its median over the runs of the same configuration; to QEMU when "
      f"it flushed its translated code, or flushed its TLB or invalidated code more than "
      f"{JIT_FACTOR} times as often as that median run (and 10 flushes, 50 blocks more).")
    w("")
    w("| boot | runs | QEMU CPUs: 1 thread / 2 threads (median) | other CPUs: median (max) | "
      "stolen CPUs: median (max) | TLB flushes per run: median (max) | TB flushes | "
      "runs with a named cause |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    secs = float(r.machine.get("seconds", 2))
    for boot, h in sorted(r.host.items()):
        rates = h.dmb_runs(secs)
        if not rates:
            continue
        q1 = [v["qemu"] for k, v in rates.items() if k[2] == 1]
        q2 = [v["qemu"] for k, v in rates.items() if k[2] == 2]
        oth = [v["other"] for v in rates.values()]
        st = [v["steal"] for v in rates.values()]
        jits = [v["jit"] for v in rates.values() if v.get("jit")]
        tlb = [j["tlb"] for j in jits]
        by_conf = defaultdict(list)
        for k, v in rates.items():
            by_conf[k[:4]].append(v)
        usual = {c: usual_of(v) for c, v in by_conf.items()}
        named = sum(1 for k, v in rates.items() if host_cause(v, usual[k[:4]]))
        w(f"| {boot} | {len(rates)} | {fmt(statistics.median(q1) if q1 else None, 2)} / "
          f"{fmt(statistics.median(q2) if q2 else None, 2)} | {statistics.median(oth):.2f} "
          f"({max(oth):.2f}) | {statistics.median(st):.2f} ({max(st):.2f}) | "
          + (f"{statistics.median(tlb):.0f} ({max(tlb)})" if tlb else "n/a") + " | "
          + (f"{sum(j['tb_flush'] for j in jits)}" if jits else "n/a") + f" | {named} |")
    w("")
    rows = [(b, x) for b in sorted(r.host) for x in slow_runs(r, b)]
    if not rows:
        w("No run of 16 or 64 pages took more than 1.8 times the fastest repeat of its configuration.")
        w("")
        return
    w("The slow runs (16 and 64 pages, more than 1.8 times the fastest repeat of their "
      "configuration), each with the usual value of its configuration in parentheses:")
    w("")
    w("| boot | implementation | granule | threads | direction | pass | × fastest | QEMU CPUs "
      "| other CPUs | stolen CPUs | TLB flushes | TB invalidations | cause |")
    w("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for b, (impl, g, t, d, p, x, rt, usual, cause) in rows:
        head = f"| {b} | {IMPL_NAMES.get(impl, impl)} | {g} | {t} | {DIRS[d]} | {p} | {x:.2f} |"
        if rt is None:
            w(head + " n/a | n/a | n/a | n/a | n/a | not recorded |")
            continue
        j = rt.get("jit")
        jcell = (f" {j['tlb']} ({fmt(usual['tlb'], 0)}) | {j['tb_inval']} "
                 f"({fmt(usual['tb_inval'], 0)}) |") if j else " n/a | n/a |"
        cause = cause or ("none found: QEMU had its usual CPU time"
                          + (" and flushed as usual" if j else ""))
        w(head + f" {rt['qemu']:.2f} ({fmt(usual['qemu'], 2)}) | {rt['other']:.2f} | "
          f"{rt['steal']:.2f} |" + jcell + f" {cause} |")
    w("")


def quartiles(xs):
    """(Q1, median, Q3) of a list (inclusive method: with 5 values, the 2nd and 4th)."""
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def iqr(xs):
    """The median of a list and its interquartile range, as text: "1.02 [0.97–1.10]"."""
    if not xs:
        return "n/a"
    q1, q2, q3 = quartiles(xs)
    return f"{q2:.2f} [{q1:.2f}–{q3:.2f}]"


def median_ci(xs, level=0.95):
    """A distribution-free confidence interval for the median of a list: the order statistics
    (X(k), X(n+1-k)) with the largest k whose coverage, 1 - 2 P(Binomial(n, 1/2) < k), is at
    least `level`, or the whole range when even that falls short (5 values: 1 - 2/32 = 93.75 %).
    Returns (low, high, coverage). The interquartile range describes how the values spread; this
    is how far their median can be from the true one."""
    xs, n = sorted(xs), len(xs)
    k, cov = 1, 1 - 2 * 0.5 ** n
    while k + 1 <= (n + 1) // 2:
        c = 1 - 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
        if c < level:
            break
        k, cov = k + 1, c
    return xs[k - 1], xs[n - k], cov


def ci_text(xs):
    """The interval of median_ci as text: "0.80–0.98"."""
    if not xs:
        return "n/a"
    lo, hi, _ = median_ci(xs)
    return f"{lo:.2f}–{hi:.2f}"


def ci_level(r):
    """The coverage of the intervals this run reports (they all have as many pairs), as text."""
    ns = {len(r.pair_ratios(o, k, *c)) for o, k in (("ours", "kernel"), ("ours-xen", "kernel-xen"))
          for c in configs()} - {0, 1}
    return " or ".join(f"{median_ci([0.0] * n)[2] * 100:.2f} % ({n} pairs)" for n in sorted(ns)) or "n/a"


def judge(xs, goal):
    """A goal "ratio ≤ goal" judged on the confidence interval of the median of the per-pair
    ratios (median_ci): met when the whole interval is at or below it, missed when it is all
    above, else undecided."""
    if not xs:
        return None
    lo, hi, _ = median_ci(xs)
    return "met" if hi <= goal else "missed" if lo > goal else "undecided"


def judge_iqr(xs, goal):
    """The same verdict on the interquartile range, as the runs up to the fifteenth judged."""
    if not xs:
        return None
    q1, _, q3 = quartiles(xs)
    return "met" if q3 <= goal else "missed" if q1 > goal else "undecided"


def spread(xs):
    """The median of a list and its range, as text: "1.02 (0.97–1.10)"."""
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})" if xs else "n/a"


def write_trace(r, w):
    """The trace events' cost: 1 page, 1 thread, the events disabled and enabled in pairs, same boot."""
    impls = sorted({k[0] for k in r.trace})
    if not impls:
        return
    w("## Trace events: their cost at one page (same boot, in pairs)")
    w("")
    w("xen_swiotlb_rs's events (Documentation/tracing.rst) compiled in, as in every build, and "
      "disabled (`off`: the state the main tables are measured in) or all enabled (`on`: every "
      "bounce written to the ring buffer, which nobody reads). dma_map_benchmark, 1 page, 1 thread; "
      "5 pairs per direction, the order within a pair alternating. `on/off`: the median of the "
      "per-pair ratios of map+unmap, with their range; `off/kernel`, `on/kernel`: the medians "
      "against the kernel's implementation in the main table (same boot, other passes).")
    w("")
    w("| implementation | direction | map off | map on | unmap off | unmap on | map+unmap on/off "
      "(range) | off/kernel | on/kernel |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for impl in impls:
        kernel = "kernel-xen" if impl.endswith("-xen") else "kernel"
        for d in DIRS:
            pairs = [v for (i, dd, _), v in sorted(r.trace.items()) if i == impl and dd == d and 0 in v and 1 in v]
            if not pairs:
                continue
            med = {e: (statistics.median(p[e][0] for p in pairs), statistics.median(p[e][1] for p in pairs))
                   for e in (0, 1)}
            q = [(p[1][0] + p[1][1]) / (p[0][0] + p[0][1]) for p in pairs if p[0][0] + p[0][1] > 0]
            k = r.total(kernel, 1, 1, d)
            w(f"| {IMPL_NAMES.get(impl, impl)} | {DIRS[d]} | {fmt(med[0][0], 2)} | {fmt(med[1][0], 2)} | "
              f"{fmt(med[0][1], 2)} | {fmt(med[1][1], 2)} | {spread(q)} ({len(q)} pairs) | "
              f"{fmt(ratio(sum(med[0]), k), 2)} | {fmt(ratio(sum(med[1]), k), 2)} |")
    for impl in impls:
        i = r.info.get("xen" if impl.endswith("-xen") else "kernel", {})
        if "trace_entries" in i:
            w("")
            w(f"{IMPL_NAMES.get(impl, impl)}: the ring buffer ({i.get('trace_buffer_kb', '?')} KiB per CPU) "
              f"held {i['trace_entries']} events after the enabled runs, {i.get('trace_overrun', '?')} "
              "older ones overwritten.")
    w("")


def write_big(r, w):
    """2 MiB mappings in dom0: swiotlb-xen against ours with segment_kb=4096."""
    if not r.big and not r.bigfail:
        return
    i = r.info.get("xen", {})
    w("## 2 MiB mappings in dom0 (granules of 128, 256 and 512 pages)")
    w("")
    pairs = max((len(v) for (im, _, _), v in r.big.items() if im == "ours-xen"), default=0)
    w("The case Qubes OS users report from amdgpu in dom0 (\"swiotlb buffer is full (sz: 2097152 "
      f"bytes)\"). dma_map_benchmark, 1 thread, {pairs} pairs of passes alternating in the dom0 boot: "
      "swiotlb-xen (its largest mapping is 128 slots, 256 KiB) and xen_swiotlb_rs loaded with "
      f"`segment_kb={i.get('ours_2m_segment_kb', '?')}` (read back; "
      f"{i.get('ours_2m_segments', '?')} machine-contiguous segments; map failures counted by it: "
      f"{i.get('ours_2m_map_failures', '?')}). A run fails when one mapping fails "
      "(dma_map_benchmark stops and reports the error). µs, medians of the runs that completed; "
      "`floor`: the copies at memcpy speed in dom0 (the faster routine, hot buffers, the fastest of "
      "its passes).")
    w("")
    w("| granule | direction | swiotlb-xen map+unmap | swiotlb-xen failed runs | xen_swiotlb_rs map+unmap "
      "| xen_swiotlb_rs failed runs | floor | ours/floor (range) |")
    w("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    errs, met = set(), 0
    for g in (128, 256, 512):
        for d in DIRS:
            cells = []
            for impl in ("kernel-xen", "ours-xen"):
                ok = [m + u for m, u in r.big.get((impl, g, d), {}).values()]
                fails = r.bigfail.get((impl, g, d), [])
                errs.update(f"{IMPL_NAMES[impl]}: {e}" for e in fails)
                cells.append(fmt(statistics.median(ok)) if ok else "–")
                cells.append(f"{len(fails)} of {len(fails) + len(ok)}")
            fl = r.floor_us(g, 1, d, boot="xen")
            ours = [m + u for m, u in r.big.get(("ours-xen", g, d), {}).values()]
            q = [x / fl for x in ours] if fl else []
            qs = f"{statistics.median(q):.2f} ({min(q):.2f}–{max(q):.2f})" if q else "n/a"
            met += bool(q) and max(q) <= 1.2
            w(f"| {g} | {DIRS[d]} | " + " | ".join(cells) + f" | {fmt(fl)} | {qs} |")
    w("")
    ofails = sum(len(v) for (i, _, _), v in r.bigfail.items() if i == "ours-xen")
    oruns = ofails + sum(len(v) for (i, _, _), v in r.big.items() if i == "ours-xen")
    w(f"- Goal, 0 failures for ours: {ofails} failed of {oruns} runs; ours ≤ 1.2× the floor in every "
      f"run: {met} of 9 configurations.")
    write_big_alias(r, w)
    for e in sorted(errs):
        w(f"- failed run: `{e}`")
    if errs:
        w("")


BIG_SLOW = 3.0  # a 2 MiB run this many times the floor is in QEMU's slow mode (bench.rst)


def write_big_alias(r, w):
    """Ours' 2 MiB runs against the share of their maps the allocator placed aliasing the buffer."""
    runs = []  # (g, d, ratio to the floor, aliased maps, maps)
    for (impl, g, d), reps in r.big_alias.items():
        fl = r.floor_us(g, 1, d, boot="xen")
        if impl != "ours-xen" or not fl:
            continue
        for rep, (al, n) in reps.items():
            m, u = r.big[(impl, g, d)][rep]
            runs.append((g, d, (m + u) / fl, al, n))
    if not runs:
        return
    def all_aliased(x):
        return x[4] and x[3] == x[4]
    every = [x for x in runs if all_aliased(x)]
    none = [x for x in runs if x[3] == 0]
    slow = [x for x in runs if x[2] > BIG_SLOW]
    w(f"- Placement (xen_swiotlb_rs's `aliased_maps`, read before and after each run): in "
      f"{len(every)} of {len(runs)} runs every map was placed a multiple of 2 MiB from the "
      f"benchmark's buffer (no room that keeps the segment's space avoided it), in {len(none)} "
      f"none. Runs over {BIG_SLOW:g}× the floor (QEMU's slow mode, see \"Slow copies\" in "
      f"Documentation/bench.rst): {len(slow)}, of which "
      f"{sum(1 for x in slow if all_aliased(x))} with every map aliased"
      + ("." if not slow else ": " + ", ".join(
          f"{g} pages {DIRS[d]} {q:.2f}× ({al} of {n} aliased)" for g, d, q, al, n in sorted(slow))
         + "."))


def write_alias(r, w):
    """Hot copies between size-aligned buffers against the destination one page off."""
    if not r.alias:
        return
    w("## Slow copies and alignment")
    w("")
    w("Hot copies with the kernel's `memcpy()` (the floor's `call` routine), 10 pairs of 300 ms passes, "
      "the order alternating: source and destination both aligned to at least the copy's size (as the "
      "benchmark's buffer, a high-order allocation, and a segment of xen_swiotlb_rs's pool are), and the "
      "destination one page off that alignment; 2 MiB copies also 256 KiB and 1 MiB off (QEMU's "
      "software TLB is direct-mapped on the page number, 64 entries at least: Documentation/bench.rst). "
      "`slow`: passes more than 1.8 times the fastest pass of the same boot and size.")
    w("")
    w("| boot | bytes | destination | ns per copy: median (min–max) | slow passes |")
    w("| --- | ---: | --- | ---: | ---: |")
    for (boot, size) in sorted({(b, s) for b, s, _ in r.alias}):
        fastest = min(x for (b, s, _), v in r.alias.items() if b == boot and s == size for x in v)
        for off in sorted({o for b, s, o in r.alias if b == boot and s == size}):
            v = r.alias.get((boot, size, off), [])
            if not v:
                continue
            slow = sum(1 for x in v if x > 1.8 * fastest)
            where = {0: "aligned", 4096: "one page off"}.get(off, f"{off // 1024} KiB off")
            w(f"| {'dom0' if boot == 'xen' else 'plain'} | {size} | {where} | "
              f"{statistics.median(v):.0f} ({min(v):.0f}–{max(v):.0f}) | {slow} of {len(v)} |")
    w("")


def write_repeat(r, prev, w):
    """This run's per-pair ratios against the previous run's: whether each run's median lies within
    the confidence interval of the other's (and, as the runs up to the fifteenth counted, within
    the other's interquartile range)."""
    rows, agree, agree_iqr, n = [], 0, 0, 0
    for env, o, k in (("plain", "ours", "kernel"), ("dom0", "ours-xen", "kernel-xen")):
        for g, t, d in configs():
            a, b = r.pair_ratios(o, k, g, t, d), prev.pair_ratios(o, k, g, t, d)
            if not a or not b:
                continue
            qa, qb = quartiles(a), quartiles(b)
            ca, cb = median_ci(a), median_ci(b)
            ok = ca[0] <= qb[1] <= ca[1] or cb[0] <= qa[1] <= cb[1]
            n += 1
            agree += ok
            agree_iqr += qa[0] <= qb[1] <= qa[2] or qb[0] <= qa[1] <= qb[2]
            rows.append(f"| {env} | {g} | {t} | {DIRS[d]} | {iqr(a)} | {ci_text(a)} | {iqr(b)} | "
                        f"{ci_text(b)} | {'yes' if ok else '**no**'} |")
    if not n:
        return
    w("## Run to run: this run against the previous one")
    w("")
    w(f"The per-pair ratios ours/kernel of this `make bench` and of the one before it on this machine "
      f"({prev.machine.get('date', '?')}): median [interquartile range] and the confidence interval "
      f"of the median ({ci_level(r)}, from the order statistics). `agree`: one run's median lies "
      f"within the other's confidence interval. They agree in **{agree} of {n}** configurations; "
      f"within the other's interquartile range, which describes how the pairs spread rather than "
      f"where their median can be, in {agree_iqr} of {n}.")
    w("")
    w("| boot | granule | threads | direction | this run | interval | previous run | interval | agree |")
    w("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        w(row)
    w("")


def write_md(r, path, png_name, prev=None):
    m = r.machine
    L = []
    w = L.append
    w("# `make bench`: xen_swiotlb_rs against the kernel's bounce buffering")
    w("")
    w(f"Generated by `scripts/bench.sh` (`bench/report.py`) on {m.get('date', '?')}. "
      "Documentation/bench.rst explains what is measured and how to read it.")
    w("")
    w("## Machine and run")
    w("")
    w("| item | value |")
    w("| --- | --- |")
    w(f"| host CPU | {m.get('host_cpu', '?')}, {m.get('host_cores', '?')} cores, {m.get('host_mem', '?')} |")
    w(f"| host OS | {m.get('host_os', '?')} |")
    w(f"| QEMU | {m.get('qemu', '?')}, TCG (no KVM); plain: `-smp 2 -accel tcg,thread=multi -cpu max -m 5G`; "
      "Xen: `-smp 2 -accel tcg,thread=single -cpu qemu64 -m 2G`, dom0_mem=768M |")
    w(f"| Xen | {m.get('xen', '?')} (hypervisor {r.info.get('xen', {}).get('xen', '?')}) |")
    guest = r.info.get("direct", {})
    w(f"| guest kernel | {guest.get('kernel', '?')} (Debian linux-source-6.12 {m.get('kernel_pkg', '?')}), "
      f"{guest.get('cpus', '?')} vCPUs; config: tinyconfig + `kconfig/*.config` + "
      f"`kconfig/bench/production.config` (no DMA-API debug, lockdep, atomic-sleep debug, kmemleak, "
      f"SLUB debug, sched debug; {m.get('kernel_opt', '?')} as Debian's kernels), .config sha256 "
      f"{m.get('kernel_config_sha', '?')}; the kernel's `swiotlb_bounce()` copies with "
      f"{m.get('swiotlb_copy', '?')} |")
    w(f"| runs | dma_map_benchmark `-s {m.get('seconds', '?')}` per run; the kernel's implementation and "
      f"ours in the same boot, {m.get('repeats', '?')} pairs of passes over all configurations, the "
      "two runs of a configuration back to back, the order alternating from configuration to configuration and from pair to pair; medians reported, ratios as the median of the per-pair "
      "ratios with their interquartile range |")
    swl = r.info.get("kernel", {}).get("swiotlb_nslabs", "?")
    ours = r.info.get("kernel", {})
    w(f"| pool sizes | kernel swiotlb {swl} slots of 2 KiB (`swiotlb=N,force`); xen_swiotlb_rs "
      f"{ours.get('ours_nslabs', '?')} slots ({ours.get('ours_pool_bytes', '?')} bytes, `pool_mb`) |")
    # idle.txt: one line per boot attempt; the last attempt of each boot is the one reported.
    last = {}
    for line in r.idle:
        last[line.split()[0]] = kv(line)
    distorted = [f"{b} ({a.get('overlap_s')} s)" for b, a in last.items() if a.get("overlap_s", "0") != "0"]
    idle = "; ".join(r.idle) if r.idle else "?"
    if not r.idle:
        verdict = "unknown (no record)"
    elif distorted:
        verdict = ("**no**: another `qemu-system` ran during " + ", ".join(distorted)
                   + "; those timings are distorted")
    else:
        verdict = "yes: no other `qemu-system` process ran before or during any reported boot"
    w(f"| machine otherwise idle | {verdict} (per attempt: waited before the boot, load average, seconds "
      f"with another VM running: {idle}) |")
    boots = ", ".join(f"{b} {v.get('seconds', '?')} s" for b, v in sorted(r.boots.items()))
    waited = sum(int(kv(line).get("waited_s", 0)) for line in r.idle)
    try:
        total, build = int(m["total_s"]), int(m["build_s"])
        boots_s = sum(int(v["seconds"]) for v in r.boots.values())
        # Boots run again because another VM ran: every attempt but the last of a boot.
        retried = len(r.idle) - len({line.split()[0] for line in r.idle if line.split()})
        rest = total - build - waited - boots_s
        w(f"| wall time | reported boots: {boots}; building (cached kernel): {build} s; the whole "
          f"`make bench` took {total} s, of which {waited} s waiting for other VMs and about "
          f"{max(rest, 0)} s " + (f"in {retried} boot(s) discarded because another VM ran and "
                                  if retried else "")
          + f"between the boots; on an idle machine it would have taken about "
          f"{total - waited - (rest if retried else 0)} s |")
    except (KeyError, ValueError):
        w(f"| wall time | {boots} |")
    w("")

    # --- main table
    kcopy = m.get("swiotlb_copy", "GCC's inline expansion of `memcpy()`")
    w("## Map + unmap latency (dma_map_benchmark, µs, median of the repeats)")
    w("")
    w("Plain QEMU; `direct` in a boot of its own, the kernel's swiotlb (`swiotlb=N,force`) and "
      "xen_swiotlb_rs (the device attached for its passes, detached for the kernel's) in one boot. "
      "`ours/kernel`: the median of the per-pair ratios of map+unmap [interquartile range]; "
      f"`interval`: the confidence interval of that median ({ci_level(r)}). `floor` = the copies a bounce must make (2 for bidirectional and from-device, "
      "1 for to-device) × the measured memcpy of the granule (hot buffers, same thread count, the "
      "faster of the two copy routines below; measured in the "
      f"{'same boot as the two implementations' if r.plain_floor_boot() == 'kernel' else '`direct` boot'}). "
      "Ratios below 1 mean ours is faster. The last two "
      "columns subtract from each implementation its copies at the speed of the copy routine it "
      f"actually runs (kernel: {kcopy}, the `inline` column; ours: the kernel's `memcpy()`, the `call` "
      "column), leaving the "
      "allocator and bookkeeping cost (negative: the pool copy ran faster than the hot-buffer "
      "measurement, within noise).")
    w("")
    w("| granule | threads | direction | direct | kernel swiotlb | xen_swiotlb_rs | ours/kernel | interval "
      "| floor | ours/floor | kernel/floor | kernel beyond its copies | ours beyond its copies |")
    w("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for g, t, d in configs():
        dr, k, o = r.total("direct", g, t, d), r.total("kernel", g, t, d), r.total("ours", g, t, d)
        fl = r.floor_us(g, t, d)
        kx = None if k is None or r.floor_us(g, t, d, call=0) is None else k - r.floor_us(g, t, d, call=0)
        ox = None if o is None or r.floor_us(g, t, d, call=1) is None else o - r.floor_us(g, t, d, call=1)
        pr = r.pair_ratios('ours', 'kernel', g, t, d)
        w(f"| {g} | {t} | {DIRS[d]} | {fmt(dr)} | {fmt(k)} | {fmt(o)} | {iqr(pr)} | {ci_text(pr)} | "
          f"{fmt(fl, 2)} | {fmt(ratio(o, fl), 2)} | {fmt(ratio(k, fl), 2)} | {fmt(kx)} | {fmt(ox)} |")
    w("")
    w("Xen PV dom0 (swiotlb-xen forced to bounce with `swiotlb=N,force` on the dom0 command line, "
      "ours attached for its passes in the same boot; floor measured in dom0).")
    w("")
    ox = r.unavailable.get("ours-xen")
    w("| granule | threads | direction | kernel swiotlb-xen | xen_swiotlb_rs | ours/kernel | interval | floor "
      "| ours/floor | kernel/floor |")
    w("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for g, t, d in configs():
        k, o = r.total("kernel-xen", g, t, d), r.total("ours-xen", g, t, d)
        fl = r.floor_us(g, t, d, boot="xen")
        os_ = fmt(o) if o is not None else ("not available" if ox else "n/a")
        pr = r.pair_ratios('ours-xen', 'kernel-xen', g, t, d)
        w(f"| {g} | {t} | {DIRS[d]} | {fmt(k)} | {os_} | {iqr(pr)} | {ci_text(pr)} | {fmt(fl, 2)} | "
          f"{fmt(ratio(o, fl), 2)} | {fmt(ratio(k, fl), 2)} |")
    if ox:
        w("")
        w(f"xen_swiotlb_rs under Xen PV: **not available ({ox})**. The machine-contiguous Xen pool is "
          "a separate issue; the row fills in by itself once attach succeeds.")
    w("")

    write_trace(r, w)
    write_big(r, w)
    write_alias(r, w)
    if prev is not None:
        write_repeat(r, prev, w)

    # --- verdict
    w("## Against the goals")
    w("")
    w(f"Each goal is judged on the confidence interval of the median of the per-pair ratios (same boot; "
      f"{ci_level(r)}, from the order statistics, so with 5 pairs the range of the 5): **met** when "
      "the whole interval is at or below the goal, **missed** when it is all above, **undecided** when "
      "it straddles the goal. Shown: median [interquartile range] (interval). In brackets after each "
      "count, the verdict on the interquartile range, as the runs up to the fifteenth judged: that "
      "range describes how the pairs spread, not how far their median can be from the true one, and "
      "decides more goals than the data can.")
    w("")
    envs = (("plain", "ours", "kernel", r.plain_floor_boot()), ("dom0", "ours-xen", "kernel-xen", "xen"))

    def goal_line(what, items, goal):
        got = [(v, tag, xs) for v, tag, xs in items if v is not None]
        if not got:
            return
        by, by_iqr = defaultdict(list), defaultdict(int)
        for v, tag, xs in got:
            by[v].append(f"{tag} {iqr(xs)} ({ci_text(xs)})")
            by_iqr[judge_iqr(xs, goal)] += 1
        parts = [f"{v} in {len(by[v])}" for v in ("met", "undecided", "missed") if by[v]]
        old = [f"{v} {by_iqr[v]}" for v in ("met", "undecided", "missed") if by_iqr[v]]
        w(f"- {what}: " + ", ".join(parts) + f" of {len(got)} [interquartile range: " + ", ".join(old) + "].")
        for v in ("missed", "undecided"):
            if by[v]:
                w(f"  {v}: " + "; ".join(by[v]) + ".")

    for env, o, k, fboot in envs:
        if not any(key[0] == o for key in r.dmb_rep):
            continue
        one = [(judge(xs, 0.8), f"{t}t/{DIRS[d]}", xs) for t in THREADS for d in DIRS
               for xs in [r.pair_ratios(o, k, 1, t, d)]]
        goal_line(f"{env}, one page, ours ≤ 0.8× the kernel", one, 0.8)
        big = [(judge(xs, 1.0), f"{g}p/{t}t/{DIRS[d]}", xs) for g in (16, 64) for t in THREADS for d in DIRS
               for xs in [r.pair_ratios(o, k, g, t, d)]]
        goal_line(f"{env}, 16 and 64 pages, ours ≤ 1.0× the kernel", big, 1.0)
        fl = []
        for g in (16, 64):
            for t in THREADS:
                for d in DIRS:
                    f = r.floor_us(g, t, d, boot=fboot)
                    xs = [x / f for x in r.dmb_rep.get((o, g, t, d), {}).values()] if f else []
                    fl.append((judge(xs, 1.1), f"{g}p/{t}t/{DIRS[d]}", xs))
        goal_line(f"{env}, 16 and 64 pages, ours ≤ 1.1× the memcpy floor (each pass of ours / the floor)", fl, 1.1)
        # Scaling: throughput at 2 threads / at 1 thread, ours against the kernel's, per pair:
        # (lat1_o / lat2_o) / (lat1_k / lat2_k) ≥ 1, i.e. lat2_o/lat1_o ≤ lat2_k/lat1_k.
        sc = []
        for g in GRANULES:
            for d in DIRS:
                o1, o2 = r.dmb_rep.get((o, g, 1, d), {}), r.dmb_rep.get((o, g, 2, d), {})
                k1, k2 = r.dmb_rep.get((k, g, 1, d), {}), r.dmb_rep.get((k, g, 2, d), {})
                xs = [(o2[p] / o1[p]) / (k2[p] / k1[p]) for p in o1
                      if p in o2 and p in k1 and p in k2 and o1[p] and k1[p] and k2[p]]
                sc.append((judge(xs, 1.0), f"{g}p/{DIRS[d]}", xs))
        goal_line(f"{env}, 2 threads scale at least as well as the kernel's "
                  "((2-thread/1-thread latency of ours) / (the kernel's) ≤ 1)", sc, 1.0)
        wider = []
        for g, t, d in configs():
            so, sk = r.rel_spread(o, g, t, d), r.rel_spread(k, g, t, d)
            if so is not None and sk is not None and so > sk:
                wider.append(f"{g}p/{t}t/{DIRS[d]} {so:.2f} vs {sk:.2f}")
        n = sum(1 for c in configs() if r.rel_spread(o, *c) is not None and r.rel_spread(k, *c) is not None)
        w(f"- {env}, repeats of ours spreading more than the kernel's (interquartile range / median of "
          f"map+unmap): {len(wider)} of {n}" + (": " + "; ".join(wider) if wider else "") + ".")
    # Runs far from the other repeats of their configuration (the median keeps one such run out,
    # not two): how often each implementation had them.
    slow = defaultdict(lambda: [0, 0])
    for (impl, g, t, d), runs in r.dmb.items():
        tot = [m + u for m, u in runs]
        if g > 1:
            slow[impl][1] += len(tot)
            slow[impl][0] += sum(1 for x in tot if len(tot) > 1 and x > 1.8 * min(tot))
    # Of which the host's CPU time explains: see write_host.
    named = defaultdict(lambda: [0, 0])
    for b in r.host:
        for impl, *_, rt, _usual, cause in slow_runs(r, b):
            named[impl][0] += 1 if cause else 0
            named[impl][1] += 1 if rt else 0

    def slow_cell(i, n, tot):
        if i not in named or not n:
            return f"{IMPL_NAMES.get(i, i)} {n} of {tot}"
        h, rec = named[i]
        return (f"{IMPL_NAMES.get(i, i)} {n} of {tot} ({h} with a named cause, {rec - h} without"
                + (f", {n - rec} not recorded" if n > rec else "") + ")")
    if slow:
        w("- Runs of 16 and 64 pages more than 1.8 times the fastest repeat of their configuration "
          "(a slow spell of the host, or of the implementation; causes in \"Slow runs: the host and QEMU\"): "
          + ", ".join(slow_cell(i, n, tot) for i, (n, tot) in sorted(slow.items()))
          + ".")
    inl = r.floor.get((64 * 4096, 1, 0, 0, r.plain_floor_boot()))
    cal = r.floor.get((64 * 4096, 1, 0, 1, r.plain_floor_boot()))
    if inl and cal and "rep movsb" in m.get("swiotlb_copy", "rep movsb"):
        w(f"- The copy routine matters more than the allocator here: a 256 KiB copy takes {inl / 1000:.0f} µs "
          f"with GCC's inline `rep movsb` (the kernel's `swiotlb_bounce`) and {cal / 1000:.0f} µs with the "
          f"kernel's `memcpy()` (ours), ×{inl / cal:.1f}, because TCG emulates `rep movsb` byte by byte "
          "and the guest CPU has no FSRM, so `memcpy()` takes its 8-byte loop. On hardware with FSRM "
          "both copy with `rep movsb` at the same speed; the columns \"beyond its copies\" compare what "
          "is left, the allocators and bookkeeping.")
    w("")

    write_host(r, w)

    # --- map/unmap split
    w("## Map and unmap separately (µs, medians)")
    w("")
    impls = [i for i in IMPL_NAMES if any(k[0] == i for k in r.dmb)]
    w("| granule | threads | direction | " + " | ".join(f"{IMPL_NAMES[i]} map / unmap" for i in impls) + " |")
    w("| ---: | ---: | --- | " + " | ".join("---:" for _ in impls) + " |")
    for g, t, d in configs():
        cells = []
        for i in impls:
            mm = r.med(i, g, t, d)
            cells.append("n/a" if mm is None else f"{mm[0]:.1f} / {mm[1]:.1f}")
        w(f"| {g} | {t} | {DIRS[d]} | " + " | ".join(cells) + " |")
    w("")

    # --- memcpy floor
    passes = max((len(v) for v in r.floor_runs.values()), default=0)
    w(f"## The memcpy floor (ns per copy, in-kernel, fastest of {passes} pass(es) per point)")
    w("")
    w("`inline`: `memcpy()` as GCC compiles it in C in this build "
      f"({m.get('floor_inline_copy', '?')}), which is what the kernel's `swiotlb_bounce()` runs "
      f"({m.get('swiotlb_copy', '?')}); `call`: the kernel's out-of-line `memcpy()` (`memcpy_orig`, an "
      "unrolled 8-byte loop, unless the CPU has FSRM), which Rust's `copy_nonoverlapping` in "
      "xen_swiotlb_rs calls. `hot`: the same source and destination each time, the destination one page "
      "off the source's alignment (see the section on slow copies); `cold`: destinations "
      "rotating through 32 MiB of linear-map memory, as a pool whose slots rotate. With 2 threads "
      "both copy at once, one per CPU. The guest CPU's copy flags: "
      f"plain `{r.info.get('direct', {}).get('cpu_copy_flags', '?') or 'none'}`, "
      f"dom0 `{r.info.get('xen', {}).get('cpu_copy_flags', '?') or 'none'}`.")
    w("")
    w("| granule | threads | plain inline hot | plain inline cold | plain call hot | plain call cold "
      "| dom0 inline hot | dom0 inline cold | dom0 call hot | dom0 call cold |")
    w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for g in GRANULES:
        for t in THREADS:
            c = [r.floor.get((g * 4096, t, cold, call, b))
                 for b in (r.plain_floor_boot(), "xen") for call in (0, 1) for cold in (0, 1)]
            w(f"| {g} | {t} | " + " | ".join(fmt(x, 0) for x in c) + " |")
    w("")

    # --- pressure
    w("## Pool pressure (mixed sizes 1–32 pages, `DMA_TO_DEVICE`, 3 s per point)")
    w("")
    w("Outstanding `dma_map_single` mappings are held at the target occupancy of the pool; one random "
      "mapping is unmapped and the pool refilled, repeatedly. maps/s counts successful maps (each "
      "paired with an unmap); failure % = failed maps / attempts.")
    w("")
    w("| implementation | occupancy | maps/s | failure % | attempts | held at end (mappings / slots) | fill failures |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for impl in ("kernel", "ours", "kernel-xen", "ours-xen"):
        for pct in (70, 95):
            a = r.pressure.get((impl, pct))
            if not a:
                if impl == "ours-xen" and ox:
                    w(f"| {IMPL_NAMES[impl]} | {pct} % | not available | | | | |")
                continue
            att, fails = int(a["attempts"]), int(a["fails"])
            w(f"| {IMPL_NAMES[impl]} | {pct} % | {int(a['maps_per_s'])} | {100.0 * fails / max(att, 1):.2f} | "
              f"{att} | {a['held']} / {a['held_slots']} | {a['fill_fails']} |")
    for pct in (70, 95):
        k, o = r.pressure.get(("kernel", pct)), r.pressure.get(("ours", pct))
        if k and o:
            w("")
            w(f"At {pct} %: ours/kernel maps/s = {int(o['maps_per_s']) / max(int(k['maps_per_s']), 1):.2f}.")
    w("")

    # --- odp
    w("## ODP: faulting a 64 MiB region, against pinning (plain QEMU, nvme 00:04.0's device, no bounce)")
    w("")
    w("Device reads are the fault-and-map path only: QEMU's `edu` DMA takes 100 ms per transfer, so no "
      "transfer is made. `odp`: `odp_umem_map_and_lock` + `odp_umem_dma_addr` of each page + "
      "`odp_umem_unlock`, sequentially over the region (after `odp_umem_unmap` of all of it), the "
      "pages resident (written by the CPU). `gup`: `pin_user_pages_fast` + `dma_map_page` of each "
      "page, the pinned model. `hmm`: the kernel's HMM test driver (`lib/test_hmm.c`, "
      "`/dev/hmm_dmirror0`), the same mechanism in C: one `HMM_DMIRROR_READ` per chunk, which faults "
      "the pages through `hmm_range_fault` into its mirror and copies them to user space through a "
      "buffer it allocates per call (timed from user space, syscall included; the mirror emptied "
      "before each pass by an `mprotect` round trip, the pages staying resident). Median of 3 passes.")
    w("")
    w("| kind | pages per fault | pages faulted/s |")
    w("| --- | ---: | ---: |")
    rates = {}
    for name, a in r.odp:
        if name == "odp":
            rates[(a["kind"], int(a["chunk"]))] = float(a["pages_per_s"])
            w(f"| {a['kind']} | {int(a['chunk']) // 4096} | {float(a['pages_per_s']):.0f} |")
    for ch in (4096, 65536):
        q = ratio(rates.get(("odp", ch)), rates.get(("gup", ch)))
        if q is not None:
            w(f"| odp/gup | {ch // 4096} | ×{q:.2f} |")
    for ch in (4096, 65536):
        q = ratio(rates.get(("odp", ch)), rates.get(("hmm", ch)))
        if q is not None:
            w(f"| odp/hmm (goal ≥ 1.0) | {ch // 4096} | ×{q:.2f} |")
    w("")
    w("Invalidation to refault of one page (`MADV_DONTNEED`, then the device's fault of it), median of "
      "256 pages spread over the region. For `gup` the pinned model's equivalent: unpin + unmap, "
      "`MADV_DONTNEED`, pin + map; for `hmm`, `MADV_DONTNEED` then `HMM_DMIRROR_WRITE` of the page.")
    w("")
    w("| kind | invalidate (µs) | refault (µs) | total (µs) | invalidate callbacks |")
    w("| --- | ---: | ---: | ---: | ---: |")
    for name, a in r.odp:
        if name == "odp_inval":
            w(f"| {a['kind']} | {a['invalidate_us']} | {a['refault_us']} | {a['total_us']} | "
              f"{a['callbacks'] if a['kind'] == 'odp' else '–'} |")
    w("")

    if r.profile_md:
        L.extend(r.profile_md.rstrip("\n").split("\n"))
        w("")
    w("## Plot")
    w("")
    w(f"![map+unmap latency against granule]({png_name})")
    w("")
    if r.errors:
        w("## Errors seen")
        w("")
        for e in r.errors:
            w(f"- `{e}`")
        w("")
    Path(path).write_text("\n".join(L) + "\n")


def plot(r, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), sharex=True)
    styles = {"direct": "k:", "kernel": "C0-o", "ours": "C3-s", "kernel-xen": "C2--^", "ours-xen": "C1--d"}
    for row, t in enumerate(THREADS):
        for col, d in enumerate(DIRS):
            ax = axes[row][col]
            for impl, st in styles.items():
                ys = [r.total(impl, g, t, d) for g in GRANULES]
                if all(y is not None for y in ys):
                    # The interquartile range of the repeats as error bars.
                    qs = [quartiles(list(r.dmb_rep[(impl, g, t, d)].values())) for g in GRANULES]
                    err = [[max(y - q[0], 0) for y, q in zip(ys, qs)], [max(q[2] - y, 0) for y, q in zip(ys, qs)]]
                    ax.errorbar(GRANULES, ys, yerr=err, fmt=st, capsize=3, label=IMPL_NAMES[impl])
            for call, st, what in ((0, "C7-.", f"inline ({r.machine.get('floor_inline_copy', 'GCC expansion')})"), (1, "C8:", "memcpy() call")):
                fl = [r.floor_us(g, t, d, call=call) for g in GRANULES]
                if all(y is not None for y in fl):
                    ax.plot(GRANULES, fl, st, label=f"copies at memcpy speed, {what} (plain)")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(GRANULES, [str(g) for g in GRANULES])
            ax.set_title(f"{DIRS[d]}, {t} thread{'s' if t > 1 else ''}")
            ax.grid(True, which="both", alpha=0.3)
            if col == 0:
                ax.set_ylabel("map + unmap (µs, median, IQR bars)")
            if row == 1:
                ax.set_xlabel("granule (4 KiB pages)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("dma_map_benchmark under QEMU TCG: latency against granule")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    rdir, md, png = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    r = Results(rdir)
    prev = Results(Path(sys.argv[4])) if len(sys.argv) > 4 and Path(sys.argv[4]).is_dir() else None
    write_md(r, md, Path(png).name, prev)
    plot(r, png)


if __name__ == "__main__":
    main()
