#!/usr/bin/env bash
# Builds the modules for Debian's stock kernel, inside the sid chroot that carries the kernel's
# compiler, against the tree scripts/stock-kernel.sh prepared:
#   build-stock.sh OUT_DIR
# OUT_DIR gets the production modules, OUT_DIR/testdev/ the same modules with the test devices
# (XENDMA_TESTDEV=1: /dev/xendma_edu, /dev/odp_umem; no KUnit, which the stock kernel lacks).
# With CLIPPY=1 W=1, as the test build for 6.12. Fails on any compiler or clippy warning, and unless each module's vermagic names the stock kernel's release.
. "$(dirname "$0")/lib.sh"

out=$1
CHROOT=$STOCK/chroot
release=$(cat "$STOCK/release" 2>/dev/null) || die "no stock kernel prepared: run scripts/stock-kernel.sh"
kdir=/build/linux-stock
[ -f "$CHROOT$kdir/.xendma-prepared" ] || die "$CHROOT$kdir is not prepared: run scripts/stock-kernel.sh"

"$REPO/scripts/check-unsafe.sh" || die "unsafe code outside kext/"
mountpoint -q "$CHROOT/proc" || { mount -t proc proc "$CHROOT/proc"; trap 'umount "$CHROOT/proc" 2>/dev/null || true' EXIT; }
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$CHROOT$kdir/.config")

build() {  # variant (prod|testdev), output directory, make flags...
    local variant=$1 dest=$2 src=/build/src-stock-$1 log
    shift 2
    mkdir -p "$dest"
    copy_sources "$CHROOT$src"
    log=$dest/build.log
    # shellcheck disable=SC2086 # STOCK_MAKEFLAGS is a list of make arguments
    if ! in_chroot make -C "$kdir" M="$src" CC="$cc" HOSTCC="$cc" KERNELRELEASE="$release" CLIPPY=1 W=1 "$@" \
            ${STOCK_MAKEFLAGS:-} \
            modules > "$log" 2>&1; then
        tail -60 "$log"
        die "build of the $variant modules for $release failed (full log: $log)"
    fi
    if grep -E -i '(^|[^-])warning' "$log"; then
        die "the $variant build for $release is not warning-free (full log: $log)"
    fi
    for m in xen_swiotlb_rs odp_umem; do
        vm=$(/sbin/modinfo -F vermagic "$CHROOT$src/$m.ko" | cut -d' ' -f1)
        [ "$vm" = "$release" ] || die "$m.ko: vermagic $vm, but the stock kernel is $release"
        cp "$CHROOT$src/$m.ko" "$dest/"
    done
    # The C API's test driver (XENDMA_CDRV=1), in its own directory.
    rm -rf "${dest:?}/cdrv"
    if [ -f "$CHROOT$src/selftests/odp_cdrv/odp_umem_cdrv.ko" ]; then
        mkdir -p "$dest/cdrv"
        cp "$CHROOT$src/selftests/odp_cdrv/odp_umem_cdrv.ko" "$dest/cdrv/"
    fi
}
build prod "$out" XENDMA_CDRV=1
build testdev "$out/testdev" XENDMA_TESTDEV=1
log "build: stock modules for $release ok ($out, test devices in $out/testdev)"
