#!/usr/bin/env bash
# Prepares Debian's stock Rust-enabled kernel for the stock-kernel lanes and for out-of-tree builds:
#  1. a Debian sid chroot ($STOCK/chroot, made by debootstrap from Debian's archive) that carries the
#     compiler the stock kernel was built with;
#  2. the stock kernel sid ships today (the release linux-image-amd64 depends on), its vmlinuz and
#     modules unpacked under $STOCK/root, untouched;
#  3. that kernel's headers and its source (linux-source-<major.minor>) in the chroot, and from them a
#     tree with the Rust metadata the headers lack: scripts/prepare-kdir.sh.
# Idempotent: a second run checks and only redoes what changed (a new kernel in sid, say).
. "$(dirname "$0")/lib.sh"

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
[ "$(id -u)" = 0 ] || die "stock-kernel: debootstrap and chroot need root"

command -v debootstrap > /dev/null || {
    log "stock-kernel: installing debootstrap"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq debootstrap >&2
}

CHROOT=$STOCK/chroot
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the chroot needs to prepare a kernel tree and build the modules; the kernel's own packages
# are added below once the release is known.
CHROOT_PACKAGES=rustc,rust-src,rustfmt,rust-clippy,bindgen,gcc,make,bc,flex,bison,libelf-dev,libssl-dev
CHROOT_PACKAGES+=,xz-utils,python3,cpio,kmod,dwarves,libclang-dev,clang,binutils,ca-certificates,dkms,openssl


if [ ! -f "$CHROOT/.xendma-ready" ]; then
    log "stock-kernel: debootstrap of Debian sid into $CHROOT (about 8 minutes, 2.6 GB)"
    rm -rf "$CHROOT"
    mkdir -p "$STOCK"
    debootstrap --variant=minbase --include="$CHROOT_PACKAGES" sid "$CHROOT" "$MIRROR" \
        > "$STOCK/debootstrap.log" 2>&1 || { tail -20 "$STOCK/debootstrap.log"; die "debootstrap failed"; }
    # The archive this machine reaches may be a frozen snapshot whose Release files have passed
    # their Valid-Until date; the chroot only builds and downloads, so it accepts them.
    echo 'Acquire::Check-Valid-Until "false";' > "$CHROOT/etc/apt/apt.conf.d/99xendma"
    touch "$CHROOT/.xendma-ready"
fi

# The newest stock kernel: the one the linux-image-amd64 metapackage points at. Checked once a day.
stamp=$STOCK/.xendma-checked
if [ ! -f "$STOCK/release" ] || [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
    in_chroot apt-get update -qq >&2
    IFS=, read -r -a pkgs <<< "$CHROOT_PACKAGES"
    in_chroot apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
    img=$(in_chroot apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: linux-image-\(.*-amd64\)$/\1/p' | head -1)
    [ -n "$img" ] || die "stock-kernel: cannot tell which kernel linux-image-amd64 points at"
    echo "$img" > "$STOCK/release.new"
    mv "$STOCK/release.new" "$STOCK/release"
    touch "$stamp"
fi
release=$(cat "$STOCK/release")
series=$(echo "$release" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/\1/p')
pkgver=$(in_chroot dpkg-query -W -f='${Version}' "linux-headers-$release" 2>/dev/null || true)
srcver=$(in_chroot dpkg-query -W -f='${Version}' "linux-source-$series" 2>/dev/null || true)
want=$(in_chroot apt-cache policy "linux-headers-$release" | sed -n 's/^ *Candidate: //p')
if [ "$pkgver" != "$want" ] || [ "$srcver" != "$want" ]; then
    log "stock-kernel: installing linux-headers-$release and linux-source-$series ($want) in the chroot"
    in_chroot apt-get install -y -qq --no-install-recommends "linux-headers-$release" \
        "linux-source-$series=$want" >&2
fi

# The stock kernel itself, unpacked, never modified: vmlinuz and the modules the lanes load.
root=$STOCK/root
if [ "$(cat "$root/.xendma-stamp" 2>/dev/null)" != "$release $want" ]; then
    log "stock-kernel: downloading the stock kernel $release ($want)"
    rm -rf "$root" "$STOCK/debs"
    mkdir -p "$root" "$STOCK/debs" "$CHROOT/tmp/debs"
    rm -f "$CHROOT"/tmp/debs/*.deb
    in_chroot sh -c "cd /tmp/debs && apt-get download -qq -o APT::Sandbox::User=root linux-binary-$release linux-modules-$release" >&2
    mv "$CHROOT"/tmp/debs/*.deb "$STOCK/debs/"
    for deb in "$STOCK"/debs/*.deb; do dpkg -x "$deb" "$root"; done
    [ -f "$root/usr/lib/modules/$release/vmlinuz" ] || [ -f "$root/boot/vmlinuz-$release" ] ||
        die "stock-kernel: no vmlinuz in the packages of $release"
    echo "$release $want" > "$root/.xendma-stamp"
fi

# The C compiler the kernel was built with (CONFIG_CC_VERSION_TEXT names it, e.g. x86_64-linux-gnu-gcc-16).
hdr=/usr/src/linux-headers-$release
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$CHROOT$hdr/.config")
ccpkg=$(echo "$cc" | sed -n 's/.*\(gcc-[0-9][0-9]*\)$/\1/p')
[ -n "$ccpkg" ] || die "stock-kernel: cannot tell the C compiler from CONFIG_CC_VERSION_TEXT ($cc)"
in_chroot sh -c "command -v $cc" > /dev/null || in_chroot apt-get install -y -qq --no-install-recommends "$ccpkg" >&2

# The tree with the Rust metadata, prepared inside the chroot by the script a sid user would run.
mkdir -p "$CHROOT/build"
install -m 755 "$REPO/scripts/prepare-kdir.sh" "$CHROOT/build/prepare-kdir.sh"
mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
trap 'umount "$CHROOT/proc" 2>/dev/null || true' EXIT
in_chroot env CC="$cc" /build/prepare-kdir.sh "$hdr" "/usr/src/linux-source-$series.tar.xz" /build/linux-stock \
    2>&1 | tee "$STOCK/prepare.out" >&2
# The log of the last real preparation (with its symbol check) is kept for the stock-build lane.
if grep -q 'Rust symbols' "$STOCK/prepare.out"; then mv "$STOCK/prepare.out" "$STOCK/prepare.log"; fi
log "stock-kernel: $release ($want) ready; Rust metadata in $CHROOT/build/linux-stock"
