#!/usr/bin/env bash
# make run [XEN=1]: boots a VM (plain, or Xen with our kernel as PV dom0) and shows the modules at
# work: xen_swiotlb_rs bouncing an nvme disk's I/O (attached through sysfs, 4 MiB written and read
# back, compared), odp_umem mirroring 64 KiB of a process for the edu device (faults, an
# invalidation, device reads and writes checked), with the counters before and after; then detach
# and unload. xen_swiotlb_rs is the production build; odp_umem the build with its test device
# (/dev/odp_umem, no KUnit). The whole console log is kept in build/run/.
. "$(dirname "$0")/lib.sh"

kind=${1:-plain}
"$REPO/scripts/setup.sh"
"$REPO/scripts/kernel.sh"
"$REPO/scripts/build-modules.sh" prod "$BUILD/mod-prod"
"$REPO/scripts/build-modules.sh" testdev "$BUILD/mod-testdev"
mods=$BUILD/run/modules
rm -rf "$mods"
mkdir -p "$mods/bin"
cp "$BUILD/mod-prod/xen_swiotlb_rs.ko" "$BUILD/mod-testdev/odp_umem.ko" "$mods/"
gcc -static -O2 -Wall -Wextra -Werror -o "$mods/bin/odp_demo" "$REPO/tools/odp_demo.c"
"$REPO/scripts/initramfs.sh" "$BUILD/run/$kind.cpio.gz" "$mods" "$([ "$kind" = xen ] && echo xen || echo plain)"
log "run: booting ($kind); the console log is $BUILD/run/$kind.console.log"
rc=0
"$REPO/scripts/vm.sh" "$kind" "$BUILD/run/$kind.cpio.gz" "$BUILD/run/$kind.console.log" 600 "xendma.lane=run" || rc=$?
sed -n '/== modules loaded ==/,/@@XENDMA-DONE/p' "$BUILD/run/$kind.console.log" | tr -d '\r' |
    grep -v '^@@' | sed 's/^\[ *[0-9.]*\] //'
[ $rc = 0 ] || die "the VM exited with status $rc (see $BUILD/run/$kind.console.log)"
grep -q '^odp_umem: all data correct' "$BUILD/run/$kind.console.log" ||
    die "odp_umem's demonstration did not end with correct data (see $BUILD/run/$kind.console.log)"
grep -q 'read 4 MiB back (O_DIRECT): identical' "$BUILD/run/$kind.console.log" ||
    die "the nvme data did not come back identical (see $BUILD/run/$kind.console.log)"
grep -q 'the nvme round trip: bounces +[1-9]' "$BUILD/run/$kind.console.log" ||
    die "the nvme round trip did not bounce through xen_swiotlb_rs (see $BUILD/run/$kind.console.log)"
! grep -a -E 'WARNING:|BUG:|Oops|Call Trace:' "$BUILD/run/$kind.console.log" ||
    die "the kernel reported a problem (above; see $BUILD/run/$kind.console.log)"
