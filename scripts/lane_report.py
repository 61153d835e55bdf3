#!/usr/bin/env python3
"""Judges one VM lane from its serial console log.

    lane_report.py LANE CONSOLE_LOG MODULE_DIR KUNIT_PY OUT_DIR

Takes the kernel log block the guest printed for LANE, splits it at each module's insmod, feeds
each part to the kernel's own KUnit parser (tools/testing/kunit/kunit.py parse --json), and checks:
the parser succeeded, every suite built into the modules ran, every test program exited 0, no
module failed to load or unload, kmemleak found nothing, and the log has no BUG/WARNING/Oops/
KASAN-style report. A stock- lane (Debian's stock kernel, production modules) and the lockdown
lane (signed production modules) have no KUnit: there each module must carry no suite; a stock-
lane's log must also name the stock kernel's release and taint.
A program that exits 4 was skipped (its output says why). Appends per-suite rows to OUT_DIR/summary.tsv and prints one line
"LANE: N passed, M failed, K skipped". Exit status 1 when the lane failed.
"""
import json
import os
import re
import subprocess
import sys

BAD = re.compile(r'(BUG:|WARNING:|Oops|Kernel panic|kernel BUG|KASAN|UBSAN|general protection fault|'
                 r'\bcut here\b|possible circular locking|inconsistent lock state|'
                 r'sleeping function called from invalid context|suspected memory leak|'
                 r'Call Trace:)')
IOMMU_FAULT = re.compile(r'\[VT-D\]DMAR:\[|DMAR:\[DMA (Read|Write)\]|detected translation failure|'
                         r'vtd_.*(fault|fail)')
ALLOC_WARN = re.compile(r'vmalloc error: size|page allocation failure: order')
TS = re.compile(r'^\[\s*\d+\.\d+\]\s?')


