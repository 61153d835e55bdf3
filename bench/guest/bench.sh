#!/bin/sh
# The guest side of `make bench` (Documentation/bench.rst). Prints one "@@B ..." line per result
# on the console; scripts/bench.sh collects them and bench/report.py turns them into tables.
#   xendma.bench=direct  plain QEMU: copy alignment, dma_map_benchmark without bouncing, ODP vs GUP
#   xendma.bench=kernel  plain QEMU booted with swiotlb=<slots>,force: the memcpy floor, then the
#                        kernel's swiotlb and xen_swiotlb_rs (force_bounce) in the same boot, the
#                        two runs of each configuration back to back, alternating (the device on
#                        the kernel's ops, attached to ours for ours' runs, detached: back on the
#                        kernel's), then ours's trace events off and on, pool pressure on both
#   xendma.bench=profile plain QEMU with swiotlb=<slots>,force under an instruction-counting QEMU
#                        plugin: one run per direction of the kernel's swiotlb and of ours, 1 page
#   xendma.bench=place   plain QEMU with swiotlb=<slots>,force: one-page and 16-page to-device
#                        mappings of a buffer placed at 79 offsets, the kernel's swiotlb and ours
#                        (not part of make bench; Documentation/bench.rst, "Spells of the
#                        emulated machine")
#   xendma.bench=xen     Xen PV dom0 booted with swiotlb=<slots>,force: the same with swiotlb-xen
#                        (ours reported unavailable if the attach is refused), then the 2 MiB
#                        rows (xendma.bench=big runs only those; xendma.bench_big_kb: ours's
#                        segment_kb for them, 4096 by default; xendma.bench=pressure runs only
#                        ours's pool pressure rows, xendma.bench_reps times with seeds 42, 43, ...)
# xendma.bench_s (seconds per dma_map_benchmark run), xendma.bench_reps (repeats: pairs of passes),
# xendma.bench_dev (the PCI device the mappings are made for), xendma.bench_pool_mb.
arg() { sed -n "s/.*\<$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
mode=$(arg xendma.bench)
secs=$(arg xendma.bench_s)
reps=$(arg xendma.bench_reps)
dev=$(arg xendma.bench_dev)
pool_mb=$(arg xendma.bench_pool_mb)
odp_dev=$(arg xendma.bench_odp_dev)
# segment_kb of ours for the 2 MiB rows (default 4096).
big_kb=$(arg xendma.bench_big_kb)
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

# One dma_map_benchmark run: threads, granule (pages), direction; 64-bit mask. Sets map, unmap and
# their standard deviations map_sd, unmap_sd (µs); on failure returns non-zero, the output in r.
dmb_run() {
    r=$($DMB -t "$1" -s "$secs" -g "$2" -b 64 -d "$3" 2>&1) || return 1
    set -- $(echo "$r" | sed -n 's/average \(un\)*map latency(us):\([0-9.]*\) standard deviation:\([0-9.]*\)/\2 \3/p')
    map=$1 map_sd=$2 unmap=$3 unmap_sd=$4
}
# One dma_map_benchmark run of configuration $3 (granule, threads, direction) for
# implementation $1 in pair $2, reported as a "dmb" line.
dmb_one() {
    set -- "$1" "$2" $3
    if ! dmb_run "$4" "$3" "$5"; then
        out "error impl=$1 rep=$2 g=$3 t=$4 d=$5: $(echo "$r" | tr '\n' ' ')"
        return
    fi
    out "dmb impl=$1 rep=$2 g=$3 t=$4 d=$5 map=$map map_sd=$map_sd unmap=$unmap unmap_sd=$unmap_sd"
}
# The 18 configurations: granules 1, 16, 64 pages, 1 and 2 threads, the three directions (64-bit
# mask: what bounces is what the implementation decides, not the mask), as "g t d".
configs() {
    for g in 1 16 64; do for t in 1 2; do for d in 0 1 2; do echo "$g $t $d"; done; done; done
}
# One pass of one implementation over the configurations (the direct boot).
dmb_pass() {
    configs | while read -r c; do dmb_one "$1" "$2" "$c"; done
}
# The repeats of one implementation; the passes are the outer loop so that a slow spell of the
# host spreads over configurations.
dmb() {
    rep=1
    while [ $rep -le "$reps" ]; do
        dmb_pass "$1" $rep
        rep=$((rep + 1))
    done
}
# The kernel's implementation ($1) and ours ($2) in this boot, $3 pairs of passes over the
# configurations, the two runs of a configuration back to back: the emulated machine runs faster
# and slower for tens of seconds at a time, for both implementations alike (Documentation/bench.rst,
# "Spells of the emulated machine"), and a pair whose two runs lie a whole pass (a minute) apart
# catches such a spell in one run and not the other. Configuration c of pair p runs the kernel's
# first when p + c is even and ours first otherwise (k o, o k, k o, ...), so that neither always
# runs first and ours' runs of neighbouring configurations are adjacent: ours is attached once per
# two configurations. Host noise between boots stays out of the per-pair ratio (bench/report.py).
interleaved() {
    pair=1
    while [ $pair -le "$3" ]; do
        c=0 on=0
        for cfg in $(configs | tr ' ' ,); do
            if [ $(((pair + c) % 2)) = 0 ]; then order="$1 $2"; else order="$2 $1"; fi
            for impl in $order; do
                if [ "$impl" = "$2" ] && [ $on = 0 ]; then
                    ours_on "$impl" || return 1
                    on=1
                elif [ "$impl" != "$2" ] && [ $on = 1 ]; then
                    ours_off "$2" || return 1
                    on=0
                fi
                dmb_one "$impl" $pair "$(echo "$cfg" | tr , ' ')"
            done
            c=$((c + 1))
        done
        if [ $on = 1 ]; then ours_off "$2" || return 1; fi
        pair=$((pair + 1))
    done
}
# The kernel's implementation ($1) and ours ($2) in this boot, pass by pass: pair p runs the
# kernel's pass first when p is odd and ours first when p is even, so that neither always runs
# first; ours is attached for its pass only. $3: the pass (big_pass, ...), $4: the pairs.
paired() {
    pair=1
    while [ $pair -le "$4" ]; do
        if [ $((pair % 2)) = 1 ]; then order="$1 $2"; else order="$2 $1"; fi
        for impl in $order; do
            if [ "$impl" = "$2" ]; then
                ours_on "$impl" || return 1
                $3 "$impl" $pair
                ours_off "$impl" || return 1
            else
                $3 "$impl" $pair
            fi
        done
        pair=$((pair + 1))
    done
}

# The memcpy floor: three passes of 300 ms per point (the report takes the median), the passes
# being the outer loop like the repeats of dma_map_benchmark.
floor() {
    for pass in 1 2 3; do
        for g in 1 16 64; do
            for t in 1 2; do
                # 4 inline hot, 1 inline cold, 6 memcpy() hot, 3 memcpy() cold; the hot
                # destination one page off the source's alignment (alias_check says why)
                for flags in 4 1 6 3; do
                    out "floor $($XB memcpy $((g * 4096)) $t 300 $flags 2>&1)"
                done
            done
        done
    done
}

# Slow copies and alignment: 10 pairs of 300 ms of hot copies of 256 KiB and of 2 MiB (the
# kernel's memcpy()) between a source and a destination that are both aligned to their size (as
# the benchmark's buffer and a segment of ours are), and with the destination one page off that
# alignment, the order alternating.
#
# QEMU's software TLB, which every guest memory access goes through, is direct-mapped on the page
# number (64 entries at least, resized with use): a copy whose source and destination are a
# multiple of 64 pages apart (256 KiB) can evict its own entries on every access, the more often
# the smaller the TLB is at the time. So the 2 MiB copies are also made 64 pages (256 KiB) and
# 256 pages (1 MiB) off: if that is the cause, aligned copies are slow most often, 1 MiB off less,
# 256 KiB off least, and one page off never. (xendma.bench=alias runs only this, with
# xendma.bench_reps pairs.)
alias_check() {  # $1: pairs (10)
    for pair in $(seq "${1:-10}"); do
        for bytes in 262144 2097152; do
            offs="0 1"
            [ $bytes = 2097152 ] && offs="0 1 64 256"
            [ $((pair % 2)) = 0 ] && offs=$(echo $offs | tr ' ' '\n' | sort -rn | tr '\n' ' ')
            for off in $offs; do
                out "alias pair=$pair $($XB memcpy $bytes 1 300 $((2 | (off << 3))) 2>&1)"
            done
        done
    done
}

# Pool pressure at 70 % and 95 % of a pool of $1 slots, 3 s each (seed $3, 42 by default).
pressure() {
    impl=$1 slots=$2
    for pct in 70 95; do
        out "pressure impl=$impl $($XB pressure "$dev" "$slots" $pct 3000 "${3:-42}" 2>&1)"
    done
}

dmb_bound() {  # waits up to 5 s for dma_map_benchmark to be bound to $dev again
    i=0
    until [ "$(basename "$(readlink "$SYS/driver")")" = dma_map_benchmark ] || [ $i -ge 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ $i -lt 50 ]
}
# Loads xen_swiotlb_rs with force_bounce and any further parameters ($2...). Returns non-zero,
# after reporting why, if it fails.
load_ours() {
    impl=$1
    shift
    if ! insmod $B/xen_swiotlb_rs.ko pool_mb="$pool_mb" force_bounce=1 "$@" 2>/tmp/err; then
        out "unavailable impl=$impl reason=insmod${*:+ $*}: $(cat /tmp/err | tr '\n' ' ')"
        return 1
    fi
    out "info ours_pool_bytes=$(cat $DBG/pool_bytes) ours_nslabs=$(cat $DBG/nslabs)"
}
# Attaches $dev to xen_swiotlb_rs (dma_map_benchmark binds again through driver_override).
# Returns non-zero, after reporting why, if the attach is refused.
ours_on() {
    if ! echo "$dev" > $DBG/attach 2>/tmp/err; then
        # busybox echo: "sh: write error: Operation not supported"
        out "unavailable impl=$1 reason=attach refused: $(sed 's/.*write error: //' /tmp/err | tr '\n' ' ')"
        return 1
    fi
    dmb_bound || { out "error impl=$1 dma_map_benchmark did not bind on our ops"; return 1; }
}
# Detaches $dev: back on the kernel's ops, dma_map_benchmark bound again.
ours_off() {
    echo "$dev" > $DBG/detach
    dmb_bound || { out "error impl=$1 dma_map_benchmark did not bind after the detach"; return 1; }
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
                if ! dmb_run 1 1 $d; then
                    out "error impl=$impl trace pair=$pair events=$ev d=$d: $(echo "$r" | tr '\n' ' ')"
                    continue
                fi
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

# 2 MiB mappings, the case of Qubes OS's amdgpu in dom0 ("swiotlb buffer is full (sz: 2097152
# bytes)"): granules of 128, 256 and 512 pages, 1 thread, the three directions, $reps pairs of
# passes of the kernel's implementation ($1) and ours ($2, reloaded with segment_kb=4096: mappings
# up to 4 MiB, two 2 MiB ones per segment; a 2 MiB mapping then aliases the benchmark's 2 MiB-aligned
# buffer in a 512-entry QEMU TLB, which ours counts in aliased_maps: Documentation/bench.rst,
# "Placement that costs no room"), alternating as in paired; the copies' floor at those sizes,
# three passes. A failed run (the kernel's 256 KiB limit) is reported with dma_map_benchmark's
# error.
big_pass() {
    impl=$1 rep=$2
    for g in 128 256 512; do
        for d in 0 1 2; do
            # Ours counts its maps and those placed aliasing their buffer (debugfs, cumulative).
            a0=$(cat $DBG/aliased_maps 2>/dev/null) n0=$(cat $DBG/bounces 2>/dev/null)
            if ! dmb_run 1 $g $d; then
                out "bigfail impl=$impl rep=$rep g=$g d=$d error=$(echo "$r" | tr '\n' ' ' | tr -s ' ' '_')"
                continue
            fi
            placed=
            case $impl in ours*)
                a1=$(cat $DBG/aliased_maps 2>/dev/null) n1=$(cat $DBG/bounces 2>/dev/null)
                [ -n "$a0" ] && [ -n "$a1" ] && [ -n "$n0" ] && [ -n "$n1" ] &&
                    placed=" aliased=$((a1 - a0)) maps=$((n1 - n0))"
            esac
            out "big impl=$impl rep=$rep g=$g d=$d map=$map unmap=$unmap$placed"
        done
    done
}
big() {
    for pass in 1 2 3; do
        for g in 128 256 512; do
            for flags in 4 6; do
                out "floor $($XB memcpy $((g * 4096)) 1 300 $flags 2>&1)"
            done
        done
    done
    load_ours "$2-2m" segment_kb=${big_kb:-4096} || return
    out "info ours_2m_segment_kb=$(cat /sys/module/xen_swiotlb_rs/parameters/segment_kb 2>/dev/null) ours_2m_segments=$(grep -c . $DBG/segments 2>/dev/null)"
    paired "$1" "$2" big_pass "$reps"
    out "info ours_2m_map_failures=$(cat $DBG/map_failures) ours_2m_hiwater=$(cat $DBG/used_hiwater)"
    rmmod xen_swiotlb_rs
}

unload_ours() {
    out "info ours_bounces=$(cat $DBG/bounces) ours_map_failures=$(cat $DBG/map_failures) ours_hiwater=$(cat $DBG/used_hiwater)"
    rmmod xen_swiotlb_rs
}
# The kernel's implementation ($1, the device's ops at boot) against ours ($2) in this boot:
# pairs of passes, each configuration's two runs back to back, then ours's trace events and pool
# pressure on both.
against() {
    bind_dmb || out "error bind $dev"
    if ! load_ours "$2"; then
        dmb "$1"
        pressure "$1" "$(cat /sys/kernel/debug/swiotlb/io_tlb_nslabs)"
        return
    fi
    interleaved "$1" "$2" "$reps"
    pressure "$1" "$(cat /sys/kernel/debug/swiotlb/io_tlb_nslabs)"
    if ours_on "$2"; then
        out "info ours_devices=$(tr ' \n' ',;' < $DBG/devices)"
        trace_cost "$2"
        pressure "$2" "$(cat $DBG/nslabs)"
        ours_off "$2"
    fi
    unload_ours
}

# The instruction profile (scripts/bench.sh boots this with the QEMU plugin
# bench/profile/insn_profile.c, whose windows end at every sync(2)): one page, one thread, each
# direction, the kernel's swiotlb and ours, one window per run; then the addresses of ours's
# functions for the host to name.
profile() {
    bind_dmb || out "error bind $dev"
    load_ours ours || return
    marks=0
    for d in 0 1 2; do
        for impl in kernel ours; do
            if [ $impl = ours ]; then ours_on ours || return; fi
            sync
            if ! dmb_run 1 1 $d; then
                out "error profile impl=$impl d=$d: $(echo "$r" | tr '\n' ' ')"
            fi
            sync
            marks=$((marks + 2))
            # The plugin numbers windows from 0: the one this run ended is marks - 1.
            out "profile window=$((marks - 1)) impl=$impl d=$d map=$map unmap=$unmap"
            if [ $impl = ours ]; then ours_off ours; fi
        done
    done
    grep '\[[a-z_0-9]*\]$' /proc/kallsyms | sed 's/^/@@B sym /'
    unload_ours
}

# The ODP part of the instruction profile (no swiotlb=force: nothing bounces): one pass of ours
# at 1 and 16 pages per fault over 16 MiB, then the same with the kernel's test_hmm mirror, each
# pass a window of the plugin (the program syncs before and after it); then ours's addresses.
profile_odp() {
    marks=0
    for kind in odp hmm; do
        if [ $kind = hmm ] && ! insmod $B/bench/test_hmm.ko 2>/tmp/err; then
            out "error test_hmm: insmod: $(tr '\n' ' ' < /tmp/err)"
            break
        fi
        if [ $kind = odp ]; then
            r=$($XB odp-profile "$odp_dev" 16 2>&1)
        else
            r=$($XB hmm-profile 16 2>&1)
        fi
        rc=$?
        # The program syncs four times; its passes end at the second and the fourth: windows
        # marks + 1 and marks + 3 (the plugin numbers windows from 0).
        echo "$r" | grep profile_pass | while read -r _ rest; do
            out "profile_odp window=$((marks + 1)) $rest"
            marks=$((marks + 2))
        done
        [ $rc = 0 ] || out "error profile_odp $kind: $(echo "$r" | tr '\n' ' ')"
        marks=$((marks + 4))
    done
    # Every module's functions (ours, test_hmm, the benchmark driver), while all are loaded.
    grep '\[[a-z_0-9]*\]$' /proc/kallsyms | sed 's/^/@@B sym /'
    rmmod test_hmm 2>/dev/null
}

insmod $B/odp_umem.ko
insmod $B/bench/xendma_bench.ko
info
case $mode in
direct)
    alias_check
    bind_dmb || out "error bind $dev"
    dmb direct
    out "odp $($XB odp "$odp_dev" 64 3 2>&1 | tr '\n' '#')"
    # The kernel's own HMM mirror (lib/test_hmm.c), the same mechanism in C.
    if insmod $B/bench/test_hmm.ko 2>/tmp/err; then
        out "odp $($XB hmm 64 3 2>&1 | tr '\n' '#')"
        rmmod test_hmm
    else
        out "error test_hmm: insmod: $(tr '\n' ' ' < /tmp/err)"
    fi
    ;;
