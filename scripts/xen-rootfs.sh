#!/usr/bin/env bash
# Usage: scripts/xen-rootfs.sh STAGING_DIR
#
# Copies into STAGING_DIR (the future root of a dom0 initramfs that already holds busybox) what the Xen 4.17
# toolstack needs to create a PV domU: xl, the C xenstored, xenconsoled, xen-init-dom0, the xenstore-* tools,
# their shared libraries (Xen's from the unpacked Debian packages, the rest from the host), a minimal
# /etc/xen/xl.conf and the run/lib/log directories; plus the Xen kernel modules into STAGING_DIR/lib/xendma-xen/.
# selftests/guest/xen-domU.sh drives all of it inside dom0.
#
# Environment: KSRC (built kernel tree), XENROOT (unpacked Xen packages, made by scripts/setup.sh) and
# XENDMA_CACHE, with their defaults from scripts/lib.sh.
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 STAGING_DIR" >&2; exit 2; }
STAGING=$1
[ -d "$STAGING" ] || { echo "xen-rootfs: $STAGING is not a directory" >&2; exit 1; }

XENBIN=usr/lib/xen-4.17/bin
LIBDIR=usr/lib/x86_64-linux-gnu

die() { echo "xen-rootfs: $*" >&2; exit 1; }
[ -x "$XENROOT/$XENBIN/xl" ] || die "$XENROOT/$XENBIN/xl missing: run scripts/setup.sh"

# Programs, by their path inside the unpacked tree. xenstored is the C one: it needs no OCaml runtime and no
# libm, and starts faster than oxenstored.
progs=("$XENBIN/xl" "$XENBIN/xenstored" "$XENBIN/xenconsoled" "$XENBIN/xen-init-dom0"
       "$XENBIN/libxl-save-helper" "$XENBIN/xenconsole" "usr/bin/xenstore")
xenstore_links=(xenstore-read xenstore-write xenstore-ls xenstore-list xenstore-rm xenstore-exists
                xenstore-watch xenstore-chmod)
modules=(drivers/xen/xen-evtchn.ko drivers/xen/xen-privcmd.ko drivers/xen/xenfs/xenfs.ko
         drivers/xen/xen-gntdev.ko drivers/xen/xen-gntalloc.ko drivers/xen/xen-pciback/xen-pciback.ko
         drivers/pci/xen-pcifront.ko)

mkdir -p "$STAGING/$XENBIN" "$STAGING/usr/sbin" "$STAGING/usr/bin" "$STAGING/$LIBDIR" "$STAGING/lib64" \
         "$STAGING/lib/xendma-xen" "$STAGING/etc/xen" "$STAGING/var/lib/xen" "$STAGING/var/lib/xenstored" \
         "$STAGING/var/log/xen/console" "$STAGING/var/run/xen" "$STAGING/var/run/xenstored" \
         "$STAGING/var/lock" "$STAGING/tmp" "$STAGING/dev/pts" "$STAGING/proc" "$STAGING/sys"

for p in "${progs[@]}"; do
    install -m 0755 "$XENROOT/$p" "$STAGING/$p"
done
for p in xl xenstored xenconsoled xen-init-dom0; do
    ln -sfn "../lib/xen-4.17/bin/$p" "$STAGING/usr/sbin/$p"
done
for l in "${xenstore_links[@]}"; do
    ln -sfn xenstore "$STAGING/usr/bin/$l"
done

# Shared libraries: Xen's from the unpacked tree first, then the host's.
LD_LIBRARY_PATH=$XENROOT/$LIBDIR:$XENROOT/usr/lib/xen-4.17/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
    install_libs "$STAGING" "${progs[@]/#/$XENROOT/}"

# No hotplug scripts: the domUs have neither disks nor NICs. dom0_mem is fixed, so no ballooning.
cat > "$STAGING/etc/xen/xl.conf" << 'EOF'
# written by xendma scripts/xen-rootfs.sh
autoballoon="off"
lockfile="/var/lock/xl"
EOF

# XEN_MODULES=stock: the caller brings the stock kernel's modules (scripts/stock-modules.sh).
[ "${XEN_MODULES:-}" = stock ] && exit 0
for m in "${modules[@]}"; do
    [ -f "$KSRC/$m" ] || die "$KSRC/$m missing (kernel not built with it as a module?)"
    install -m 0644 "$KSRC/$m" "$STAGING/lib/xendma-xen/$(basename "$m")"
done
