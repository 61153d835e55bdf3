#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# dkms's build command (dkms.conf):  dkms-build.sh KERNELRELEASE KERNEL_SOURCE_DIR
#
# Builds both modules for KERNELRELEASE. KERNEL_SOURCE_DIR (dkms passes /lib/modules/<release>/build)
# is used as it is when it carries the kernel's Rust metadata (a full build tree). A headers package
# does not (Debian's does not): then the tree is prepared once per release, from the linux-source
# package of the same series and version, with the kernel's own rustc (scripts/prepare-kdir.sh), in
# XENDMA_KDIR_CACHE/<release> (default /var/lib/xendma/kdir), and reused by later builds.
# Standalone: needs bash, make, the kernel's compilers, and this source tree.
set -euo pipefail

die() { printf 'xendma dkms-build: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'xendma dkms-build: %s\n' "$*" >&2; }

[ $# = 2 ] || die "usage: dkms-build.sh KERNELRELEASE KERNEL_SOURCE_DIR"
rel=$1 src=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -f "$src/.config" ] || die "$src/.config not found: install the headers of $rel (linux-headers-$rel)"
grep -qx 'CONFIG_RUST=y' "$src/.config" || die "the kernel $rel is built without CONFIG_RUST"

if [ -f "$src/rust/libkernel.rmeta" ]; then
    kdir=$src
    log "$src has the Rust metadata: building against it"
else
    series=$(echo "$rel" | sed -n 's/^\([0-9]*\.[0-9]*\)[.-].*/\1/p')
    tarball=/usr/src/linux-source-$series.tar.xz
    [ -f "$tarball" ] || die "$src has no Rust metadata (rust/*.rmeta), and $tarball is missing:" \
        "install linux-source-$series, the same version as the kernel's headers"
    # The source must be the kernel's own version (Debian: the same package version).
    if command -v dpkg-query > /dev/null; then
        hv=$(dpkg-query -W -f='${Version}' "linux-headers-$rel" 2>/dev/null || true)
        sv=$(dpkg-query -W -f='${Version}' "linux-source-$series" 2>/dev/null || true)
        if [ -n "$hv" ] && [ -n "$sv" ] && [ "$hv" != "$sv" ]; then
            die "linux-source-$series is $sv but linux-headers-$rel is $hv: install linux-source-$series=$hv"
        fi
    fi
    kdir=${XENDMA_KDIR_CACHE:-/var/lib/xendma/kdir}/$rel
    log "$src has no Rust metadata: preparing $kdir from $tarball (once per release)"
    "$here/scripts/prepare-kdir.sh" "$src" "$tarball" "$kdir"
fi

# The C compiler the kernel was built with, as prepare-kdir.sh chose it.
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$kdir/.config")
command -v "$cc" > /dev/null 2>&1 || cc=gcc
log "building for $rel against $kdir (CC=$cc)"
make -C "$here" KDIR="$kdir" KERNELRELEASE="$rel" CC="$cc" HOSTCC="$cc" modules
