#!/usr/bin/env bash
# Builds a busybox initramfs for the test VMs.
#   initramfs.sh OUT.cpio.gz MODULE_DIR [xen]
# MODULE_DIR holds the .ko files to load; with "xen", the image is a dom0 one: it also gets the Xen
# toolstack, the kernel and a nested plain initramfs for the domU.
. "$(dirname "$0")/lib.sh"

out=$(realpath -m "$1") moddir=$(realpath "$2") kind=${3:-plain}
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
if [ -d "$moddir/tests" ]; then
    cp -a "$moddir/tests/." "$stage/lib/xendma/tests/"
fi
# Tools the tests use (not tests themselves: /init runs everything in tests/, nothing in bin/).
if [ -d "$moddir/bin" ]; then
    mkdir -p "$stage/lib/xendma/bin"
    cp -a "$moddir/bin/." "$stage/lib/xendma/bin/"
fi

# The domU needs pcifront to see its passed-through device (dom0 images get it with the toolstack).
mkdir -p "$stage/lib/xendma-xen"
cp "$KSRC/drivers/pci/xen-pcifront.ko" "$stage/lib/xendma-xen/"

if [ "$kind" = xen ]; then
    "$REPO/scripts/xen-rootfs.sh" "$stage"
    cp "$REPO/selftests/guest/xen-domU.sh" "$stage/lib/xendma/xen-domU.sh"
    cp "$KSRC/arch/x86/boot/bzImage" "$stage/boot/bzImage"
    "$0" "$stage/boot/domU.cpio.gz" "$moddir" plain
fi

(cd "$stage" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1 > "$out.tmp")
mv "$out.tmp" "$out"
