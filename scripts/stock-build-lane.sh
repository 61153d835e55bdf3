#!/usr/bin/env bash
# The stock-build lane: the build against Debian's stock kernel, checked where it can go wrong.
#   stock-build-lane.sh MODULE_DIR OUT_DIR
# MODULE_DIR holds the modules scripts/build-stock.sh built. Checks: the prepared tree's Rust symbols
# are the kernel's (prepare-kdir.sh re-checks them), each module's vermagic is the stock release and
# it carries no KUnit suite, `make KDIR=` with the prepared tree works as a user would run it, and a
# compiler other than the kernel's is refused, naming both versions.
# Prints "stock-build: N passed, M failed" and appends to OUT_DIR/summary.tsv.
. "$(dirname "$0")/lib.sh"

moddir=$1 out=$2
CHROOT=$STOCK/chroot
release=$(cat "$STOCK/release")
hdr=/usr/src/linux-headers-$release
series=$(echo "$release" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/\1/p')
passed=0 failed=0
check() {  # what command...
    local what=$1
    shift
    if "$@"; then passed=$((passed + 1)); echo "ok - $what"; else failed=$((failed + 1)); echo "not ok - $what"; fi
}

want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$/\1/p' "$CHROOT$hdr/.config")
echo "# stock kernel $release, built by $want"
echo "# chroot compiler: $(chroot "$CHROOT" rustc --version)"

# The prepared tree is checked again (Rust symbols against the headers' Module.symvers).
mountpoint -q "$CHROOT/proc" || { mount -t proc proc "$CHROOT/proc"; trap 'umount "$CHROOT/proc" 2>/dev/null || true' EXIT; }
msg=$(chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /build/prepare-kdir.sh "$hdr" \
      "/usr/src/linux-source-$series.tar.xz" /build/linux-stock 2>&1)
echo "# $msg"
check "prepare-kdir.sh accepts the prepared tree (same compiler, Rust symbols checked)" \
    grep -q "prepared for $release" <<< "$msg"
syms=$(sed -n 's/.*all \([0-9]*\) Rust symbols the kernel exports match.*/\1/p' "$STOCK/prepare.log" 2>/dev/null)
echo "# Rust symbols matched at preparation: ${syms:-unknown}"
check "the preparation matched the kernel's exported Rust symbols" [ "${syms:-0}" -gt 0 ]

for m in xen_swiotlb_rs odp_umem; do
    vm=$(/sbin/modinfo -F vermagic "$moddir/$m.ko" | cut -d' ' -f1)
    echo "# $m.ko vermagic: $(/sbin/modinfo -F vermagic "$moddir/$m.ko")"
    check "$m.ko vermagic is the stock kernel's release $release" [ "$vm" = "$release" ]
    check "$m.ko (production) carries no KUnit suite" \
        sh -c "! readelf -SW '$moddir/$m.ko' | grep -q kunit_test_suites"
done

# The user's command on a machine with the kernel's compiler: the top-level Makefile with KDIR= the
# prepared tree (the tree's own compilers, not the project's test toolchain), in the chroot.
mk=/build/src-stock-make
rm -rf "${CHROOT:?}$mk"
mkdir -p "$CHROOT$mk"
(cd "$REPO" && tar -cf - --exclude='*.o' --exclude='.*.cmd' --exclude='bindings_generated.rs' \
    Makefile Kbuild ./*.rs kext xen_swiotlb_rs odp_umem include selftests/kunit selftests/edu logic scripts) |
    tar -xf - -C "$CHROOT$mk"
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$CHROOT$hdr/.config")
rc=0
chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root make -C "$mk" \
    KDIR=/build/linux-stock KERNELRELEASE="$release" CC="$cc" > "$out/logs/stock-make.log" 2>&1 || rc=$?
echo "# make KDIR=/build/linux-stock KERNELRELEASE=$release CC=$cc: exit $rc"
check "make KDIR=<prepared tree> builds both modules" [ $rc = 0 ]
check "make KDIR=<prepared tree>: vermagic $release" \
    [ "$(/sbin/modinfo -F vermagic "$CHROOT$mk/xen_swiotlb_rs.ko" 2>/dev/null | cut -d' ' -f1)" = "$release" ]
rm -rf "${CHROOT:?}$mk"

# A compiler that is not the kernel's (the host's rustc-web) is refused before anything is built.
rc=0
msg=$(RUSTC=/usr/bin/rustc "$REPO/scripts/prepare-kdir.sh" "$CHROOT$hdr" \
      "$CHROOT/usr/src/linux-source-$series.tar.xz" "$BUILD/wrong-rustc" 2>&1) || rc=$?
echo "# with $(/usr/bin/rustc --version): exit $rc: $msg"
check "a different rustc is refused (non-zero exit)" [ $rc != 0 ]
check "the refusal names the kernel's compiler" grep -qF "$want" <<< "$msg"
check "the refusal names the offered compiler" grep -qF "$(/usr/bin/rustc --version)" <<< "$msg"
check "nothing was unpacked for the refused compiler" [ ! -e "$BUILD/wrong-rustc" ]

{
    echo -e "stock-build\tprepare+build\t$passed\t$failed\t0"
} >> "$out/summary.tsv"
echo "stock-build: $passed passed, $failed failed"
[ $failed = 0 ]
