# Common settings for the project's scripts. Source it; do not run it.
# shellcheck shell=bash

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The one definition of the cache paths and of the kernel toolchain (KRUST below); the top-level Makefile
# reads them through scripts/make-vars.sh.
# Everything downloaded or built outside the repository lives here.
XENDMA_CACHE=${XENDMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xendma}
TOOLS=$XENDMA_CACHE/tools
KSRC=${KSRC:-$XENDMA_CACHE/linux}
XENROOT=${XENROOT:-$XENDMA_CACHE/xen-root}
BUILD=${BUILD:-$REPO/build}
# Debian's stock Rust-enabled kernel (scripts/stock-kernel.sh): a sid chroot with its compiler, the
# unmodified kernel and modules, and a tree prepared with the Rust metadata its headers lack.
STOCK=${STOCK:-$XENDMA_CACHE/stock}
# The KASAN lane's kernel: the test kernel's fragments plus kconfig/kasan/, built with LLVM=1.
KASAN_KSRC=${KASAN_KSRC:-$XENDMA_CACHE/linux-kasan}
BINDGEN_VERSION=0.73.2
# The dom0 test lane's kernel arguments: a small swiotlb-xen pool of the kernel's own (8 MiB,
# smaller than the growth test's burst) and xen_swiotlb_rs on 16 MiB below 2^28 (the 28-bit edu),
# which leaves Xen's low memory to the domU.
DOM0_ARGS="swiotlb=4096 xendma.swiotlb=pool_mb=16:dma_bits=28"

# The kernel is built by Debian's rustc-web (1.96, with rust-src); rustup's toolchain lacks core's sources.
KRUST=(RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTFMT=/usr/bin/rustfmt
       CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN="$TOOLS/bin/bindgen")
# XENDMA_LLVM=1: C built by clang too (the KASAN lane's kernel and the modules built against it:
# 6.12 allows KASAN with Rust only with clang).
if [ "${XENDMA_LLVM:-0}" = 1 ]; then KRUST+=(LLVM=1); fi

# rustup's cargo (host tests, bindgen-cli install) may not be on PATH in a non-login shell.
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) PATH=$PATH:$HOME/.cargo/bin ;; esac

# The stock kernel's image, unmodified.
stock_vmlinuz() {
    local release
    release=$(cat "$STOCK/release" 2>/dev/null) || die "no stock kernel: run scripts/stock-kernel.sh"
    echo "$STOCK/root/usr/lib/modules/$release/vmlinuz"
}

# Copies the module sources (what Kbuild reads), and any further paths named, into DEST, without
# build products; mtimes are preserved, so kbuild rebuilds only what changed.
copy_sources() {  # dest [path...]
    local dest=$1
    shift
    mkdir -p "$dest"
    (cd "$REPO" && tar -cf - --exclude='*.o' --exclude='.*.cmd' --exclude='bindings_generated.rs' \
        Kbuild ./*.rs kext xen_swiotlb_rs odp_umem include selftests/kunit selftests/edu selftests/odp_cdrv logic "$@") |
        tar -xf - -C "$dest"
}
# Runs a command in the stock kernel's sid chroot with a clean environment.
in_chroot() { chroot "$STOCK/chroot" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# Installs the shared libraries that programs need (ldd, with the caller's LD_LIBRARY_PATH) into an
# initramfs staging root: all in /usr/lib/x86_64-linux-gnu (a default search directory of Debian's
# loader: no ld.so.cache needed), libgcc_s too (glibc dlopen()s it for pthread_cancel and unwinding),
# and the loader at its ELF interpreter path.
install_libs() {  # stage program...
    local stage=$1 libdir=usr/lib/x86_64-linux-gnu p out libs soname path
    shift
    mkdir -p "$stage/$libdir" "$stage/lib64"
    libs=$(for p in "$@"; do
               out=$(ldd "$p") || die "ldd $p failed"
               if grep -q 'not found' <<< "$out"; then die "unresolved library for $p: $(grep 'not found' <<< "$out")"; fi
               awk '$2 == "=>" && $3 ~ /^\// { print $1 " " $3 }' <<< "$out"
           done | sort -u)
    while read -r soname path; do
        install -m 0644 "$(readlink -f "$path")" "$stage/$libdir/$soname"
    done <<< "$libs"
    path=$(dirname "$(awk '$1 == "libc.so.6" { print $2 }' <<< "$libs")")/libgcc_s.so.1
    [ -f "$path" ] || die "$path not found"
    install -m 0644 "$(readlink -f "$path")" "$stage/$libdir/libgcc_s.so.1"
    install -m 0755 "$(readlink -f /lib64/ld-linux-x86-64.so.2)" "$stage/lib64/ld-linux-x86-64.so.2"
}
# Signs a module in place with a key and certificate (PEM), as modules_install and DKMS do, with the
# test kernel's sign-file (which any kernel's signature format accepts).
sign_module() {  # key cert module.ko
    "$KSRC/scripts/sign-file" sha256 "$1" "$2" "$3"
}
# A signing key no kernel trusts (PEM, key and certificate in one file), made on first use: stands
# for a DKMS key whose certificate was never enrolled as a MOK.
untrusted_key() {
    local key=$BUILD/untrusted-key.pem
    [ -f "$key" ] || openssl req -new -nodes -utf8 -sha256 -days 36500 -batch -x509 \
        -subj "/CN=xendma test key (untrusted)/" -newkey rsa:2048 -outform PEM \
        -out "$key" -keyout "$key" 2>/dev/null || die "openssl could not make $key"
    echo "$key"
}

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
