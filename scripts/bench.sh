#!/usr/bin/env bash
# make bench: measures xen_swiotlb_rs against the kernel's own bounce buffering with the kernel's
# dma_map_benchmark, plus the memcpy floor, pool pressure and ODP against GUP, on a production-like
# build of the test kernel (kconfig/*.config + kconfig/bench/production.config), in plain QEMU and
# in a Xen dom0. Writes bench/results.md and bench/latency.png. Documentation/bench.rst explains.
#   BENCH_SECONDS (2) seconds per dma_map_benchmark run, BENCH_REPEATS (5) repeats: pairs of
#   passes (kernel, ours) in one boot, each configuration's two runs back to back, whose per-pair
#   ratios give the median and spread,
#   BENCH_POOL_MB (64) pool size for both implementations, BENCH_OUT (bench/) output directory,
#   BENCH_BOOTS ("direct kernel xen profile") the boots to run (a subset reuses the others' last results).
#   BENCH_QUIET (20) seconds without another VM, once one was seen, before a boot.
. "$(dirname "$0")/lib.sh"

secs=${BENCH_SECONDS:-2} reps=${BENCH_REPEATS:-5} pool_mb=${BENCH_POOL_MB:-64}
boots=${BENCH_BOOTS:-direct kernel xen profile}
outdir=${BENCH_OUT:-$REPO/bench}
# A separate kernel tree and build directory: the test kernel and the test builds stay untouched.
export KSRC=${BENCH_KSRC:-$XENDMA_CACHE/linux-bench}
export BUILD=$REPO/build/bench
# A copy of the previous run's results, for the run-to-run comparison (bench/report.py); the boots
# not in BENCH_BOOTS keep their last results in results/.
# (Only when the main boots run: a profile-only run keeps the comparison as it was.)
if [ -f "$BUILD/results/machine.txt" ] && [[ " $boots " == *" kernel "* ]]; then
    rm -rf "$BUILD/results.prev"
    cp -a "$BUILD/results" "$BUILD/results.prev"
fi
mkdir -p "$BUILD/results" "$outdir"
start=$(date +%s)
slots=$((pool_mb * 512))   # 2 KiB slots, the kernel's IO_TLB_SIZE and ours

"$REPO/scripts/setup.sh"
kstart=$(date +%s)
KCONFIG_EXTRA=$REPO/kconfig/bench/production.config "$REPO/scripts/kernel.sh"
kernel_s=$(( $(date +%s) - kstart ))

# The production modules, built against the benchmark kernel.
"$REPO/scripts/build-modules.sh" prod "$BUILD/mod"
# The benchmark driver (C, W=1, warning-free), linked against odp_umem's exports.
kmod=$BUILD/kmod
rm -rf "$kmod" && mkdir -p "$kmod/include"
cp "$REPO"/bench/kmod/{Kbuild,xendma_bench.c,xendma_bench.h} "$kmod/"
cp "$REPO/include/odp_umem.h" "$kmod/include/"
if ! make -C "$KSRC" M="$kmod" "${KRUST[@]}" W=1 KBUILD_EXTRA_SYMBOLS="$BUILD/src-prod/Module.symvers" \
        modules > "$kmod/build.log" 2>&1; then
    tail -30 "$kmod/build.log"; die "build of the benchmark driver failed"
fi
if grep -E -i '(^|[^-])warning' "$kmod/build.log"; then die "the benchmark driver is not warning-free"; fi
# User programs: the kernel's dma_map_benchmark tool from the benchmark kernel's source, and ours.
mkdir -p "$BUILD/mod/bin" "$BUILD/inc/linux"
cp "$KSRC/include/linux/map_benchmark.h" "$BUILD/inc/linux/"
gcc -static -O2 -Wall -Wextra -Werror -I "$BUILD/inc" -o "$BUILD/mod/bin/dma_map_benchmark" \
    "$KSRC/tools/testing/selftests/dma/dma_map_benchmark.c"
gcc -static -O2 -Wall -Wextra -Werror -I "$KSRC/lib" -o "$BUILD/xendma_bench" "$REPO/bench/prog/xendma_bench.c"
# The instruction-counting QEMU plugin of the profile boot.
gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$BUILD/insn_profile.so" "$REPO/bench/profile/insn_profile.c"

