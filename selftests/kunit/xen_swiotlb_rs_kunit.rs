// SPDX-License-Identifier: GPL-2.0

//! KUnit suites of the xen_swiotlb_rs test build.

use crate::kext::{kunit::Test, xen};
use crate::{check_layout, expect, expect_eq, kunit_suite};

/// The generated `dma_map_ops` and Xen memory structures match the C compiler's layout.
fn layouts_match_c(t: &Test) {
    check_layout!(
        t,
        dma_map_ops,
        [
            alloc,
            free,
            mmap,
            map_page,
            unmap_page,
            map_sg,
            unmap_sg,
            sync_single_for_cpu,
            sync_single_for_device,
            sync_sg_for_cpu,
            sync_sg_for_device,
            dma_supported,
            get_required_mask,
            max_mapping_size,
        ]
    );
    check_layout!(
        t,
        xen_memory_reservation,
        [extent_start, nr_extents, extent_order, address_bits, domid]
    );
    check_layout!(t, xen_memory_exchange, [in_ = in, out, nr_exchanged]);
}

/// The domain the module detects is the one the lane runner says it started, and a real
/// `xen_version` hypercall answers under Xen (and only there).
fn detects_lane_domain(t: &Test) {
    let domain = xen::Domain::current();
    match crate::kext::kunit::expected_xen().as_bytes() {
        b"pv" => {
            expect!(
                t,
                matches!(domain, xen::Domain::Pv { .. }),
                "domain {:?}",
                domain
            );
            expect_eq!(t, xen::version().map(|(major, _)| major), Some(4));
        }
        b"none" => {
            expect_eq!(t, domain, xen::Domain::None);
            expect_eq!(t, xen::version(), None);
        }
        other => expect!(t, false, "the lane gave no expect_xen= ({:?})", other),
    }
}

/// Guest frame to machine frame and back is the identity on the frames of our own memory, and
/// under Xen PV at least one of them is not an identity-mapped frame.
fn p2m_round_trips(t: &Test) {
    let mut differ = 0;
    for _ in 0..16 {
        let Ok(page) = kernel::page::Page::alloc_page(kernel::alloc::flags::GFP_KERNEL) else {
            expect!(t, false, "page allocation failed");
            return;
        };
        let pfn = crate::kext::kunit::page_pfn(&page);
        let mfn = xen::pfn_to_mfn(pfn);
        expect_eq!(t, xen::mfn_to_pfn(mfn), pfn);
        if mfn != pfn {
            differ += 1;
        }
    }
    match xen::Domain::current() {
        xen::Domain::Pv { .. } => expect!(t, differ > 0, "all 16 frames identity-mapped under PV"),
        _ => expect_eq!(t, differ, 0),
    }
}

/// Per-CPU counters: an add lands in the running CPU's own copy (each online CPU adding once
/// leaves a 1 in each copy, not a count in one place), the sum is exact and wraps, and the two
/// counters of one allocation stay apart.
fn percpu_counters(t: &Test) {
    use crate::kext::percpu::{self, CpuId, PerCpuCounters};
    use core::sync::atomic::{AtomicU32, Ordering};

    let Ok(c) = PerCpuCounters::<2>::new() else {
        expect!(t, false, "alloc_percpu of 2 counters failed");
        return;
    };
    expect_eq!(t, (c.sum::<0>(), c.sum::<1>()), (0, 0));
    let cpus = percpu::on_each_cpu(&|| c.add::<1>(1));
    expect!(t, cpus >= 1, "on_each_cpu ran on {} CPUs", cpus);
    expect_eq!(t, c.sum::<1>(), u64::from(cpus));
    expect_eq!(t, c.sum::<0>(), 0);
    let mut ones = 0;
    let mut cpu = 0;
    while let Some(v) = c.copy_of::<1>(cpu) {
        expect!(
            t,
            v <= 1,
            "CPU {} holds {} adds of the {} CPUs",
            cpu,
            v,
            cpus
        );
        ones += v;
        cpu += 1;
    }
    expect_eq!(t, ones, u64::from(cpus));
    for _ in 0..1000 {
        c.add::<0>(3);
    }
    expect_eq!(t, c.sum::<0>(), 3000);
    c.add::<0>(u64::MAX);
    expect_eq!(t, c.sum::<0>(), 2999);
    expect_eq!(t, c.sum::<1>(), u64::from(cpus));

    // The CPU number read from the per-CPU copy is the kernel's, on every CPU.
    let Ok(id) = CpuId::new() else {
        expect!(t, false, "alloc_percpu of the CPU numbers failed");
        return;
    };
    let (ran, wrong) = (AtomicU32::new(0), AtomicU32::new(0));
    let n = percpu::on_each_cpu(&|| {
        ran.fetch_add(1, Ordering::Relaxed);
        if !id.matches_kernel() {
            wrong.fetch_add(1, Ordering::Relaxed);
        }
    });
    expect_eq!(t, ran.load(Ordering::Relaxed), n);
    expect_eq!(t, wrong.load(Ordering::Relaxed), 0);
}

