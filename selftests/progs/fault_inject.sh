#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# fault_inject: failures injected where the modules allocate and call Xen, the way the kernel's
# fault-injection framework does it (Documentation/fault-injection/). The test kernel has
# FAILSLAB and FAIL_PAGE_ALLOC; the test build makes each Xen exchange a fault point too.
#
# Each sweep runs one operation again and again with the N-th fault point of its task failed
# (/proc/thread-self/fail-nth through /lib/xendma/bin/fail_nth: every slab or page allocation and
# every armed fail_function probe counts), N = 1, 2, ... until the operation makes fewer than N:
#   a. insmod odp_umem.ko;
#   b. insmod xen_swiotlb_rs.ko with the lane's pool (its build, and under Xen PV the domain's
#      reservation unchanged after);
#   c. attach to xen_swiotlb_rs (sysfs) of an edu device bound to odp_umem_cdrv, whose driver must
#      be bound again after every failure;
#   d. the /dev/odp_umem fuzzer with a random fault point (an allocation) failed in each of its
#      calls (registration, faults, the C API; odp_fuzz with XENDMA_FUZZ_FAIL_NTH);
#   e. Xen PV: the exchange of a coherent buffer (odp_umem_cdrv's probe on our ops) and its
#      exchange back (the driver's unbind) failed, each its task's first exchange (fail-nth 1,
#      allocations not counted); the probe fails cleanly, the failure is logged, the domain's
#      reservation is the same after both.
# Every injected failure must end in an errno (or the operation succeeding without the failed
# allocation), the module loading or not as a whole, and the device and modules working after
# (a clean reload, attach and detach, the fuzzer's clean run that reads data back). The lane
# report adds the kernel log (no WARN, BUG, lockdep) and kmemleak. Prints "# injected: ..." per
# sweep and "fault_inject: N passed, M failed, K skipped"; exits 4 (skipped) where the kernel has
# no fault injection (Debian's stock kernel) or debugfs is locked down.
set -u

NAME=fault_inject
FI=/sys/kernel/debug
FAILNTH=/lib/xendma/bin/fail_nth
SW=xen_swiotlb_rs
SWP=/sys/module/$SW/parameters
SWD=/sys/kernel/debug/$SW
PCI=/sys/bus/pci/devices
injected_total=0
. /lib/xendma/bin/ktap.sh

if [ ! -e /proc/self/fail-nth ] || [ ! -d $FI/failslab ]; then
	echo "# SKIP the kernel has no fault injection (CONFIG_FAULT_INJECTION, FAILSLAB: /proc/self/fail-nth)"
	exit 4
fi
if ! (echo 0 > $FI/failslab/probability) 2> /dev/null; then
	echo "# SKIP debugfs cannot be written (lockdown), so fault injection cannot be set up"
	exit 4
fi

# fail-nth needs the attributes to let the task's allocations through their own filters: sleeping
# allocations count (ignore-gfp-wait=N), order-0 pages too; no random failures (probability 0),
# no stack dumps in the log.
for d in failslab fail_page_alloc; do
	echo N > $FI/$d/ignore-gfp-wait
	echo 0 > $FI/$d/probability
	echo 0 > $FI/$d/verbose
done
echo 0 > $FI/fail_page_alloc/min-order
echo N > $FI/fail_page_alloc/ignore-gfp-highmem
echo 0 > $FI/fail_function/probability
echo 0 > $FI/fail_function/verbose
# The test build's KUnit suites would run at every insmod of the sweeps: filter them all out
# meanwhile (restored at the end; "*" is every suite).
KF=/sys/module/kunit/parameters/filter_glob
KOLD=
if [ -w $KF ]; then
	KOLD=$(cat $KF)
	echo xendma_fault_inject_none > $KF
fi
# The kernel's own allocation-failure reports are expected from here on (the lane report lets
# their stack dumps through between these two markers, and nothing else).
echo "xendma: fault injection begin" > /dev/kmsg

