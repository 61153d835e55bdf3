#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# lockdown: what a kernel in lockdown (Secure Boot on Debian's kernels; here lockdown=integrity on
# the command line) does with our modules before any of them is loaded. Only the lockdown lanes'
# images carry this program, with three builds of each module in /lib/xendma:
#   NAME.ko           signed with the kernel's own key (the 6.12 test kernel; absent for the stock
#                     kernel, whose key is Debian's);
#   unsigned/NAME.ko  as the build leaves it;
#   otherkey/NAME.ko  signed with a key the kernel does not trust (a DKMS key not enrolled as a MOK).
# Checks: lockdown is "integrity"; the unsigned and the foreign-signed builds are refused with
# EPERM and the kernel's "Lockdown: insmod: unsigned module loading is restricted" message, and
# leave nothing loaded. The signed build is then loaded by /init, whose other programs run on it
# (xen_swiotlb_attach attaches and detaches through sysfs there).
set -u
NAME=lockdown
. /lib/xendma/bin/ktap.sh
msgs() { dmesg | grep -c 'Lockdown: insmod: unsigned module loading is restricted'; }

echo "KTAP version 1"
[ -e /sys/kernel/security/lockdown ] || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
state=$(cat /sys/kernel/security/lockdown 2>/dev/null)
diag "kernel $(uname -r), /sys/kernel/security/lockdown: '$state'"
check "the kernel is locked down: integrity" [ "$state" = "none [integrity] confidentiality" ]
for m in $(cat /lib/xendma/modules.order); do
	for kind in unsigned otherkey; do
		ko=/lib/xendma/$kind/$m.ko
		if [ ! -f "$ko" ]; then
			result 1 "$kind/$m.ko is in the image"
			continue
		fi
		n0=$(msgs)
		out=$(insmod "$ko" 2>&1)
		rc=$?
		diag "insmod $kind/$m.ko: status $rc, '$out'"
		check "$kind $m.ko refused" [ $rc != 0 ]
		case $out in *'Operation not permitted'*) st=0 ;; *) st=1 ;; esac
		result $st "$kind $m.ko: EPERM"
		# The kernel's notice is ratelimited (5 per 5 s burst): wait for it briefly.
		i=0
		while [ "$(msgs)" -le "$n0" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
		check "$kind $m.ko: the kernel says why (Lockdown: insmod: unsigned module loading is restricted)" \
			[ "$(msgs)" -gt "$n0" ]
		check "$kind $m.ko: not loaded" eval "! loaded $m"
	done
done
finish