def suites_built(ko):
    out = subprocess.run(['readelf', '-SW', ko], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.search(r'\.kunit_test_suites\s+\S+\s+\S+\s+\S+\s+([0-9a-f]+)', line)
        if m:
            return int(m.group(1), 16) // 8
    return 0


def main():
    lane, log, moddir, kunit_py, outdir = [os.path.abspath(a) if i else a for i, a in enumerate(sys.argv[1:6])]
    text = open(log, errors='replace').read()
    problems = []
    m = re.search(r'@@XENDMA-DMESG-BEGIN %s\r?\n(.*?)@@XENDMA-DMESG-END %s' % (lane, lane), text, re.S)
    if not m:
        problems.append('no kernel log from the %s guest (crash, hang or timeout?)' % lane)
        dmesg = ''
    else:
        dmesg = m.group(1).replace('\r', '')
    if '@@XENDMA-DONE' not in text:
        problems.append('the %s guest did not finish (no @@XENDMA-DONE): crash, hang or timeout' % lane)
    # The Xen console (hvc) doubles line ends: drop the empty lines it adds.
    lines = [l.rstrip() for l in dmesg.splitlines() if l.strip()]
    stripped = [TS.sub('', l) for l in lines]

    # Reports of the kernel's detectors, anywhere in the lane's kernel log. Between fault_inject's
    # markers, the kernel's own allocation-failure report (warn_alloc: "vmalloc error:", "page
    # allocation failure:", then a stack dump) is what an injected failure looks like; its
    # "Call Trace:" alone is let through there, and only right after such a line. Every other
    # report still fails the lane.
    # (fault_inject keeps its injections out of ACPICA, whose evaluation of _PRT does not survive
    # every failed allocation on 6.12: see its part c.)
    injecting, last_alloc_warn = False, -100
    for i, l in enumerate(stripped):
        if l.startswith('xendma: fault injection begin'):
            injecting = True
        elif l.startswith('xendma: fault injection end'):
            injecting = False
        if injecting and ALLOC_WARN.search(l):
            last_alloc_warn = i
        if BAD.search(l):
            if injecting and l.strip() == 'Call Trace:' and i - last_alloc_warn <= 4:
                continue
            problems.append('kernel report: ' + l.strip())
            break

    # QEMU's own complaints: the edu device clamps (QEMU 7.2) or rejects a bus address outside its
    # DMA mask and says so on QEMU's output, kept next to the console log. Any such line means a
    # wrong address reached the device.
    qemu_out = log + '.qemu'
    if os.path.exists(qemu_out):
        for l in open(qemu_out, errors='replace'):
            if re.search(r'EDU: |edu: .*(DMA|range)|hw_error|Aborted', l):
                problems.append('QEMU: ' + l.strip())
                break

    # DMA faults the IOMMU reported: Xen's VT-d driver on its console ("(XEN) [VT-D]DMAR:[DMA
    # Write] Request device [0000:00:01.0] fault addr ..."), QEMU's intel-iommu on its output. For a
    # dom0 lane, Xen's lines before the domU started; for a domU lane, those after (LOG.xen, which
    # check.sh cuts from the boot's console). Any such line means a device was given a bus address
    # that is not its domain's memory.
    xen_lines = text.split('@@XENDMA-DOMU-START')[0].splitlines()
    if os.path.exists(log + '.xen'):
        xen_lines += open(log + '.xen', errors='replace').read().splitlines()
    if os.path.exists(qemu_out):
        xen_lines += open(qemu_out, errors='replace').read().splitlines()
    for l in xen_lines:
        if IOMMU_FAULT.search(l):
            problems.append('IOMMU fault: ' + l.strip())
            break

    # The KASAN lane counts only if its kernel had the detectors on (their boot lines).
    if os.path.basename(lane) == 'kasan':
        for what, pat in (('KASAN', r'KernelAddressSanitizer initialized'), ('KFENCE', r'kfence: initialized')):
            if not any(re.search(pat, l) for l in stripped):
                problems.append('the kernel log does not show %s initialized ("%s")' % (what, pat))
            else:
                print('%s: %s' % (lane, next(l for l in stripped if re.search(pat, l))))
    stock = os.path.basename(lane).startswith('stock-')
    if stock:
        rel = [l for l in stripped if l.startswith('xendma: stock kernel: uname -r')]
        if not rel:
            problems.append('the log does not name the stock kernel it ran on')
        else:
            print('%s: %s' % (lane, rel[0][len('xendma: '):]))
            taint = [l for l in stripped if 'with the modules loaded' in l]
            if taint:
                print('%s: %s' % (lane, taint[0][len('xendma: '):]))
    rows = []
    passed = failed = skipped = 0
    modules = [l.split()[2] for l in stripped if re.match(r'xendma: insmod \S+ begin$', l)]
    for mod in modules:
        ko = os.path.join(moddir, mod + '.ko')
        start = stripped.index('xendma: insmod %s begin' % mod)
        end = next((i for i in range(start, len(stripped)) if stripped[i].startswith('xendma: insmod %s rc=' % mod)), None)
        if end is None:
            problems.append('%s: insmod did not return' % mod)
            continue
        rc = stripped[end].split('rc=')[1]
        if rc != '0':
            problems.append('%s: insmod failed (rc=%s)' % (mod, rc))
        part = '\n'.join(lines[start:end + 1]) + '\n'
        base = '%s-%s' % (lane, mod.replace('/', '-'))
        ktap = os.path.join(outdir, base + '.ktap')
        jsonf = os.path.join(outdir, base + '.json')
        open(ktap, 'w').write(part)
        expected = suites_built(ko)
        if stock or os.path.basename(lane) == 'lockdown':
            if expected:
                problems.append('%s: a production module carries KUnit suites' % mod)
            continue
        if expected == 0:
            problems.append('%s: the module carries no KUnit suite' % mod)
            continue
        res = subprocess.run([sys.executable, kunit_py, 'parse', '--json=' + jsonf, ktap],
                             capture_output=True, text=True)
        open(os.path.join(outdir, base + '.parse'), 'w').write(res.stdout + res.stderr)
        if res.returncode != 0:
            problems.append('%s: kunit.py parse failed (exit %d)' % (mod, res.returncode))
        try:
            tree = json.load(open(jsonf))
        except (OSError, ValueError):
            problems.append('%s: kunit.py wrote no JSON' % mod)
            continue
        suites = tree.get('sub_groups', [])
        if len(suites) < expected:
            problems.append('%s: %d of %d suites ran' % (mod, len(suites), expected))
        for s in suites:
            cases = s.get('test_cases', [])
            for sub in s.get('sub_groups', []):
                cases += sub.get('test_cases', [])
            counts = {'PASS': 0, 'FAIL': 0, 'SKIP': 0}
            for c in cases:
                st = c.get('status', 'FAIL')
                counts['SKIP' if st == 'SKIP' else 'PASS' if st == 'PASS' else 'FAIL'] += 1
            if not cases:
                counts['FAIL'] += 1
            rows.append((lane, s.get('name', '?'), counts['PASS'], counts['FAIL'], counts['SKIP']))
            passed += counts['PASS']
            failed += counts['FAIL']
            skipped += counts['SKIP']

    # Userspace test programs: a program that prints "NAME: N passed, M failed" counts as N + M
    # tests; any other counts as one. A non-zero exit status is always a failure.
    # "NAME: N passed, M failed, K skipped" adds K skips; exit status 4 (KTAP's skip) with no
    # pass and no failure is a skipped program.
    counted = {}
    for l in stripped:
        pc = re.match(r'xendma: program (\S+): (\S+): (\d+) passed, (\d+) failed(?:, (\d+) skipped)?$', l)
        if pc and pc.group(1) == pc.group(2):
            counted[pc.group(1)] = (int(pc.group(3)), int(pc.group(4)), int(pc.group(5) or 0))
    for l in stripped:
        pm = re.match(r'xendma: program (\S+) rc=(\d+)$', l)
        if pm:
            rc = pm.group(2)
            ok = rc == '0'
            p, f, s = counted.get(pm.group(1), (int(ok), int(not ok and rc != '4'), int(rc == '4')))
            if rc == '4' and (p or f or not s):
                f = max(f, 1)  # a skip is all or nothing
            elif not ok and rc != '4' and f == 0:
                f = 1
            if ok and p == 0:
                f = max(f, 1)
            rows.append((lane, pm.group(1), p, f, s))
            passed += p
            failed += f
            skipped += s
    for l in stripped:
        rm = re.match(r'xendma: rmmod (\S+) rc=(\d+)$', l)
        if rm and rm.group(2) != '0':
            problems.append('%s: rmmod failed' % rm.group(1))
        km = re.match(r'xendma: kmemleak suspects=(\d+)$', l)
        if km and km.group(1) != '0':
            problems.append('kmemleak: %s suspected leaks' % km.group(1))
    # stock-lockdown loads nothing on purpose: its one program checks that loading is refused.
    if m and not modules and os.path.basename(lane) != 'stock-lockdown':
        problems.append('no module was loaded')
    if os.path.basename(lane) in ('lockdown', 'stock-lockdown') and 'lockdown' not in counted:
        problems.append('the lockdown program reported no result')
    if os.path.basename(lane) == 'stock-iommu' and 'iommu_dma' not in counted:
        problems.append('the iommu_dma program reported no result')

    with open(os.path.join(outdir, 'summary.tsv'), 'a') as f:
        for r in rows:
            f.write('\t'.join(map(str, r)) + '\n')
        if problems:
            f.write('%s\t(lane)\t0\t1\t0\n' % lane)
    for p in problems:
        print('%s: problem: %s' % (lane, p))
    if problems:
        failed += 1
    line = '%s: %d passed, %d failed' % (lane, passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    print(line)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