# Runs one sweep: "fail_nth N OP..." for N = 1, 2, ... (then growing by a quarter past 16, so
# that a pool build's hundreds of allocations stay a few dozen runs) until a run is not injected.
# After each run, AFTER (a shell function) checks and repairs; it returns non-zero on a problem.
# Sets $swept (runs), $injected, $bad (runs with a problem), $errnos (the errnos seen).
sweep() {  # first after op args...
	n=$1 after=$2
	shift 2
	first=$n swept=0 injected=0 bad=0 errnos=
	while [ $n -le 4000 ]; do
		out=$($FAILNTH $n "$@" 2>&1)
		swept=$((swept + 1))
		last=
		case $out in
		*injected=1*) injected=$((injected + 1)) ;;
		*injected=0*) last=1 ;;
		*) diag "fail_nth $n $*: $out"; bad=$((bad + 1)); break ;;
		esac
		e=${out#*errno=}
		e=${e%% *}
		case " $errnos " in *" $e "*) ;; *) errnos="$errnos $e" ;; esac
		if ! $after "$out"; then
			bad=$((bad + 1))
			diag "problem after the failure of fault point $n: $out"
			[ $bad -ge 5 ] && break
		fi
		# The first run that reached no failure point did the whole operation: done.
		[ -n "$last" ] && break
		if [ $((n - first)) -lt 16 ]; then n=$((n + 1)); else n=$((n + (n - first) / 4)); fi
	done
	injected_total=$((injected_total + injected))
	diag "injected: $injected failures in $swept runs (errnos:$errnos)"
}

# The fault points of the kernel's module loader before the module's init: a full load under
# fail-nth, whose init records the task's counter (parameter init_fail_nth of the test build).
# The sweeps of an insmod start after them: those steps (reading the file, the trace events'
# fields, sysfs) are the kernel's, and 6.12 WARNs when some of those allocations fail.
loader_points() {  # module name, module.ko, params
	out=$($FAILNTH 1000000 insmod "$2" "$3" 2>&1)
	left=$(cat /sys/module/$1/parameters/init_fail_nth 2>/dev/null)
	loaded $1 && rmmod $1
	case $out:$left in
	*rc=0*:[1-9]*) echo $((1000000 - left)) ;;
	*) diag "a full insmod of $1 under fail-nth: '$out', init_fail_nth '$left'" >&2; echo 0 ;;
	esac
}

# --- a. insmod odp_umem ----------------------------------------------------------------------------
after_odp() {  # loaded as a whole or not at all; unload it again
	if loaded odp_umem; then
		case $1 in *rc=0*) ;; *) diag "odp_umem loaded although insmod failed"; return 1 ;; esac
		# A failed debugfs directory is not an error (the kernel's rule for debugfs): noted only.
		[ -e /sys/kernel/debug/odp_umem ] || diag "odp_umem loaded without its debugfs counters ($1)"
		rmmod odp_umem || return 1
	else
		case $1 in *rc=0*) diag "insmod said 0 but odp_umem is not loaded"; return 1 ;; esac
	fi
	return 0
}
if loaded odp_umem && rmmod odp_umem; then
	pre=$(loader_points odp_umem /lib/xendma/odp_umem.ko "")
	[ "$pre" -gt 0 ] || result 1 "a. count the loader's fault points before odp_umem's init"
	sweep $((pre + 1)) after_odp insmod /lib/xendma/odp_umem.ko
	check "a. insmod odp_umem with fault point $first..$n failed in turn (the loader's first $pre are the kernel's): $injected injected, all survived" \
		[ $bad = 0 -a $injected -gt 0 ]
	insmod /lib/xendma/odp_umem.ko
	check "a. odp_umem loads cleanly after the sweep" loaded odp_umem
else
	result 1 "a. unload odp_umem for its sweep"
fi