# Initramfs: the project's image with the benchmark's /init and files laid over it (the kernel
# unpacks concatenated cpio archives in order, later files replacing earlier ones).
overlay=$BUILD/overlay
rm -rf "$overlay" && mkdir -p "$overlay/lib/xendma/bench"
install -m 755 "$REPO/bench/guest/init" "$overlay/init"
install -m 755 "$REPO/bench/guest/bench.sh" "$BUILD/xendma_bench" "$overlay/lib/xendma/bench/"
cp "$kmod/xendma_bench.ko" "$overlay/lib/xendma/bench/"
# The kernel's HMM test driver (CONFIG_TEST_HMM=m, kconfig/bench/production.config): the ODP anchor.
cp "$KSRC/lib/test_hmm.ko" "$overlay/lib/xendma/bench/"
(cd "$overlay" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1) > "$BUILD/overlay.cpio.gz"
for kind in plain xen; do
    "$REPO/scripts/initramfs.sh" "$BUILD/$kind-base.cpio.gz" "$BUILD/mod" "$kind"
    cat "$BUILD/$kind-base.cpio.gz" "$BUILD/overlay.cpio.gz" > "$BUILD/$kind.cpio.gz"
done
build_s=$(( $(date +%s) - start ))

# Timings taken while another VM runs are distorted: wait until no other qemu-system runs before
# a boot, watch for one starting during it, and boot again (up to twice) if one did.
idle_log=$BUILD/results/idle.txt
: > "$idle_log"
qemus() { pgrep -c '^qemu-system' || true; }
# Another project's test lanes start VMs one after another: once one was seen, the machine counts
# as idle only after BENCH_QUIET (20) seconds without any.
wait_idle() {
    local waited=0 quiet=0 seen=0
    while :; do
        if [ "$(qemus)" -gt 0 ]; then
            [ $seen = 0 ] && log "bench: another qemu-system process is running; waiting for it to finish"
            seen=1 quiet=0
        elif [ $seen = 0 ] || [ $quiet -ge "${BENCH_QUIET:-20}" ]; then
            break
        else
            quiet=$((quiet + 5))
        fi
        sleep 5
        waited=$((waited + 5))
    done
    idle_note="waited_s=$waited load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
}

# One boot: kind, name, timeout, extra guest command line.
boot() {
    local kind=$1 name=$2 timeout_s=$3 extra=$4 rc t0 attempt mon overlap watch
    case " $boots " in *" $name "*) ;; *) return 0 ;; esac
    for attempt in 1 2 3; do
        wait_idle
        log "bench: booting $name ($kind)"
        t0=$(date +%s) rc=0
        # Seconds during which a qemu-system other than ours ran.
        echo 0 > "$BUILD/results/$name.overlap"
        ( n=0; while sleep 2; do
              [ "$(qemus)" -gt 1 ] && n=$((n + 2)) && echo $n > "$BUILD/results/$name.overlap"
          done ) &
        mon=$!
        # What the host and QEMU did meanwhile, to name the cause of a slow run (bench/report.py).
        : > "$BUILD/results/$name.console.log"
        rm -f "$BUILD/results/$name.qmp"
        /usr/bin/python3 "$REPO/bench/host_watch.py" "$BUILD/results/$name.console.log" \
            "$BUILD/results/$name" "$BUILD/results/$name.qmp" &
        watch=$!
        QEMU_QMP=$BUILD/results/$name.qmp "$REPO/scripts/vm.sh" "$kind" "$BUILD/$kind.cpio.gz" "$BUILD/results/$name.console.log" "$timeout_s" \
            "xendma.bench=$name xendma.bench_s=$secs xendma.bench_reps=$reps xendma.bench_pool_mb=$pool_mb $extra" || rc=$?
        kill "$mon"
        wait "$mon" 2> /dev/null || true
        kill "$watch" 2> /dev/null || true
        wait "$watch" 2> /dev/null || true
        overlap=$(cat "$BUILD/results/$name.overlap")
        echo "$name attempt=$attempt $idle_note overlap_s=$overlap" >> "$idle_log"
        [ "$overlap" = 0 ] && break
        log "bench: another qemu-system ran during $overlap s of the $name boot; booting it again"
    done
    tr -d '\r' < "$BUILD/results/$name.console.log" | sed -n 's/.*@@B //p' > "$BUILD/results/$name.txt"
    echo "boot name=$name seconds=$(( $(date +%s) - t0 )) rc=$rc" >> "$BUILD/results/$name.txt"
    grep -q '@@XENDMA-DONE' "$BUILD/results/$name.console.log" ||
        die "bench: the $name VM did not finish (rc $rc); see $BUILD/results/$name.console.log"
    log "bench: $name done in $(( $(date +%s) - t0 )) s"
}

