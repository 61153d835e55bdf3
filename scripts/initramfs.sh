#!/usr/bin/env bash
# Builds a busybox initramfs for the test VMs.
#   initramfs.sh OUT.cpio.gz MODULE_DIR [plain|xen|stock-plain|stock-xen|lockdown|stock-lockdown] [TOOLS]
# MODULE_DIR holds the .ko files to load; with "xen", the image is a dom0 one: it also gets the Xen
# toolstack, the kernel and a nested plain initramfs for the domU. The stock- kinds are for Debian's
# stock kernel (scripts/stock-kernel.sh): its own modules that the lanes need (nvme; Xen's backends
# and frontends) come from its packages, and the test programs from PROG_DIR (default MODULE_DIR),
# since the kernel-independent programs are built once, with the test modules. The lockdown kinds
# (MODULE_DIR: a production build) add the lockdown program and, beside each module, an unsigned
# copy (unsigned/) and one signed with a key no kernel trusts (otherkey/); with "lockdown" (the test
# kernel) the module itself is signed with the kernel's key, as modules_install signs it.
# TOOLS (comma-separated: trace-cmd, bpftrace) adds the host's tracing programs with their libraries,
# for the documented commands of Documentation/tracing.rst (xen_swiotlb_attach runs them); a nested
# domU image gets none (bpftrace's libraries alone are about 200 MB).
. "$(dirname "$0")/lib.sh"

out=$(realpath -m "$1") moddir=$(realpath "$2") kind=${3:-plain} tools=${4:-}
progdir=$(realpath "${PROG_DIR:-$2}")
stock=
case $kind in
plain|xen|lockdown) ;;
stock-plain|stock-xen|stock-lockdown) stock=$(cat "$STOCK/release") || die "no stock kernel: run scripts/stock-kernel.sh" ;;
*) die "initramfs.sh: unknown kind $kind" ;;
esac
MODULES=(xen_swiotlb_rs odp_umem)
stage=$(mktemp -d "$BUILD/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,etc,proc,sys,dev,tmp,root,boot,lib/xendma/tests,usr/bin,usr/sbin,var/log,run}
cp /bin/busybox "$stage/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
done
cp "$REPO/selftests/guest/init" "$stage/init"
for m in "${MODULES[@]}"; do
    cp "$moddir/$m.ko" "$stage/lib/xendma/"
done
printf '%s\n' "${MODULES[@]}" > "$stage/lib/xendma/modules.order"
# The C API's test driver, which its test program loads (not in modules.order); CDRV_DIR names
# the build that has it when MODULE_DIR has none (the modules DKMS built).
cdrvdir=${CDRV_DIR:-$moddir}
if [ -d "$cdrvdir/cdrv" ]; then
    cp -a "$cdrvdir/cdrv" "$stage/lib/xendma/cdrv"
fi
if [ -d "$progdir/tests" ]; then
    cp -a "$progdir/tests/." "$stage/lib/xendma/tests/"
fi
# Tools the tests use (not tests themselves: /init runs everything in tests/, nothing in bin/).
if [ -d "$progdir/bin" ]; then
    mkdir -p "$stage/lib/xendma/bin"
    cp -a "$progdir/bin/." "$stage/lib/xendma/bin/"
fi

# The domU needs pcifront to see its passed-through device (dom0 images get it with the toolstack).
mkdir -p "$stage/lib/xendma-xen"
if [ -n "$stock" ]; then
    # /init loads lib/xendma-stock (in its order file) before the project's modules.
    echo "$stock" > "$stage/lib/xendma/stock"
    # The same modules with the test devices, for the programs that need them (build-stock.sh).
    mkdir -p "$stage/lib/xendma/testdev"
    for m in "${MODULES[@]}"; do
        cp "$moddir/testdev/$m.ko" "$stage/lib/xendma/testdev/"
    done
    # The stock-iommu lane's program (the stock-qemu lane's image boots that lane too).
    install -m 755 "$REPO/selftests/iommu/iommu_dma.sh" "$stage/lib/xendma/iommu_dma"
    # ext4 mounts odp_cdrv_test's ext2 filesystem (Debian builds no ext2 driver).
    "$REPO/scripts/stock-modules.sh" "$stage/lib/xendma-stock" nvme ext4
    "$REPO/scripts/stock-modules.sh" "$stage/lib/xendma-xen" xen-pcifront
else
    cp "$KSRC/drivers/pci/xen-pcifront.ko" "$stage/lib/xendma-xen/"
fi

if [ -n "$tools" ]; then
    progs=()
    for t in ${tools//,/ }; do
        p=$(command -v "$t") || die "initramfs.sh: $t is not installed (scripts/setup.sh installs it)"
        install -m 0755 "$p" "$stage/usr/bin/$t"
        progs+=("$p")
    done
    install_libs "$stage" "${progs[@]}"
fi

case $kind in
lockdown|stock-lockdown)
    install -m 755 "$REPO/selftests/lockdown/lockdown.sh" "$stage/lib/xendma/lockdown"
    mkdir -p "$stage/lib/xendma/unsigned" "$stage/lib/xendma/otherkey"
    key=$(untrusted_key)
    for m in "${MODULES[@]}"; do
        cp "$moddir/$m.ko" "$stage/lib/xendma/unsigned/"
        cp "$moddir/$m.ko" "$stage/lib/xendma/otherkey/"
        sign_module "$key" "$key" "$stage/lib/xendma/otherkey/$m.ko"
        if [ "$kind" = lockdown ]; then
            sign_module "$KSRC/certs/signing_key.pem" "$KSRC/certs/signing_key.x509" "$stage/lib/xendma/$m.ko"
        fi
    done
    if [ "$kind" = lockdown ]; then
        for ko in "$stage"/lib/xendma/cdrv/*.ko; do
            [ -e "$ko" ] || continue
            sign_module "$KSRC/certs/signing_key.pem" "$KSRC/certs/signing_key.x509" "$ko"
        done
    fi
    ;;
xen)
    "$REPO/scripts/xen-rootfs.sh" "$stage"
    cp "$REPO/selftests/guest/xen-domU.sh" "$stage/lib/xendma/xen-domU.sh"
    cp "$KSRC/arch/x86/boot/bzImage" "$stage/boot/bzImage"
    "$0" "$stage/boot/domU.cpio.gz" "$moddir" plain
    ;;
stock-xen)
    XEN_MODULES=stock "$REPO/scripts/xen-rootfs.sh" "$stage"
    "$REPO/scripts/stock-modules.sh" "$stage/lib/xendma-xen" xen-evtchn xen-privcmd xenfs xen-gntdev \
        xen-gntalloc xen-pciback xen-pcifront
    cp "$REPO/selftests/guest/xen-domU.sh" "$stage/lib/xendma/xen-domU.sh"
    cp "$(stock_vmlinuz)" "$stage/boot/bzImage"
    PROG_DIR=$progdir "$0" "$stage/boot/domU.cpio.gz" "$moddir" stock-plain
    ;;
esac

(cd "$stage" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1 > "$out.tmp")
mv "$out.tmp" "$out"