# --- b. insmod xen_swiotlb_rs (the pool build, and under Xen PV its exchanges) -------------------------
XENP=$(cat $SWP/expect_xen 2>/dev/null)
P0="pool_mb=$(cat $SWP/pool_mb 2>/dev/null) dma_bits=$(cat $SWP/dma_bits 2>/dev/null)"
PV=
grep -q "PV" /sys/hypervisor/guest_type 2>/dev/null && PV=1
[ -z "$PV" ] && [ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ] && [ ! -e /sys/hypervisor/guest_type ] && PV=1
reservation() {  # the domain's pages, empty outside Xen
	v=$(cat $SWD/domain_pages 2>/dev/null)
	case $v in '' | *[!0-9]*) ;; *) echo "$v" ;; esac
}
RES0=$(reservation)
after_sw() {
	if loaded $SW; then
		case $1 in *rc=0*) ;; *) diag "$SW loaded although insmod failed"; return 1 ;; esac
		# A failed debugfs directory is not an error (the kernel's rule for debugfs): noted, and
		# then the sysfs interface must be there; else debugfs must read no device attached.
		if [ ! -e $SWD ]; then
			diag "$SW loaded without its debugfs directory ($1)"
			[ -e /sys/module/$SW/attach ] || { diag "$SW loaded, no sysfs attach"; rmmod $SW; return 1; }
		else
			[ "$(cat $SWD/attached 2>/dev/null)" = 0 ] || { diag "$SW loaded, attached unreadable"; rmmod $SW; return 1; }
		fi
		rmmod $SW || return 1
	else
		case $1 in *rc=0*) diag "insmod said 0 but $SW is not loaded"; return 1 ;; esac
	fi
	return 0
}
if [ "$(cat $SWD/attached 2>/dev/null)" = 0 ] && rmmod $SW; then
	pre=$(loader_points $SW /lib/xendma/$SW.ko "${XENP:+expect_xen=$XENP} $P0")
	[ "$pre" -gt 0 ] || result 1 "b. count the loader's fault points before $SW's init"
	sweep $((pre + 1)) after_sw insmod /lib/xendma/$SW.ko "${XENP:+expect_xen=$XENP} $P0"
	check "b. insmod $SW ($P0) with fault point $first..$n failed in turn (the loader's first $pre are the kernel's): $injected injected, all survived" \
		[ $bad = 0 -a $injected -gt 0 ]
	insmod /lib/xendma/$SW.ko ${XENP:+expect_xen=$XENP} $P0
	check "b. $SW loads cleanly after the sweep ($P0)" loaded $SW
	if [ -n "$RES0" ]; then
		check "b. Xen: the domain's reservation is intact ($RES0 -> $(reservation) pages)" \
			[ "$(reservation)" = "$RES0" ]
	fi
else
	result 1 "b. unload $SW for its sweep (nothing attached)"
fi

# --- c. attach of a device with a driver (odp_umem_cdrv on an edu) -------------------------------------
# Whatever fails, the device must end with its driver bound again: attached (then detached here)
# or not attached at all.
# The device is held enabled (its sysfs "enable", taken while no driver is bound) through the
# sweep: the driver's probe after each attach then finds it enabled and does not route its
# interrupt again. That routing evaluates the firmware's ACPI _PRT method, and ACPICA does not
# survive every failed allocation there (6.12: "Could not update object reference count", then a
# use-after-free KASAN reports later in the same method): the kernel's bug, not the attach's.
CDRV=/lib/xendma/cdrv/odp_umem_cdrv.ko
CDRVD=/sys/bus/pci/drivers/odp_umem_cdrv
cdrv_edu() {  # the edu odp_umem_cdrv is bound to (the last one), empty if none
	e=
	for d in $CDRVD/*:*; do [ -e "$d" ] && e=${d##*/}; done
	echo "$e"
}
EDU=
HELD=
if [ -f $CDRV ] && loaded $SW && insmod $CDRV; then
	EDU=$(cdrv_edu)