# The per-boot timeouts allow three times the expected run time (18 configurations per
# implementation, each BENCH_REPEATS times BENCH_SECONDS, an attach and a detach per pair, plus the
# other measurements).
per_impl=$((18 * reps * (secs + 1) + 10 * reps))
# The trace events' cost (ours only): 5 pairs of the three directions at 1 page.
trace_s=$((30 * (secs + 1)))
# plain QEMU: 00:05.0 is the 32-bit edu device (no driver), 00:04.0 the nvme controller (64-bit).
boot plain direct $((3 * (per_impl + 120) + 120)) "xendma.bench_dev=0000:00:05.0 xendma.bench_odp_dev=0000:00:04.0"
# The kernel's swiotlb (swiotlb=force) and ours in the same boot, alternating.
boot plain kernel $((3 * (2 * per_impl + trace_s + 60) + 120)) "xendma.bench_dev=0000:00:05.0 swiotlb=$slots,force"
# Xen dom0: the nvme controller (64-bit mask); swiotlb=force makes swiotlb-xen bounce everything.
boot xen xen $((3 * (2 * per_impl + trace_s + 60) + 300)) "xendma.bench_dev=0000:00:04.0 swiotlb=$slots,force"
# Where a mapping lands against its buffer (not a default boot: BENCH_BOOTS=place, then
# bench/place.py; Documentation/bench.rst).
boot plain place 1800 "xendma.bench_dev=0000:00:05.0 swiotlb=$slots,force"
[ "$(echo $boots)" = place ] && exit 0
# The instruction profile: plain QEMU, the kernel's swiotlb and ours at one page under the
# counting plugin, whose windows end at each sync(2) of the guest (the entry of ksys_sync).
case " $boots " in *" profile "*)
    rm -rf "$BUILD/results/profile" "$BUILD/results/profile.md"
    mkdir -p "$BUILD/results/profile"
    mark=$(awk '$3 == "ksys_sync" {print $1}' "$KSRC/System.map")
    [ -n "$mark" ] || die "bench: no ksys_sync in $KSRC/System.map"
    export QEMU_PLUGIN="$BUILD/insn_profile.so,mark=0x$mark,out=$BUILD/results/profile/win"
    boot plain profile 900 "xendma.bench_dev=0000:00:05.0 swiotlb=$slots,force"
    # The ODP fault path, ours against test_hmm, in a boot without swiotlb=force (part of the
    # profile: boot() runs the boots named in $boots).
    rm -rf "$BUILD/results/profile_odp"
    mkdir -p "$BUILD/results/profile_odp"
    export QEMU_PLUGIN="$BUILD/insn_profile.so,mark=0x$mark,out=$BUILD/results/profile_odp/win"
    boots="$boots profile_odp"
    boot plain profile_odp 900 "xendma.bench_odp_dev=0000:00:04.0"
    unset QEMU_PLUGIN
    /usr/bin/python3 "$REPO/bench/profile/analyze.py" "$BUILD/results" "$KSRC/System.map"
    ;;
esac

total_s=$(( $(date +%s) - start ))
{
    echo "host_cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "host_cores=$(nproc)"
    echo "host_mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "host_os=$(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "qemu=$(qemu-system-x86_64 --version | head -1)"
    echo "xen=$(dpkg-deb -f "$XENDMA_CACHE"/xen-debs/xen-hypervisor-4.17-amd64_*.deb Version 2>/dev/null || echo unknown)"
    echo "kernel_pkg=$(dpkg-query -W -f='${Version}' linux-source-6.12)"
    echo "kernel_config_sha=$(sha256sum "$KSRC/.config" | cut -c1-16)"
    echo "kernel_opt=$(grep -q '^CONFIG_CC_OPTIMIZE_FOR_SIZE=y' "$KSRC/.config" && echo -Os || echo -O2)"
    # How the kernel's swiotlb_bounce() and the floor's "inline" memcpy() were compiled: GCC expands
    # memcpy() of unknown size into "rep movsb" at -Os and calls memcpy() at -O2.
    copy_of() { if objdump -d "$1" | grep -q 'rep movsb'; then echo "inline rep movsb"; else echo "memcpy() call"; fi; }
    echo "swiotlb_copy=$(copy_of "$KSRC/kernel/dma/swiotlb.o")"
    echo "floor_inline_copy=$(copy_of "$kmod/xendma_bench.o")"
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "seconds=$secs"
    echo "repeats=$reps"
    echo "pool_mb=$pool_mb"
    echo "kernel_step_s=$kernel_s"
    echo "build_s=$build_s"
    echo "total_s=$total_s"
    echo "waited_s=$(sed -n 's/.* waited_s=\([0-9]*\).*/\1/p' "$idle_log" | paste -sd+ | bc)"
} > "$BUILD/results/machine.txt"
# Debian's python3, for which setup.sh installed python3-matplotlib (not whatever python3 is first on PATH).
/usr/bin/python3 "$REPO/bench/report.py" "$BUILD/results" "$outdir/results.md" "$outdir/latency.png" "$BUILD/results.prev"
log "bench: done in $total_s s (kernel step $kernel_s s); $outdir/results.md, $outdir/latency.png"
