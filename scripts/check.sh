#!/usr/bin/env bash
# make check: installs what is missing, builds the test kernel (cached) and the modules, then runs
# every lane (host, qemu, dom0, domU). Each lane prints "LANE: N passed, M failed"; the last line
# is the total. Logs and summary.tsv go to build/check/.
. "$(dirname "$0")/lib.sh"

start=$(date +%s)
"$REPO/scripts/setup.sh"
"$REPO/scripts/kernel.sh"

out=$BUILD/check
rm -rf "$out"
mkdir -p "$out/logs"
: > "$out/summary.tsv"
KUNIT_PY=$KSRC/tools/testing/kunit/kunit.py
status=0
results=()

"$REPO/scripts/build-modules.sh" prod "$BUILD/mod-prod"
"$REPO/scripts/build-modules.sh" test "$BUILD/mod-test"

lane() {  # name, command...: runs a lane, keeps its one result line
    local name=$1 line rc=0
    shift
    "$@" > "$out/logs/$name.result" 2>&1 || rc=$?
    grep -v "^$name: [0-9]" "$out/logs/$name.result" || true
    line=$(grep "^$name: [0-9]" "$out/logs/$name.result" | tail -1)
    [ -n "$line" ] || line="$name: 0 passed, 1 failed"
    echo "$line"
    results+=("$line")
    [ $rc = 0 ] || status=1
}

lane host "$REPO/scripts/host-lane.sh" "$out"

vm() {  # name, kind, initramfs, timeout, cmdline: boots a VM; the lane report judges its log
    local rc=0 t0=$SECONDS
    "$REPO/scripts/vm.sh" "$2" "$3" "$out/logs/$1.console.log" "$4" "$5" || rc=$?
    log "$1: VM ran $((SECONDS - t0)) s (exit $rc)"
}
report() {  # lane, console log
    python3 "$REPO/scripts/lane_report.py" "$1" "$2" "$BUILD/mod-test" "$KUNIT_PY" "$out"
}

# qemu: plain TCG guest with an edu and an nvme device.
"$REPO/scripts/initramfs.sh" "$out/plain.cpio.gz" "$BUILD/mod-test" plain
vm qemu plain "$out/plain.cpio.gz" 300 "xendma.lane=qemu"
lane qemu report qemu "$out/logs/qemu.console.log"

# dom0 and domU: one Xen boot; dom0 runs its lane, then starts the domU with edu passed through.
# Under TCG the PV domU is the slow part: on a 2-core machine of this kind (2026-11-30) its
# odp_umem stress test alone took 276 to 432 s and the whole domU about 690 s, dom0 about 330 s.
# The domU gets 1200 s and the whole boot 1800 s; a hang still ends the run, with the domU's log.
"$REPO/scripts/initramfs.sh" "$out/xen.cpio.gz" "$BUILD/mod-test" xen
vm xen xen "$out/xen.cpio.gz" 1800 \
    "xendma.lane=dom0 xendma.domu=1 xendma.bdf=0000:00:03.0 xendma.domu_timeout=1200 $DOM0_ARGS"
lane dom0 report dom0 "$out/logs/xen.console.log"
# The domU's console log, as dom0 printed it.
sed -n '/@@XENDMA-DOMU-LOG-BEGIN/,/@@XENDMA-DOMU-LOG-END/p' "$out/logs/xen.console.log" \
    > "$out/logs/domU.console.log"
# QEMU's output (the edu device's address complaints) covers both guests of that boot.
cp "$out/logs/xen.console.log.qemu" "$out/logs/domU.console.log.qemu" 2>/dev/null || true
lane domU report domU "$out/logs/domU.console.log"

echo "logs: $out/logs"
echo "summary: $out/summary.tsv"
echo "time: $(( $(date +%s) - start )) s"
python3 - "${results[@]}" <<'PY'
import re, sys
p = f = 0
for line in sys.argv[1:]:
    m = re.search(r': (\d+) passed, (\d+) failed', line)
    p += int(m.group(1)); f += int(m.group(2))
print('total: %d passed, %d failed' % (p, f))
PY
exit $status
