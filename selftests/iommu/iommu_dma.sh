#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# iommu_dma: xen_swiotlb_rs refuses a device whose DMA the kernel's iommu-dma path handles (the DMA
# API never calls a per-device dma_map_ops there, so an attach would do nothing), and the refusal
# leaves the device working. Run by the stock-iommu lane only: Debian's stock kernel in a plain VM
# with QEMU's intel-iommu, booted with intel_iommu=on (every PCI device in an IOMMU group whose
# default domain is DMA), the production xen_swiotlb_rs loaded.
#   a. the edu (00:03.0, no driver) and the nvme (00:04.0, nvme driver) are each in an IOMMU
#      group of type DMA; attaching either (sysfs) fails with EOPNOTSUPP, the log names the
#      device, neither is listed in devices, the nvme keeps its driver;
#   b. the nvme still moves data on the kernel's iommu-dma path after the refusal: 4 MiB written
#      and read back with O_DIRECT, same md5sum;
#   c. the edu's group switched to identity (the kernel's iommu=pt, per group): dma-direct, and the
#      attach succeeds and lists it; detached; its group back to DMA: refused again.
# Prints KTAP lines and "iommu_dma: N passed, M failed, K skipped"; exits non-zero on a failure.
set -u
NAME=iommu_dma
. /lib/xendma/bin/ktap.sh
MOD=xen_swiotlb_rs
SYS=/sys/module/$MOD
PCI=/sys/bus/pci/devices
EDU=0000:00:03.0
NVME=0000:00:04.0
TMP=/tmp/$NAME
mkdir -p "$TMP"

group_of() { basename "$(readlink "$PCI/$1/iommu_group" 2>/dev/null)" 2>/dev/null; }
gtype() { cat "/sys/kernel/iommu_groups/$(group_of "$1")/type" 2>/dev/null; }
listed() { grep -q "^$1 " $SYS/devices; }
disk() {
	c=$(ls "$PCI/$NVME/nvme" 2>/dev/null | head -n 1)
	[ -n "$c" ] && [ -b "/dev/${c}n1" ] && echo "/dev/${c}n1"
}
# A refused attach: EOPNOTSUPP, the kernel log names the device, it is not listed.
refused() {  # bdf what
	n0=$(dmesg | grep -c "$MOD: $1: not attached: it uses the IOMMU's DMA path")
	wr $SYS/attach "$1"
	rc=$?
	diag "attach $1: status $rc, '$werr'"
	check "$2: attach of $1 fails with EOPNOTSUPP" \
		sh -c "[ $rc != 0 ] && echo '$werr' | grep -q 'Operation not supported'"
	check "$2: the log names $1 and the iommu-dma path" \
		[ "$(dmesg | grep -c "$MOD: $1: not attached: it uses the IOMMU's DMA path")" -gt "$n0" ]
	check "$2: $1 is not listed in devices" eval "! listed $1"
}

echo "KTAP version 1"
diag "kernel $(uname -r); $(dmesg | grep -m1 -o 'DMAR: IOMMU enabled' || echo 'no DMAR line')"
check "$MOD is loaded" loaded $MOD
for d in $EDU $NVME; do
	diag "$d: iommu group '$(group_of $d)', type '$(gtype $d)', driver '$(driver_of $d)'"
	check "a. $d is in an IOMMU group whose default domain is DMA" \
		sh -c "case '$(gtype $d)' in DMA|DMA-FQ) true ;; *) false ;; esac"
done
refused $EDU "a. edu"
refused $NVME "a. nvme"
check "a. the nvme keeps its driver" [ "$(driver_of $NVME)" = nvme ]
check "a. nothing attached" [ -z "$(cat $SYS/devices)" ]

# b. the refused nvme on the kernel's iommu-dma path: data still arrives.
dd if=/dev/urandom of="$TMP/pat" bs=1M count=4 status=none
d=$(disk)
if [ -z "$d" ]; then
	result 1 "b. the nvme disk is there"
else
	dd if="$TMP/pat" of="$d" bs=1M seek=4 count=4 oflag=direct conv=notrunc status=none
	dd if="$d" of="$TMP/back" bs=1M skip=4 count=4 iflag=direct status=none
	check "b. nvme on iommu-dma after the refusal: 4 MiB written and read back ($d, O_DIRECT), same md5sum" \
		[ "$(md5sum < "$TMP/pat")" = "$(md5sum < "$TMP/back" 2>/dev/null)" ]
fi

# c. the same edu on an identity domain (dma-direct): attached; back on DMA: refused.
g=/sys/kernel/iommu_groups/$(group_of $EDU)/type
[ -n "$(driver_of $EDU)" ] && wr "$PCI/$EDU/driver/unbind" $EDU
wr "$g" identity
diag "c. $EDU group type -> identity: '$werr', now '$(gtype $EDU)'"
check "c. the edu's group is now identity" [ "$(gtype $EDU)" = identity ]
wr $SYS/attach $EDU
check "c. identity domain: attach of $EDU succeeds ('$werr')" [ -z "$werr" ]
check "c. $EDU is listed in devices" listed $EDU
wr $SYS/detach $EDU
check "c. detach of $EDU ('$werr')" [ -z "$werr" ]
wr "$g" DMA
diag "c. $EDU group type -> DMA: '$werr', now '$(gtype $EDU)'"
check "c. the edu's group is DMA again" [ "$(gtype $EDU)" = DMA ]
refused $EDU "c. DMA again"
rm -rf "$TMP"
finish
