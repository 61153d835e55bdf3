#!/usr/bin/env bash
# The host lane: cargo tests of the core-only logic crate.
#   host-lane.sh OUT_DIR
# Prints "host: N passed, M failed[, K skipped]" and appends one summary.tsv row per test binary.
. "$(dirname "$0")/lib.sh"

out=$1
log=$out/logs/host.log
mkdir -p "$out/logs"
rc=0
(cd "$REPO" && cargo test --locked --no-fail-fast 2>&1 && cargo fmt --check 2>&1) > "$log" || rc=$?
python3 - "$log" "$out/summary.tsv" "$rc" <<'PY'
import re, sys
log, tsv, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
binary, rows = '?', []
for line in open(log, errors='replace'):
    m = re.match(r'\s*Running (?:unittests )?(\S+)', line)
    if m:
        binary = m.group(1)
    m = re.match(r'\s*Doc-tests (\S+)', line)
    if m:
        binary = 'doctests ' + m.group(1)
    m = re.match(r'test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored', line)
    if m:
        rows.append((binary,) + tuple(map(int, m.groups())))
p = sum(r[1] for r in rows); f = sum(r[2] for r in rows); s = sum(r[3] for r in rows)
with open(tsv, 'a') as out:
    for r in rows:
        out.write('host\t%s\t%d\t%d\t%d\n' % r)
    if rc and not f:
        out.write('host\t(cargo)\t0\t1\t0\n')
        f += 1
if rc:
    print('host: problem: cargo test/fmt failed (exit %d), see %s' % (rc, log))
print('host: %d passed, %d failed%s' % (p, f, ', %d skipped' % s if s else ''))
sys.exit(1 if (f or rc) else 0)
PY
