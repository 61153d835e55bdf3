#!/usr/bin/env bash
# Builds the project's test kernel from Debian's linux-source-6.12 and the fragments in kconfig/.
# Rebuilds only when the fragments, the kernel version or the compilers change.
# KCONFIG_EXTRA (optional): further fragments applied after kconfig/*.config, overriding them; used
# with another KSRC for a variant kernel (the benchmark's production-like build, scripts/bench.sh).
. "$(dirname "$0")/lib.sh"

read -r -a extra <<< "${KCONFIG_EXTRA:-}"
fragments=("$REPO"/kconfig/*.config "${extra[@]}")

tarball=/usr/src/linux-source-6.12.tar.xz
[ -f "$tarball" ] || die "$tarball missing: run scripts/setup.sh"

kver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$( { echo "$kver"; cat "${fragments[@]}"; gcc --version | head -1; /usr/bin/rustc --version;
         "$TOOLS/bin/bindgen" --version; if [ "${XENDMA_LLVM:-0}" = 1 ]; then clang --version | head -1; fi
       } | sha256sum | cut -c1-16)
stamp=$KSRC/.xendma-stamp

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -f "$KSRC/arch/x86/boot/bzImage" ]; then
    log "kernel: up to date ($KSRC, $kver)"
    exit 0
fi

if [ ! -f "$KSRC/.xendma-unpacked" ] || [ "$(cat "$KSRC/.xendma-unpacked")" != "$kver" ]; then
    log "kernel: unpacking $tarball ($kver) into $KSRC"
    rm -rf "$KSRC" "$KSRC.tmp"
    mkdir -p "$KSRC.tmp"
    tar -xJf "$tarball" -C "$KSRC.tmp" --strip-components=1
    mv "$KSRC.tmp" "$KSRC"
    echo "$kver" > "$KSRC/.xendma-unpacked"
fi

cd "$KSRC"
rm -f "$stamp"
log "kernel: configuring (tinyconfig + kconfig/*.config${KCONFIG_EXTRA:+ + $KCONFIG_EXTRA})"
make -s "${KRUST[@]}" tinyconfig
./scripts/kconfig/merge_config.sh -m .config "${fragments[@]}" > /dev/null
make -s "${KRUST[@]}" olddefconfig
# Every option the fragments ask for must have survived olddefconfig (a later fragment's value wins).
declare -A want=()
while IFS= read -r line; do
    case $line in CONFIG_*=*) want[${line%%=*}]=${line#*=} ;; esac
done < <(cat "${fragments[@]}")
bad=0
for opt in "${!want[@]}"; do
    val=${want[$opt]} line=$opt=${want[$opt]}
    if [ "$val" = n ]; then
        grep -q "^$opt=" .config && { log "kernel: $opt should be unset"; bad=1; }
    else
        grep -qx "$line" .config || { log "kernel: $line did not stick: $(grep "^$opt=\|# $opt " .config || true)"; bad=1; }
    fi
done
[ $bad = 0 ] || die "kernel: configuration fragments not satisfied"

log "kernel: building bzImage and modules (a cold build takes about 12 minutes on 2 cores)"
make -s -j"$(nproc)" "${KRUST[@]}" bzImage modules
echo "$key" > "$stamp"
log "kernel: built $KSRC/arch/x86/boot/bzImage"