kernel)
    # The floor in the boot whose implementations it is compared with.
    floor
    against kernel ours
    ;;
profile) profile ;;
alias) alias_check "$reps" ;;
big)
    bind_dmb || out "error bind $dev"
    big kernel-xen ours-xen
    ;;
profile_odp) profile_odp ;;
place)
    # Offsets 0..63 pages, then every 64 pages up to 4 MiB: the distance from the buffer to the
    # mapping modulo every TLB size QEMU may pick (64 entries and up).
    offs="$(seq 0 63) $(seq 64 64 960)"
    bind_dmb || out "error bind $dev"
    load_ours ours || exit 0
    for pair in $(seq "$reps"); do
        for impl in kernel ours; do
            if [ $impl = ours ]; then ours_on ours || break; fi
            for g in 1 16; do
                for off in $offs; do
                    out "place impl=$impl pair=$pair $($XB place "$dev" $g 1 "$off" 100 2>&1)"
                done
            done
            if [ $impl = ours ]; then ours_off ours; fi
        done
    done
    # Then dma_map_benchmark itself at one page, one thread, 10 pairs alternating as in
    # paired: whether ours' fast and slow runs follow the time or the run.
    one_pass() {
        for d in 1 0; do
            dmb_run 1 1 $d && out "dmbp impl=$1 pair=$2 d=$d map=$map unmap=$unmap"
        done
    }
    paired kernel ours one_pass 10
    unload_ours
    ;;
pressure)
    bind_dmb || out "error bind $dev"
    load_ours ours-xen || exit 0
    if ours_on ours-xen; then
        r=0
        while [ $r -lt "$reps" ]; do
            pressure ours-xen "$(cat $DBG/nslabs)" $((42 + r))
            r=$((r + 1))
        done
        ours_off ours-xen
    fi
    unload_ours
    ;;
xen)
    floor
    alias_check
    against kernel-xen ours-xen
    big kernel-xen ours-xen
    ;;
*) out "error unknown mode '$mode'" ;;
esac
dmesg | grep -iE 'swiotlb|software IO TLB|xen_swiotlb_rs|odp_umem|xendma_bench|BUG|WARNING|Oops' | sed 's/^/@@B log /'
