#!/usr/bin/env bash
# Builds one variant of the modules out of a copy of the sources, so that the production build in
# the repository and the test build never overwrite each other's objects.
#   build-modules.sh prod|test|testdev OUT_DIR
# Against KSRC (lib.sh; the KASAN lane's kernel with KSRC=$KASAN_KSRC XENDMA_LLVM=1).
# test: KUnit suites included, with CLIPPY=1 W=1. testdev: the test devices without KUnit (make run's
# /dev/odp_umem). Fails on any compiler, clippy or rustfmt warning.
. "$(dirname "$0")/lib.sh"

variant=$1 out=$2
# MOD_SRC: where the sources are copied and built (another kernel's build keeps its own objects).
src=${MOD_SRC:-$BUILD/src-$variant}
mkdir -p "$src" "$out"
copy_sources "$src"

# Unsafe code lives in kext/ only (the crate roots deny it; this also catches an allow).
"$REPO/scripts/check-unsafe.sh" || die "unsafe code outside kext/"

flags=()
case $variant in
prod) flags=(XENDMA_CDRV=1) ;;
test) flags=(XENDMA_KUNIT=1 XENDMA_CDRV=1 CLIPPY=1 W=1) ;;
testdev) flags=(XENDMA_TESTDEV=1) ;;
*) die "build-modules.sh: unknown variant $variant" ;;
esac
log=$out/build.log
if ! make -C "$KSRC" M="$src" "${KRUST[@]}" "${flags[@]}" modules > "$log" 2>&1; then
    tail -40 "$log"
    die "build of the $variant modules failed (full log: $log)"
fi
if grep -E -i '(^|[^-])warning' "$log"; then
    die "the $variant build is not warning-free (full log: $log)"
fi
# rustfmt, with the kernel's settings.
if ! (cd "$REPO" && /usr/bin/rustfmt --edition 2021 --config-path "$KSRC/.rustfmt.toml" --check \
        ./*.rs kext/*.rs kext/dma/*.rs xen_swiotlb_rs/*.rs odp_umem/*.rs selftests/kunit/*.rs \
        selftests/edu/*.rs > "$out/rustfmt.log" 2>&1); then
    head -40 "$out/rustfmt.log"
    die "rustfmt: the kernel-side sources are not formatted (run rustfmt --config-path $KSRC/.rustfmt.toml)"
fi
# Production modules carry no test code; every test build carries KUnit suites.
for m in xen_swiotlb_rs odp_umem; do
    has=$(readelf -SW "$src/$m.ko" | grep -c '\.kunit_test_suites' || true)
    if [ "$variant" != test ] && [ "$has" != 0 ]; then die "$m.ko ($variant) contains KUnit suites"; fi
    if [ "$variant" = test ] && [ "$has" = 0 ]; then die "$m.ko (test build) contains no KUnit suite"; fi
done
# Each module links only its own C helpers (kext/<module>.c), and production modules no test
# support: checked on the symbols, so that a helper added to the wrong place fails the build.
if [ "$variant" = prod ]; then
    forbidden() {  # module, what, extended regexp over "nm" lines
        local hit
        hit=$(nm "$src/$1.ko" | grep -E "$3" || true)
        [ -z "$hit" ] || die "$1.ko (production) carries $2: $(echo "$hit" | head -3 | tr '\n' ' ')"
    }
    forbidden xen_swiotlb_rs "odp_umem's helpers" \
        ' [TtDdRrBb] xendma_(odp_|trace_odp_)| U (hmm_range_fault|mmu_interval_)'
    forbidden odp_umem "xen_swiotlb_rs's helpers" \
        ' [TtDdRrBb] xendma_(ops_|dev_set_dma_ops|pci_find|xen_|swiotlb_|trace_(bounced|map_failed|pool_grow|attach|detach))| U (__SCT__xen_hypercall|xen_p2m_addr)'
    for m in xen_swiotlb_rs odp_umem; do
        forbidden $m "test support" ' [TtDdRrBb] xendma_(layouts|kunit_|odp_test_|expected_xen|pci_driven_by|misc_)'
    done
fi
cp "$src"/xen_swiotlb_rs.ko "$src"/odp_umem.ko "$out/"
# The C API's test driver (not a module of the project: its own directory, never installed).
rm -rf "${out:?}/cdrv"
if [ -f "$src/selftests/odp_cdrv/odp_umem_cdrv.ko" ]; then
    mkdir -p "$out/cdrv"
    cp "$src/selftests/odp_cdrv/odp_umem_cdrv.ko" "$out/cdrv/"
fi
# Test builds: the user-space test programs (C, static; shell scripts for busybox sh, shipped only
# when executable), run by the guest's /init after the modules are loaded; and in bin/ the tools
# they use, which are not tests.
if [ "$variant" = test ]; then
    rm -rf "${out:?}/tests" "${out:?}/bin"
    mkdir -p "$out/tests" "$out/bin"
    for c in "$REPO"/selftests/progs/*.c; do
        [ -e "$c" ] || continue
        gcc -static -O2 -Wall -Wextra -Werror -o "$out/tests/$(basename "$c" .c)" "$c" \
            || die "build of $c failed"
    done
    for sh in "$REPO"/selftests/progs/*.sh; do
        [ -x "$sh" ] || continue
        install -m 755 "$sh" "$out/tests/$(basename "$sh" .sh)"
    done
    # Tools of the tests (selftests/bin: the disk soak of xen_swiotlb_attach) and the shell
    # programs' shared test-line helpers (selftests/lib/ktap.sh).
    install -m 644 "$REPO/selftests/lib/ktap.sh" "$out/bin/ktap.sh"
    for c in "$REPO"/selftests/bin/*.c; do
        [ -e "$c" ] || continue
        gcc -static -O2 -Wall -Wextra -Werror -o "$out/bin/$(basename "$c" .c)" "$c" \
            || die "build of $c failed"
    done
    # The kernel's DMA mapping benchmark (CONFIG_DMA_MAP_BENCHMARK) is driven by its own user
    # program; its header is a kernel-internal one, so it is copied to a private include dir.
    inc=$(mktemp -d "$BUILD/mbinc.XXXXXX")
    mkdir -p "$inc/linux"
    cp "$KSRC/include/linux/map_benchmark.h" "$inc/linux/"
    if ! gcc -static -O2 -Wall -Wextra -Werror -I "$inc" -o "$out/bin/dma_map_benchmark" \
            "$KSRC/tools/testing/selftests/dma/dma_map_benchmark.c"; then
        rm -rf "$inc"
        die "build of dma_map_benchmark failed"
    fi
    rm -rf "$inc"
fi
log "build: $variant modules ok ($out)"
