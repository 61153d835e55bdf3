#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Gives a distribution kernel whose headers package ships no Rust metadata (Debian's, for one) a tree
# that out-of-tree Rust modules can be built against:
#
#   prepare-kdir.sh HEADERS_DIR SOURCE_TARBALL OUT_DIR
#
#   HEADERS_DIR     the kernel's headers, e.g. /usr/src/linux-headers-$(uname -r) (.config, Module.symvers)
#   SOURCE_TARBALL  the same kernel's source, e.g. /usr/src/linux-source-7.2.tar.xz
#   OUT_DIR         where the prepared tree goes; then build with  make KDIR=OUT_DIR
#
# The Rust metadata (.rmeta) is only usable with exactly the compiler that built the kernel, so the
# script refuses a rustc whose version differs from the headers' CONFIG_RUSTC_VERSION_TEXT. After the
# build it checks that the Rust symbols the rebuilt crates export are, name for name, those the kernel
# exports (the headers' Module.symvers): a module that links against a different name would fail to
# load, so a mismatch stops here instead. Environment: RUSTC (default rustc), BINDGEN (default
# bindgen), CC (default: the compiler CONFIG_CC_VERSION_TEXT names, else gcc), JOBS.
# Idempotent: a tree already prepared from the same inputs is only checked.
set -eu

die() { printf 'prepare-kdir: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'prepare-kdir: %s\n' "$*" >&2; }

[ $# = 3 ] || die "usage: prepare-kdir.sh HEADERS_DIR SOURCE_TARBALL OUT_DIR"
hdr=$1 tarball=$2 out=$3
[ -f "$hdr/.config" ] || die "$hdr/.config not found (is $hdr a kernel headers directory?)"
[ -f "$hdr/Module.symvers" ] || die "$hdr/Module.symvers not found"
[ -f "$tarball" ] || die "$tarball not found"
grep -qx 'CONFIG_RUST=y' "$hdr/.config" || die "the kernel of $hdr is built without CONFIG_RUST"

release=$(cat "$hdr/include/config/kernel.release" 2>/dev/null || true)
[ -n "$release" ] || die "$hdr/include/config/kernel.release not found"

RUSTC=${RUSTC:-rustc}
BINDGEN=${BINDGEN:-bindgen}
want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$hdr/.config")
have=$("$RUSTC" --version 2>/dev/null) || die "$RUSTC does not run"
if [ "$want" != "$have" ]; then
    die "compiler mismatch: the kernel $release was built by '$want', but $RUSTC is '$have'." \
        "Rust metadata is only usable with the very same compiler; install that rustc and pass RUSTC=."
fi
if [ -z "${CC:-}" ]; then
    CC=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$hdr/.config")
    command -v "$CC" > /dev/null 2>&1 || CC=gcc
fi
JOBS=${JOBS:-$(nproc)}
kmake() { make -s -C "$out" CC="$CC" HOSTCC="$CC" RUSTC="$RUSTC" BINDGEN="$BINDGEN" "$@"; }

key=$( (echo "$release"; ls -l --time-style=+%s "$tarball"; cat "$hdr/.config" "$hdr/Module.symvers"; echo "$have";
        "$CC" --version | head -1; "$BINDGEN" --version) | sha256sum | cut -c1-16)
if [ "$(cat "$out/.xendma-prepared" 2>/dev/null)" = "$key" ]; then
    log "$out is prepared for $release ($have)"
    exit 0
fi

log "unpacking $tarball into $out"
rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp"
tar -xJf "$tarball" -C "$out.tmp" --strip-components=1
mv "$out.tmp" "$out"

cp "$hdr/.config" "$out/.config"
kmake olddefconfig
grep -qx 'CONFIG_RUST=y' "$out/.config" || die "CONFIG_RUST did not survive olddefconfig (is $CC the kernel's C compiler?)"
if ! diff -q "$hdr/.config" "$out/.config" > /dev/null; then
    log "olddefconfig changed the configuration:"
    diff "$hdr/.config" "$out/.config" | grep '^[<>] CONFIG' | head -20 >&2 || true
fi
log "building the Rust metadata for $release with $have (about 3 minutes on 2 cores)"
kmake -j"$JOBS" KERNELRELEASE="$release" prepare
kmake KERNELRELEASE="$release" modules_prepare
cp "$hdr/Module.symvers" "$out/Module.symvers"
[ "$(cat "$out/include/config/kernel.release")" = "$release" ] || die "the tree's release is not $release"

# Rust symbols: those the kernel exports (Module.symvers, exported by vmlinux) against those the
# rebuilt crates define. Equal sets mean the same compiler and the same crates.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk '$3 == "vmlinux" && $2 ~ /^_R/ { print $2 }' "$hdr/Module.symvers" | sort -u > "$tmp/kernel"
for o in "$out"/rust/*.o; do nm -p --defined-only "$o"; done |
    awk '$2 ~ /[TRDB]/ && $3 ~ /^_R/ && $3 !~ /__cfi/ { print $3 }' | sort -u > "$tmp/rebuilt"
n=$(wc -l < "$tmp/kernel")
[ "$n" -gt 0 ] || die "the headers' Module.symvers lists no Rust symbol"
missing=$(comm -23 "$tmp/kernel" "$tmp/rebuilt" | wc -l)
if [ "$missing" != 0 ]; then
    comm -23 "$tmp/kernel" "$tmp/rebuilt" | head -5 >&2
    die "$missing of the $n Rust symbols the kernel exports are not defined by the rebuilt crates" \
        "(different compiler, source or configuration); modules built here would not load"
fi
log "all $n Rust symbols the kernel exports match the rebuilt crates"
echo "$key" > "$out/.xendma-prepared"
log "$out is prepared for $release: make KDIR=$out"
