#!/usr/bin/env bash
# make run [XEN=1]: boots a VM (plain, or Xen with our kernel as PV dom0) with the production
# modules loaded, prints what they report, and powers off.
. "$(dirname "$0")/lib.sh"

kind=${1:-plain}
"$REPO/scripts/setup.sh"
"$REPO/scripts/kernel.sh"
"$REPO/scripts/build-modules.sh" prod "$BUILD/mod-prod"
mkdir -p "$BUILD/run"
"$REPO/scripts/initramfs.sh" "$BUILD/run/$kind.cpio.gz" "$BUILD/mod-prod" "$([ "$kind" = xen ] && echo xen || echo plain)"
log "run: booting ($kind); the console log is $BUILD/run/$kind.console.log"
rc=0
"$REPO/scripts/vm.sh" "$kind" "$BUILD/run/$kind.cpio.gz" "$BUILD/run/$kind.console.log" 300 "xendma.lane=run" || rc=$?
sed -n '/== modules loaded ==/,/@@XENDMA-DONE/p' "$BUILD/run/$kind.console.log" | tr -d '\r' | grep -v '^@@'
[ $rc = 0 ] || die "the VM exited with status $rc (see $BUILD/run/$kind.console.log)"