fi
if [ -n "$EDU" ] && echo $EDU > $CDRVD/unbind; then
	if echo 1 > $PCI/$EDU/enable; then HELD=1; else diag "$EDU could not be held enabled: its probes route its interrupt under injection"; fi
	echo $EDU > $CDRVD/bind || diag "$EDU could not be bound to odp_umem_cdrv again"
	[ "$(driver_of $EDU)" = odp_umem_cdrv ] || EDU=
fi
after_attach() {
	if grep -q "^$EDU " $SWD/devices 2>/dev/null; then
		case $1 in *rc=0*) ;; *) diag "$EDU attached although the write failed"; return 1 ;; esac
		echo $EDU > /sys/module/$SW/detach || return 1
	else
		case $1 in *rc=0*) diag "the write said 0 but $EDU is not attached"; return 1 ;; esac
	fi
	[ "$(driver_of $EDU)" = odp_umem_cdrv ] ||
		{ diag "$EDU is left with driver '$(driver_of $EDU)'"; return 1; }
	return 0
}
if [ -z "$EDU" ]; then
	skip "c. attach under fault injection" "no edu device could be bound to odp_umem_cdrv here"
else
	acpi0=$(dmesg | grep -c "ACPI Error")
	sweep 1 after_attach write /sys/module/$SW/attach $EDU
	acpi=$(($(dmesg | grep -c "ACPI Error") - acpi0))
	check "c. no injected failure reached ACPICA (the device held enabled: '$HELD', ACPI errors logged: $acpi)" \
		[ $acpi = 0 ]
	check "c. attach $EDU (driver odp_umem_cdrv) with fault point 1..$n failed in turn: $injected injected, the driver bound again each time" \
		[ $bad = 0 -a $injected -gt 0 ]
	echo $EDU > /sys/module/$SW/attach && echo $EDU > /sys/module/$SW/detach
	rc=$?
	drv=$(driver_of $EDU)
	check "c. $EDU attaches and detaches cleanly after the sweep, driver '$drv'" \
		[ $rc = 0 -a "$drv" = odp_umem_cdrv ]
fi
if [ -n "$HELD" ] && loaded odp_umem_cdrv && echo $EDU > $CDRVD/unbind; then
	echo 0 > $PCI/$EDU/enable
fi
loaded odp_umem_cdrv && rmmod odp_umem_cdrv

# --- d. odp_umem's ioctls and the C API ---------------------------------------------------------
if [ -e /dev/odp_umem ]; then
	# The slab and page allocations of each call are its fault points. (Arming the HMM fault in
	# fail_function would add nothing: see e. for why fail-nth never reaches it.)
	echo "# d. odp_fuzz with a fault point failed in each call"
	XENDMA_FUZZ_FAIL_NTH=1 XENDMA_FUZZ_ITERS=1500 /lib/xendma/tests/odp_fuzz > /tmp/fi_fuzz 2>&1
	rc=$?
	sed 's/^/#   /' /tmp/fi_fuzz
	inj=$(sed -n 's/^# injected: \([0-9]*\).*/\1/p' /tmp/fi_fuzz)
	check "d. odp_fuzz under injected failures: every result documented, data read back intact (rc $rc)" \
		[ $rc = 0 ]
	check "d. failures were injected into the odp_umem calls (${inj:-none})" [ "${inj:-0}" -gt 0 ]
	injected_total=$((injected_total + ${inj:-0}))
else
	skip "d. odp_umem calls under fault injection" "no /dev/odp_umem (production build)"
fi

