#!/usr/bin/env bash
# The stock-build lane: the build against Debian's stock kernel, checked where it can go wrong.
#   stock-build-lane.sh MODULE_DIR OUT_DIR
# MODULE_DIR holds the modules scripts/build-stock.sh built. Checks: the prepared tree's Rust symbols
# are the kernel's (prepare-kdir.sh re-checks them), each module's vermagic is the stock release and
# it carries no KUnit suite, `make KDIR=` with the prepared tree works as a user would run it, and a
# compiler other than the kernel's is refused, naming both versions. Then the install paths:
# `make install` / `make uninstall` into a staging directory, and DKMS as a sid user runs it (dkms add,
# build, install against the stock headers, which lack the Rust metadata; dkms.conf's build command
# prepares it): the modules installed into updates/dkms, signed with DKMS's MOK key, known to depmod;
# they are copied to DKMS_DIR (default $BUILD/mod-stock-dkms) for the stock-qemu lane to load; then
# dkms remove takes them away again.
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
echo "# chroot compiler: $(in_chroot rustc --version)"

# The prepared tree is checked again (Rust symbols against the headers' Module.symvers).
mountpoint -q "$CHROOT/proc" || { mount -t proc proc "$CHROOT/proc"; trap 'umount "$CHROOT/proc" 2>/dev/null || true' EXIT; }
msg=$(in_chroot /build/prepare-kdir.sh "$hdr" \
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
copy_sources "$CHROOT$mk" Makefile scripts
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$CHROOT$hdr/.config")
rc=0
in_chroot make -C "$mk" KDIR=/build/linux-stock KERNELRELEASE="$release" CC="$cc" > "$out/logs/stock-make.log" 2>&1 || rc=$?
echo "# make KDIR=/build/linux-stock KERNELRELEASE=$release CC=$cc: exit $rc"
check "make KDIR=<prepared tree> builds both modules" [ $rc = 0 ]
check "make KDIR=<prepared tree>: vermagic $release" \
    [ "$(/sbin/modinfo -F vermagic "$CHROOT$mk/xen_swiotlb_rs.ko" 2>/dev/null | cut -d' ' -f1)" = "$release" ]

# make install / uninstall into a staging directory (INSTALL_MOD_PATH, DESTDIR): the modules in
# updates/ (compressed as the kernel's own are), the C API for driver builds.
st=/tmp/xendma-install
rm -rf "${CHROOT:?}$st"
mkargs=(-C "$mk" KDIR=/build/linux-stock KERNELRELEASE="$release" CC="$cc" INSTALL_MOD_PATH=$st DESTDIR=$st)
rc=0
in_chroot make "${mkargs[@]}" install > "$out/logs/stock-make-install.log" 2>&1 || rc=$?
check "make install: exit 0" [ $rc = 0 ]
for m in xen_swiotlb_rs odp_umem; do
    check "make install: $m.ko in /lib/modules/$release/updates" \
        sh -c "ls '$CHROOT$st/lib/modules/$release/updates/$m.ko'* > /dev/null 2>&1"
done
check "make install: include/xendma/odp_umem.h" cmp -s "$REPO/include/odp_umem.h" "$CHROOT$st/usr/local/include/xendma/odp_umem.h"
check "make install: Module.symvers exports odp_umem's C API" \
    grep -qw odp_umem_map_and_lock "$CHROOT$st/usr/local/share/xendma/$release/Module.symvers"
rc=0
in_chroot make "${mkargs[@]}" uninstall > "$out/logs/stock-make-uninstall.log" 2>&1 || rc=$?
left=$(find "$CHROOT$st" -name '*.ko*' -o -name odp_umem.h -o -name Module.symvers | wc -l)
check "make uninstall: exit 0, nothing left ($left files)" [ $rc = 0 -a "$left" = 0 ]
# And as the guide has it, into the system: /lib/modules/<release>/updates, depmod, /usr/local.
mkargs=(-C "$mk" KDIR=/build/linux-stock KERNELRELEASE="$release" CC="$cc")
dep=$CHROOT/lib/modules/$release/modules.dep
rc=0
in_chroot make "${mkargs[@]}" install >> "$out/logs/stock-make-install.log" 2>&1 || rc=$?
check "sudo make install: exit 0, depmod lists updates/xen_swiotlb_rs.ko" \
    sh -c "[ $rc = 0 ] && grep -q '^updates/xen_swiotlb_rs.ko' '$dep'"
check "sudo make install: /usr/local/include/xendma/odp_umem.h" [ -f "$CHROOT/usr/local/include/xendma/odp_umem.h" ]
rc=0
in_chroot make "${mkargs[@]}" uninstall >> "$out/logs/stock-make-uninstall.log" 2>&1 || rc=$?
check "sudo make uninstall: exit 0, depmod forgot them, the header gone" \
    sh -c "[ $rc = 0 ] && ! grep -q xen_swiotlb_rs '$dep' && [ ! -e '$CHROOT/usr/local/include/xendma' ]"
rm -rf "${CHROOT:?}$mk" "${CHROOT:?}$st"

# DKMS, as Documentation/install.rst tells a sid user: the source in /usr/src/xendma-VERSION, then
# dkms add, build, install. The first build for a release also prepares the Rust metadata (about 3
# minutes), kept in the chroot's /var/lib/xendma/kdir for later runs.
dkms_dir=${DKMS_DIR:-$BUILD/mod-stock-dkms}
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$REPO/dkms.conf")
in_chroot sh -c 'command -v dkms' > /dev/null ||
    in_chroot apt-get install -y -qq --no-install-recommends dkms openssl > /dev/null 2>&1 || true
echo "# $(in_chroot dkms --version 2>&1 | head -1)"
in_chroot dkms remove "xendma/$ver" --all > /dev/null 2>&1 || true
rm -rf "${CHROOT:?}/usr/src/xendma-$ver" "${CHROOT:?}/root/xendma"
# The clean clone of the guide: what git would check out (the sources, Makefile, dkms.conf, scripts).
copy_sources "$CHROOT/root/xendma" Makefile dkms.conf scripts
dlog=$out/logs/stock-dkms.log
: > "$dlog"
# The kernel image is not installed in the chroot, and dkms runs depmod only for a kernel whose
# modules.dep exists (an installed one): made here, empty, it stands for the installed kernel's.
in_chroot depmod -a "$release"
# The guide's commands, as written (Documentation/install.rst).
for cmd in "dkms add ./" "dkms build xendma/$ver -k $release" "dkms install xendma/$ver -k $release"; do
    rc=0 t0=$SECONDS
    in_chroot sh -c "cd /root/xendma && $cmd" >> "$dlog" 2>&1 || rc=$?
    echo "# $cmd: $((SECONDS - t0)) s"
    check "$cmd: exit 0" [ $rc = 0 ]
done
check "dkms add copied the tree to /usr/src/xendma-$ver" [ -f "$CHROOT/usr/src/xendma-$ver/dkms.conf" ]
mlog=$CHROOT/var/lib/dkms/xendma/$ver/$release/x86_64/log/make.log
[ -f "$mlog" ] && cp "$mlog" "$out/logs/stock-dkms-make.log"
grep 'dkms-build:' "$out/logs/stock-dkms-make.log" 2>/dev/null | sed 's/^/# /'
st=$(in_chroot dkms status "xendma/$ver" -k "$release" 2>&1)
echo "# dkms status: $st"
check "dkms status: installed for $release" grep -q ": installed" <<< "$st"
rm -rf "$dkms_dir"
mkdir -p "$dkms_dir"
for m in xen_swiotlb_rs odp_umem; do
    f=$(ls "$CHROOT/lib/modules/$release/updates/dkms/$m.ko"* 2>/dev/null | head -1)
    check "dkms: $m installed in /lib/modules/$release/updates/dkms" [ -n "$f" ]
    [ -n "$f" ] || continue
    case $f in *.xz) xz -dc "$f" > "$dkms_dir/$m.ko" ;; *) cp "$f" "$dkms_dir/$m.ko" ;; esac
    signer=$(/sbin/modinfo -F signer "$dkms_dir/$m.ko")
    echo "# $m: signer '$signer', vermagic $(/sbin/modinfo -F vermagic "$dkms_dir/$m.ko")"
    check "dkms: $m signed with DKMS's MOK key ($CHROOT/var/lib/dkms/mok.pub)" [ "$signer" = "DKMS module signing key" ]
    check "dkms: $m vermagic is $release" \
        [ "$(/sbin/modinfo -F vermagic "$dkms_dir/$m.ko" | cut -d' ' -f1)" = "$release" ]
    check "dkms: depmod knows $m" grep -q "^updates/dkms/$m.ko" "$CHROOT/lib/modules/$release/modules.dep"
done
# The lane's VM loads these; the test-device builds come from build-stock.sh.
ln -sfn "$(realpath "$moddir")/testdev" "$dkms_dir/testdev"
rc=0
in_chroot dkms remove "xendma/$ver" --all >> "$dlog" 2>&1 || rc=$?
check "dkms remove: exit 0, the modules gone from updates/dkms" \
    sh -c "[ $rc = 0 ] && ! ls '$CHROOT/lib/modules/$release/updates/dkms/'*xen_swiotlb_rs* > /dev/null 2>&1"
check "dkms remove: depmod forgot them" sh -c "! grep -q xen_swiotlb_rs '$CHROOT/lib/modules/$release/modules.dep'"
rm -rf "${CHROOT:?}/root/xendma"

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
