#!/usr/bin/env bash
# Boots the test kernel under QEMU (TCG) and writes the serial console to a log.
#   vm.sh plain|xen INITRAMFS LOG TIMEOUT_SECONDS "GUEST CMDLINE"
# plain: the kernel runs directly, with two edu devices (28-bit at 00:03.0, 32-bit at 00:05.0) and
#        an nvme device, 5 GiB of RAM of which 256 MiB below 4 GiB.
# xen:   Xen 4.17 runs with the kernel as PV dom0 (q35 + intel-iommu, so that the edu device at
#        00:03.0 can be passed through to a domU), with a second 28-bit edu at 00:05.0 for dom0,
#        and a second nvme controller at 00:06.0 (its own 64 MiB disk) for the domU.
. "$(dirname "$0")/lib.sh"

kind=$1 initrd=$2 log=$3 timeout_s=$4 cmdline=$5
# KERNEL: another kernel image (Debian's stock kernel for the stock- lanes).
kernel=${KERNEL:-$KSRC/arch/x86/boot/bzImage}
# TCG_THREAD=single: one host thread for all vCPUs in the plain VM too. Debian's stock kernel
# oopsed in one of two plain boots under multi-threaded TCG, before any module of ours was loaded
# (int3 in sched_clock_cpu while unpacking the initramfs: code being patched on one vCPU while the
# other ran it); single-threaded TCG runs one vCPU at a time.
tcg_thread=${TCG_THREAD:-multi}
# IOMMU=1: the plain VM gets QEMU's intel-iommu (first, so that every PCI device is behind it).
iommu=()
[ "${IOMMU:-0}" = 1 ] && iommu=(-device intel-iommu,intremap=off)
# QEMU_PLUGIN: a TCG plugin with its arguments (make bench's instruction profile, plain VM only).
plugin=()
[ -n "${QEMU_PLUGIN:-}" ] && plugin=(-plugin "$QEMU_PLUGIN")
# QEMU_QMP: a QMP socket at this path (make bench asks QEMU for its TCG counters through it).
qmp=()
[ -n "${QEMU_QMP:-}" ] && qmp=(-qmp "unix:$QEMU_QMP,server=on,wait=off")
# NVME_IMG: the plain VM's disk (a VM running beside another gets its own).
nvme=${NVME_IMG:-$BUILD/nvme.img}
[ -f "$nvme" ] || truncate -s 64M "$nvme"
nvme_domu=$BUILD/nvme-domU.img
[ -f "$nvme_domu" ] || truncate -s 64M "$nvme_domu"

common=(-nographic -no-reboot -smp 2 -monitor none -serial "file:$log" "${qmp[@]}"
        -device edu,addr=3
        -drive "file=$nvme,if=none,id=nvm,format=raw" -device nvme,serial=xendma0,drive=nvm,addr=4)
: > "$log"
case $kind in
plain)
    # 256 MiB below 4 GiB and the rest above: the kernel's swiotlb is then set up (memory beyond
    # 4 GiB) inside the low 256 MiB, where the edu device's 28-bit mask reaches it. With 5 GiB, most
    # memory lies above 4 GiB, out of reach of the second edu's 32-bit mask (00:05.0, after the
    # first so that the tests written for one edu keep taking 00:03.0).
    cmd=(qemu-system-x86_64 -machine q35,max-ram-below-4g=256M -accel "tcg,thread=$tcg_thread" -cpu max -m 5G
         "${iommu[@]}" "${plugin[@]}" "${common[@]}" -device edu,addr=5,dma_mask=0xffffffff
         -kernel "$kernel" -initrd "$initrd"
         -append "console=ttyS0 loglevel=5 log_buf_len=8M panic=-1 oops=panic $cmdline")
    ;;
xen)
    # A literal comma in a multiboot module's arguments is written ",,". Single-threaded TCG costs
    # no wall time here and keeps pcifront's 2 s handshake with dom0 safe when the host is busy;
    # rdrand seeds the guests' entropy at boot (xl waits for it); pmtmr=0 skips a 3 s PM-timer probe.
    cmd=(qemu-system-x86_64 -machine q35 -accel tcg,thread=single -device intel-iommu,intremap=off
         -cpu qemu64,+rdrand -m 2G "${common[@]}" -device edu,addr=5
         -drive "file=$nvme_domu,if=none,id=nvd,format=raw" -device nvme,serial=xendma1,drive=nvd,addr=6
         -kernel "$XENROOT/xen.bin"
         -append "console=com1 com1=115200,8n1 dom0_mem=768M,max:768M loglvl=all guest_loglvl=all iommu=verbose"
         -initrd "$kernel console=hvc0 earlyprintk=xen pmtmr=0 loglevel=5 log_buf_len=8M panic=-1 oops=panic ${cmdline//,/,,},$initrd")
    ;;
*) die "vm.sh: unknown kind $kind" ;;
esac
printf '%q ' "${cmd[@]}" > "$log.cmd"
rc=0
timeout --foreground -k 5 "$timeout_s" "${cmd[@]}" < /dev/null > "$log.qemu" 2>&1 || rc=$?
if [ $rc = 124 ] || [ $rc = 137 ]; then
    echo "vm.sh: timed out after ${timeout_s}s" >> "$log.qemu"
fi
exit $rc