# --- e. Xen PV: the exchanges of a coherent buffer fail ------------------------------------------
# The test build makes each Xen exchange a fault point of its task (a fault attribute of the
# module's own, consulted in task context; so a- c. above fail exchanges too in a PV guest). Here
# one exchange is failed on purpose: the coherent buffer odp_umem_cdrv's probe allocates for the
# 28-bit edu on our ops (the attach runs the probe), and its exchange back when the driver goes
# (the detach). The write runs with fail-nth 1 while allocations do not count (failslab's cache
# filter on with no cache marked, no page order counted), so its task's first exchange fails.
# (fail_function cannot do this on the test kernel: its kprobes are int3-based, x86 runs a
# kernel int3 handler as an NMI, where fail-nth is not consulted, and with a probability it takes
# the crng lock there, which lockdep reports as an inconsistent lock state.)
only_exchanges() {  # Y: only the exchanges count for fail-nth; N: every allocation again
	echo $1 > $FI/failslab/cache-filter
	if [ $1 = Y ]; then echo 11 > $FI/fail_page_alloc/min-order; else echo 0 > $FI/fail_page_alloc/min-order; fi
}
fail_first_exchange() {  # file value: the write, with its task's first exchange failed
	only_exchanges Y
	$FAILNTH 1 write "$1" "$2" 2>&1
	only_exchanges N
}
if [ -z "$PV" ]; then
	skip "e. failed exchanges of a coherent buffer" "not a Xen PV guest: no exchange is made"
else
	EDU=
	if [ -f $CDRV ] && insmod $CDRV; then
		EDU=$(cdrv_edu)
	fi
	if [ -z "$EDU" ]; then
		result 1 "e. bind odp_umem_cdrv to an edu device"
	else
		out=$(fail_first_exchange /sys/module/$SW/attach $EDU)
		drv=$(driver_of $EDU)
		m=$(sed -n "s/^$EDU mappings=\([0-9]*\).*/\1/p" $SWD/devices)
		case $out in
		*rc=0*injected=1*)
			check "e. the exchange for the probe's coherent buffer failed ($out): the attach succeeded, the probe failed (driver '$drv'), mappings '$m'" \
				[ -z "$drv" -a "$m" = 0 ]
			injected_total=$((injected_total + 1)) ;;
		*) result 1 "e. the attach with its first exchange failed: $out" ;;
		esac
		check "e. the domain's reservation is intact after the failed exchange ($RES0 -> $(reservation))" \
			[ "$(reservation)" = "$RES0" ]
		echo $EDU > /sys/module/$SW/detach
		# Attached again with no failure; then the exchange back fails as the driver goes.
		echo $EDU > /sys/module/$SW/attach
		exch=$(sed -n "s/^$EDU .*exchanged=\([0-9]*\).*/\1/p" $SWD/devices)
		if [ "${exch:-0}" -gt 0 ]; then
			before=$(dmesg | grep -c 'the exchange back failed')
			out=$(fail_first_exchange /sys/module/$SW/detach $EDU)
			logged=$(($(dmesg | grep -c 'the exchange back failed') - before))
			case $out in
			*rc=0*injected=1*)
				check "e. the exchange back failed at the driver's unbind ($out): the detach succeeded, logged $logged" \
					[ "$logged" -gt 0 ]
				injected_total=$((injected_total + 1)) ;;
			*) result 1 "e. the detach with its first exchange (back) failed: $out" ;;
			esac
			check "e. the domain's reservation is intact after the exchange back ($RES0 -> $(reservation))" \
				[ "$(reservation)" = "$RES0" ]
		else
			result 1 "e. the probe's coherent buffer was exchanged on our ops (exchanged=${exch:-none})"
			echo $EDU > /sys/module/$SW/detach
		fi
	fi
	loaded odp_umem_cdrv && rmmod odp_umem_cdrv
fi

# Whatever happened, the modules are loaded again as /init loaded them.
loaded odp_umem || insmod /lib/xendma/odp_umem.ko
loaded $SW || insmod /lib/xendma/$SW.ko ${XENP:+expect_xen=$XENP} $P0
check "both modules loaded at the end" sh -c "grep -q '^odp_umem ' /proc/modules && grep -q '^$SW ' /proc/modules"
echo "xendma: fault injection end" > /dev/kmsg
if [ -w $KF ]; then
	case $KOLD in '' | '(null)') echo '*' > $KF ;; *) echo "$KOLD" > $KF ;; esac
fi
diag "injected failures survived in this lane: $injected_total"
finish
