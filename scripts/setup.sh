#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine. Idempotent: a second run only checks.
#  - Debian packages by name (root; apt-get update runs only if something is missing)
#  - bindgen-cli, pinned, into the cache directory
#  - Xen 4.17 hypervisor and toolstack packages, downloaded and unpacked into the cache (not installed)
. "$(dirname "$0")/lib.sh"

PACKAGES=(rustc-web rust-web-src rust-web-clippy rustfmt-web linux-source-6.12 clang libclang-dev llvm lld
          bc flex bison libelf-dev libssl-dev cpio kmod xz-utils gzip qemu-system-x86 busybox-static
          python3 gcc libc6-dev make python3-matplotlib procps binutils openssl
          trace-cmd bpftrace)
XEN_PACKAGES=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils libxenmisc4.17
              libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenstore4 libxentoollog1
              libxendevicemodel1 libxenhypfs1 libxentoolcore1 libyajl2 libext2fs2)

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi

if ! "$TOOLS/bin/bindgen" --version 2>/dev/null | grep -x "bindgen $BINDGEN_VERSION" > /dev/null; then
    command -v cargo > /dev/null || die "cargo (rustup) is needed to install bindgen-cli"
    log "setup: cargo install bindgen-cli $BINDGEN_VERSION (about 2 minutes)"
    cargo install --quiet --locked --root "$TOOLS" bindgen-cli --version "$BINDGEN_VERSION"
fi

# Xen: fetched as .deb files and unpacked into $XENROOT; they run only inside the dom0 initramfs.
xenkey=$(printf '%s\n' "${XEN_PACKAGES[@]}" | sha256sum | cut -c1-16)
if [ "$(cat "$XENROOT/.xendma-stamp" 2>/dev/null)" != "$xenkey" ]; then
    log "setup: downloading and unpacking Xen 4.17 packages into $XENROOT"
    rm -rf "$XENROOT" "$XENDMA_CACHE/xen-debs"
    mkdir -p "$XENROOT" "$XENDMA_CACHE/xen-debs"
    if ! (cd "$XENDMA_CACHE/xen-debs" && apt-get download -qq -o APT::Sandbox::User=root "${XEN_PACKAGES[@]}" >&2); then
        $sudo apt-get update -qq
        (cd "$XENDMA_CACHE/xen-debs" && apt-get download -qq -o APT::Sandbox::User=root "${XEN_PACKAGES[@]}" >&2)
    fi
    for deb in "$XENDMA_CACHE"/xen-debs/*.deb; do dpkg -x "$deb" "$XENROOT"; done
    zcat "$XENROOT"/boot/xen-4.17-amd64.gz > "$XENROOT/xen.bin"
    echo "$xenkey" > "$XENROOT/.xendma-stamp"
fi
log "setup: toolchain ready"
