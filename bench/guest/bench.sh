#!/bin/sh
# The guest side of `make bench` (Documentation/bench.rst). Prints one "@@B ..." line per result
# on the console; scripts/bench.sh collects them and bench/report.py turns them into tables.
#   xendma.bench=direct  plain QEMU: memcpy floor, dma_map_benchmark without bouncing, then
#                        xen_swiotlb_rs (force_bounce) attached, its trace events off and on, pool
#                        pressure on it, ODP vs GUP
#   xendma.bench=kernel  plain QEMU booted with swiotlb=<slots>,force: the kernel's swiotlb
#   xendma.bench=xen     Xen PV dom0 booted with swiotlb=<slots>,force: swiotlb-xen, then
#                        xen_swiotlb_rs on the same boot (reported unavailable if attach is refused),
#                        with its trace events off and on
# xendma.bench_s (seconds per dma_map_benchmark run), xendma.bench_reps (repeats),
# xendma.bench_dev (the PCI device the mappings are made for), xendma.bench_pool_mb.
arg() { sed -n "s/.*\<$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
mode=$(arg xendma.bench)
secs=$(arg xendma.bench_s)
reps=$(arg xendma.bench_reps)
dev=$(arg xendma.bench_dev)
pool_mb=$(arg xendma.bench_pool_mb)
odp_dev=$(arg xendma.bench_odp_dev)
B=/lib/xendma
DMB=$B/bin/dma_map_benchmark
XB=$B/bench/xendma_bench
SYS=/sys/bus/pci/devices/$dev
DBG=/sys/kernel/debug/xen_swiotlb_rs

out() { echo "@@B $*"; }

info() {
    out "info mode=$mode kernel=$(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo)" \
        "mem_kb=$(sed -n 's/MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) dev=$dev"
    out "info cmdline=$(tr ' ' '|' < /proc/cmdline)"
    # Which copy the kernel's memcpy() uses (alternatives: rep movsb with FSRM).
    out "info cpu_copy_flags=$(grep -o -w 'fsrm\|erms' /proc/cpuinfo | sort -u | tr '\n' ',')"
    [ -r /sys/hypervisor/version/major ] && out "info xen=$(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor)$(cat /sys/hypervisor/version/extra)"
    [ -r /sys/kernel/debug/swiotlb/io_tlb_nslabs ] && out "info swiotlb_nslabs=$(cat /sys/kernel/debug/swiotlb/io_tlb_nslabs)"
}

# Binds the kernel's dma_map_benchmark driver to $dev (unbinding whatever driver had it).
bind_dmb() {
    [ -e "$SYS/driver" ] && echo "$dev" > "$SYS/driver/unbind"
    echo dma_map_benchmark > "$SYS/driver_override"
    echo "$dev" > /sys/bus/pci/drivers_probe
    [ "$(basename "$(readlink "$SYS/driver")")" = dma_map_benchmark ]
}

# dma_map_benchmark over granules 1, 16, 64 pages, 1 and 2 threads, the three directions;
# the repeats are the outer loop so that a slow spell of the host spreads over configurations.
dmb() {
    impl=$1 bits=$2
    rep=1
    while [ $rep -le "$reps" ]; do
        for g in 1 16 64; do
            for t in 1 2; do
                for d in 0 1 2; do
                    if ! r=$($DMB -t $t -s "$secs" -g $g -b "$bits" -d $d 2>&1); then
                        out "error impl=$impl rep=$rep g=$g t=$t d=$d: $(echo "$r" | tr '\n' ' ')"
                        continue
                    fi
                    map=$(echo "$r" | sed -n 's/average map latency(us):\([0-9.]*\) standard deviation:\([0-9.]*\)/\1 \2/p')
                    unmap=$(echo "$r" | sed -n 's/average unmap latency(us):\([0-9.]*\) standard deviation:\([0-9.]*\)/\1 \2/p')
                    out "dmb impl=$impl rep=$rep g=$g t=$t d=$d map=${map% *} map_sd=${map#* }" \
                        "unmap=${unmap% *} unmap_sd=${unmap#* }"
                done
            done
        done
        rep=$((rep + 1))
    done
}

# The memcpy floor: three passes of 300 ms per point (the report takes the median), the passes
# being the outer loop like the repeats of dma_map_benchmark.
floor() {
    for pass in 1 2 3; do
        for g in 1 16 64; do
            for t in 1 2; do
                # 0 inline hot, 1 inline cold, 2 memcpy() hot, 3 memcpy() cold
                for flags in 0 1 2 3; do
                    out "floor $($XB memcpy $((g * 4096)) $t 300 $flags 2>&1)"
                done
            done
        done
    done
}

# Pool pressure at 70 % and 95 % of a pool of $1 slots, 3 s each.
pressure() {
    impl=$1 slots=$2
    for pct in 70 95; do
        out "pressure impl=$impl $($XB pressure "$dev" "$slots" $pct 3000 42 2>&1)"
    done
}

# Loads xen_swiotlb_rs with force_bounce and attaches $dev to it (dma_map_benchmark binds again
# through driver_override). Returns non-zero, after reporting why, if the attach is refused.
attach_ours() {
    impl=$1
    if ! insmod $B/xen_swiotlb_rs.ko pool_mb="$pool_mb" force_bounce=1 2>/tmp/err; then
        out "unavailable impl=$impl reason=insmod: $(cat /tmp/err | tr '\n' ' ')"
        return 1
    fi
    out "info ours_pool_bytes=$(cat $DBG/pool_bytes) ours_nslabs=$(cat $DBG/nslabs)"
    if ! echo "$dev" > $DBG/attach 2>/tmp/err; then
        # busybox echo: "sh: write error: Operation not supported"
        out "unavailable impl=$impl reason=attach refused: $(sed 's/.*write error: //' /tmp/err | tr '\n' ' ')"
        return 1
    fi
    i=0
    until [ "$(basename "$(readlink "$SYS/driver")")" = dma_map_benchmark ] || [ $i -ge 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    out "info ours_devices=$(tr ' \n' ',;' < $DBG/devices)"
}

# The cost of xen_swiotlb_rs's trace events (Documentation/tracing.rst), in this boot: 1 page, 1
# thread, each direction with the events disabled (compiled in: the benchmark kernel has event
# tracing, as Debian's) and enabled (written to the ring buffer, which nobody reads), 5 pairs, the
# order within a pair alternating so that neither state always runs first.
trace_cost() {
    impl=$1
    T=/sys/kernel/tracing
    [ -d $T/events ] || mount -t tracefs nodev $T 2>/dev/null
    if [ ! -d $T/events/xen_swiotlb_rs ]; then
        out "error impl=$impl trace: tracefs has no xen_swiotlb_rs events"
        return
    fi
    pair=1
    while [ $pair -le 5 ]; do
        if [ $((pair % 2)) = 1 ]; then states="0 1"; else states="1 0"; fi
        for d in 0 1 2; do
            for ev in $states; do
                echo $ev > $T/events/xen_swiotlb_rs/enable
                if ! r=$($DMB -t 1 -s "$secs" -g 1 -b 64 -d $d 2>&1); then
                    out "error impl=$impl trace pair=$pair events=$ev d=$d: $(echo "$r" | tr '\n' ' ')"
                    continue
                fi
                map=$(echo "$r" | sed -n 's/average map latency(us):\([0-9.]*\) .*/\1/p')
                unmap=$(echo "$r" | sed -n 's/average unmap latency(us):\([0-9.]*\) .*/\1/p')
                out "trace impl=$impl pair=$pair events=$ev d=$d map=$map unmap=$unmap"
            done
        done
        pair=$((pair + 1))
    done
    echo 0 > $T/events/xen_swiotlb_rs/enable
    # What the enabled runs recorded: events in the ring buffer now, and those overwritten.
    out "info trace_buffer_kb=$(cat $T/buffer_size_kb)" \
        "trace_entries=$(sed -n 's/^entries: //p' $T/per_cpu/cpu*/stats | paste -sd+ | bc)" \
        "trace_overrun=$(sed -n 's/^overrun: //p' $T/per_cpu/cpu*/stats | paste -sd+ | bc)"
    echo > $T/trace
}

detach_ours() {
    out "info ours_bounces=$(cat $DBG/bounces) ours_map_failures=$(cat $DBG/map_failures) ours_hiwater=$(cat $DBG/used_hiwater)"
    echo "$dev" > $DBG/detach
    rmmod xen_swiotlb_rs
}

insmod $B/odp_umem.ko
insmod $B/bench/xendma_bench.ko
info
case $mode in
direct)
    floor
    bind_dmb || out "error bind $dev"
    dmb direct 64
    if attach_ours ours; then
        dmb ours 64
        trace_cost ours
        pressure ours "$(cat $DBG/nslabs)"
        detach_ours
    fi
    out "odp $($XB odp "$odp_dev" 64 3 2>&1 | tr '\n' '#')"
    ;;
kernel)
    bind_dmb || out "error bind $dev"
    dmb kernel 64
    pressure kernel "$(cat /sys/kernel/debug/swiotlb/io_tlb_nslabs)"
    ;;
xen)
    floor
    bind_dmb || out "error bind $dev"
    dmb kernel-xen 64
    pressure kernel-xen "$(cat /sys/kernel/debug/swiotlb/io_tlb_nslabs)"
    if attach_ours ours-xen; then
        dmb ours-xen 64
        trace_cost ours-xen
        pressure ours-xen "$(cat $DBG/nslabs)"
        detach_ours
    fi
    ;;
*) out "error unknown mode '$mode'" ;;
esac
dmesg | grep -iE 'swiotlb|software IO TLB|xen_swiotlb_rs|odp_umem|xendma_bench|BUG|WARNING|Oops' | sed 's/^/@@B log /'