/// The physical address that the mapping path computes from a `struct page` (the memmap index
/// on x86-64) is the kernel's `page_to_phys`, for pages from each zone and of several orders.
fn page_to_phys_matches(t: &Test) {
    use crate::kext::page::{Pages, Zone};

    let mut tried = 0;
    for zone in [Zone::Any, Zone::Dma32, Zone::Dma] {
        for order in [0, 1, 4] {
            let Ok(pages) = Pages::alloc(order, zone) else {
                continue;
            };
            tried += 1;
            let (ours, kernel) = pages.phys_both();
            expect_eq!(t, ours, kernel);
            expect_eq!(t, ours & 0xfff, 0);
        }
    }
    expect!(
        t,
        tried >= 3,
        "only {} of 9 page allocations succeeded",
        tried
    );
}

kunit_suite!(
    ffi_suite,
    c"xen_swiotlb_rs_ffi",
    [
        layouts_match_c,
        detects_lane_domain,
        p2m_round_trips,
        percpu_counters,
        page_to_phys_matches
    ]
);

/// The bounce pool's slot allocator, compiled by the kernel toolchain (overflow checks on) over
/// kernel-allocated metadata: `min_align_mask` is honoured, sync lookups find the original, and
/// wrong-size, misplaced, double and foreign frees are refused without disturbing the pool.
fn slots_in_kernel(t: &Test) {
    use crate::logic::slots::{MapRequest, Pool, PoolConfig, Slot, UnmapError};
    use kernel::alloc::{flags::GFP_KERNEL, KVec};

    let Ok(pool) = Pool::new(&PoolConfig::new(0x1000_0000, 256)) else {
        expect!(t, false, "Pool::new refused a 256-slot pool");
        return;
    };
    let n = pool.area_slots(0).unwrap_or(0);
    expect_eq!(t, n, 256);
    let mut storage = KVec::new();
    for _ in 0..n {
        if storage.push(Slot::new(), GFP_KERNEL).is_err() {
            expect!(t, false, "out of memory");
            return;
        }
    }
    let Ok(mut area) = pool.new_area(0, storage) else {
        expect!(t, false, "new_area refused its storage");
        return;
    };
    let req = MapRequest::new(0x12345, 5000).with_min_align_mask(0xfff);
    let block = match pool.plan(&req).map(|plan| area.try_alloc(&plan)) {
        Ok(Ok(Some(block))) => block,
        _ => {
            expect!(t, false, "allocation of 5000 bytes failed in an empty pool");
            return;
        }
    };
    expect_eq!(t, block.addr & 0xfff, 0x345);
    expect!(t, pool.contains(block.addr));
    expect_eq!(
        t,
        area.lookup(block.addr + 100, 10).map(|r| (r.orig, r.len)),
        Ok((0x12345 + 100, 10))
    );
    expect_eq!(
        t,
        area.release(block.addr, 4096).map(|r| r.size),
        Err(UnmapError::SizeMismatch {
            mapped: 5000,
            given: 4096
        })
    );
    expect_eq!(
        t,
        area.release(block.addr + 1, 5000).map(|r| r.size),
        Err(UnmapError::NotMappingStart)
    );
    expect_eq!(
        t,
        area.release(block.addr, 5000).map(|r| (r.orig, r.size)),
        Ok((0x12345, 5000))
    );
    expect_eq!(
        t,
        area.release(block.addr, 5000).map(|r| r.size),
        Err(UnmapError::NotMapped)
    );
    expect_eq!(
        t,
        area.release(0x1, 5000).map(|r| r.size),
        Err(UnmapError::NotBounceAddress)
    );
    expect_eq!(t, area.used_slots(), 0);
}

kunit_suite!(slots_suite, c"xen_swiotlb_rs_slots", [slots_in_kernel]);
