// SPDX-License-Identifier: GPL-2.0

//! KUnit suites for `kext/dma/`, driving QEMU's `edu` DMA engine (`selftests/edu/edu.rs`).
//!
//! Every data check goes through the device: the CPU writes a pattern, the device copies it, the
//! CPU compares. The `edu` device reports a bus address outside its 28-bit mask on QEMU's output
//! (and clamps it), which fails the lane, so a wrong address from the API cannot pass silently.

use crate::edu::{Edu, EduDriver, DEFAULT_MASK_BITS, MAX_XFER};
use crate::kext::dma::{
    Attrs, Bidirectional, CoherentAllocation, DmaDevice, DmaPool, DmaRegion, FromDevice, Mapping,
    SgTable, ToDevice,
};
use crate::kext::page::{Pages, Zone, MAX_ALLOC, PAGE_SIZE};
use crate::kext::{
    kunit::{self, Test},
    pci::Registration,
    xen,
};
use crate::logic::dma::dma_bit_mask;
use crate::{expect, expect_eq, kunit_suite, require_ok};
use kernel::{
    alloc::{
        flags::{__GFP_NOWARN, GFP_KERNEL, GFP_NOWAIT},
        KVec,
    },
    error::code::{EINVAL, EIO, ENOMEM},
    prelude::*,
};

const EDU_MASK: u64 = dma_bit_mask(DEFAULT_MASK_BITS);

/// A byte of a test pattern that differs between buffers (`seed`) and positions.
fn pattern(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8)
}

fn pattern_vec(seed: u8, len: usize) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(len, GFP_KERNEL)?;
    for i in 0..len {
        v.push(pattern(seed, i), GFP_KERNEL)?;
    }
    Ok(v)
}

/// Index of the first byte where `data` differs from `pattern(seed, _)`.
fn first_mismatch(data: &[u8], seed: u8) -> Option<usize> {
    data.iter()
        .enumerate()
        .position(|(i, b)| *b != pattern(seed, i))
}

/// Binds the `edu` driver for the duration of `f`.
fn with_edu(t: &Test, f: impl FnOnce(&Edu)) {
    let reg = match Registration::<EduDriver>::new(&crate::THIS_MODULE) {
        Ok(reg) => reg,
        Err(e) => {
            expect!(t, false, "registering the edu driver: {:?}", e);
            return;
        }
    };
    let bound = reg.with_bound(|_, edu| f(edu));
    expect!(
        t,
        bound.is_some(),
        "the edu driver did not bind (no 1234:11e8, or probe failed)"
    );
}

/// The bus address a direct (not bounced) mapping of `pages` would have.
fn direct_bus(pages: &Pages) -> u64 {
    (xen::pfn_to_mfn(pages.pfn()) as u64) << kernel::page::PAGE_SHIFT
}

/// Pages whose direct bus address is above the edu's reach, if the VM has such memory.
fn pages_above_mask(order: u32) -> Option<Pages> {
    let mut keep = KVec::new();
    for _ in 0..64 {
        let p = Pages::alloc(order, Zone::Any).ok()?;
        if direct_bus(&p) + (p.len() as u64) - 1 > EDU_MASK {
            return Some(p);
        }
        // Hold on to it so that the next allocation is another block.
        keep.push(p, GFP_KERNEL).ok()?;
    }
    None
}

/// The DMA API refuses masks the platform cannot honour with `EIO` and leaves the device's mask
/// as it was; a full 64-bit mask is always accepted.
fn mask_errors(t: &Test) {
    let Ok(dev) = t.device(kernel::c_str!("xendma-masks")) else {
        expect!(t, false, "kunit_device_register failed");
        return;
    };
    let dma = DmaDevice::new(dev);
    expect_eq!(
        t,
        kunit::set_mask_and_coherent(&dma, dma_bit_mask(64)),
        Ok(())
    );
    expect_eq!(t, dma.mask(), dma_bit_mask(64));
    // Below 24 bits no x86 DMA zone (and no swiotlb) can serve the device.
    expect_eq!(t, kunit::set_mask(&dma, dma_bit_mask(20)), Err(EIO));
    expect_eq!(
        t,
        kunit::set_coherent_mask(&dma, dma_bit_mask(20)),
        Err(EIO)
    );
    expect_eq!(
        t,
        kunit::set_mask_and_coherent(&dma, dma_bit_mask(12)),
        Err(EIO)
    );
    expect_eq!(t, dma.mask(), dma_bit_mask(64));
    expect_eq!(t, kunit::set_mask(&dma, dma_bit_mask(32)), Ok(()));
    expect_eq!(t, dma.mask(), dma_bit_mask(32));
}

/// `bit_mask` is the kernel's `DMA_BIT_MASK`.
fn bit_masks(t: &Test) {
    expect_eq!(t, dma_bit_mask(0), 0);
    expect_eq!(t, dma_bit_mask(28), 0x0fff_ffff);
    expect_eq!(t, dma_bit_mask(32), 0xffff_ffff);
    expect_eq!(t, dma_bit_mask(63), u64::MAX >> 1);
    expect_eq!(t, dma_bit_mask(64), u64::MAX);
}

/// `dma_supported` as the API reports it agrees with what `dma_set_mask` accepts, for every
/// width, on a bus-less device and on the edu device.
fn supports_matches_set_mask(t: &Test) {
    let check = |t: &Test, dma: &DmaDevice| {
        let saved = dma.mask();
        for bits in 12..=64 {
            let mask = dma_bit_mask(bits);
            let supported = dma.supports(mask);
            let set = kunit::set_mask(dma, mask);
            expect_eq!(t, (bits, supported), (bits, set.is_ok()));
            if let Err(e) = set {
                expect_eq!(t, e, EIO);
            }
        }
        expect_eq!(t, kunit::set_mask(dma, saved), Ok(()));
    };
    match t.device(kernel::c_str!("xendma-supported")) {
        Ok(dev) => check(t, &DmaDevice::new(dev)),
        Err(_) => expect!(t, false, "kunit_device_register failed"),
    }
    with_edu(t, |edu| check(t, edu.dma()));
}

/// Required mask, segment and mapping limits are what the kernel reports, and settable where
/// the bus provides storage.
fn limits(t: &Test) {
    with_edu(t, |edu| {
        let dma = edu.dma();
        let required = dma.required_mask();
        expect!(
            t,
            required >= dma_bit_mask(24),
            "required mask {:#x}",
            required
        );
        expect_eq!(t, required & required.wrapping_add(1), 0);
        // PCI devices have DMA parameters: 64 KiB by default, settable.
        expect_eq!(t, dma.max_seg_size(), 65536);
        expect_eq!(t, kunit::set_max_seg_size(dma, PAGE_SIZE as u32), Ok(()));
        expect_eq!(t, dma.max_seg_size(), PAGE_SIZE as u32);
        expect_eq!(t, kunit::set_max_seg_size(dma, 0), Err(EINVAL));
        expect_eq!(t, kunit::set_max_seg_size(dma, 65536), Ok(()));
        let max = dma.max_mapping_size();
        expect!(t, max >= 256 * 1024, "max mapping size {}", max);
        expect!(t, dma.opt_mapping_size() <= max);
        expect!(t, dma.can_mmap());
    });
    if let Ok(dev) = t.device(kernel::c_str!("xendma-limits")) {
        // A device on a bus without DMA parameters: the setter refuses instead of warning.
        let dma = DmaDevice::new(dev);
        expect_eq!(t, dma.max_seg_size(), 65536);
        expect_eq!(t, kunit::set_max_seg_size(&dma, 4096), Err(EIO));
    }
}

/// The driver binds, checks the device and sets the device's own 28-bit masks.
fn edu_probe(t: &Test) {
    with_edu(t, |edu| {
        expect_eq!(t, edu.dma().mask(), EDU_MASK);
        expect_eq!(t, edu.dma().coherent_mask(), EDU_MASK);
        expect_eq!(t, edu.transfers(), 0);
    });
}

/// Coherent buffers from 1 byte to several pages: the device copies a pattern from one to
/// another through its own buffer, byte-exact, and both lie under the coherent mask.
fn coherent_round_trip(t: &Test) {
    with_edu(t, |edu| {
        for (n, &size) in [1usize, 3, 100, 2048, 4096, 3 * 4096 + 123]
            .iter()
            .enumerate()
        {
            let seed = n as u8 * 17 + 1;
            let alloc =
                || CoherentAllocation::<u8>::alloc(edu.dma(), size, GFP_KERNEL, Attrs::NONE);
            let (Ok(mut src), Ok(dst)) = (alloc(), alloc()) else {
                expect!(t, false, "coherent allocation of {} bytes failed", size);
                return;
            };
            for b in [&src, &dst] {
                expect!(
                    t,
                    b.dma_handle() + size as u64 - 1 <= EDU_MASK,
                    "{:#x}",
                    b.dma_handle()
                );
            }
            let data = require_ok!(t, pattern_vec(seed, size));
            expect_eq!(t, src.write_bytes(0, &data), Ok(()));
            // Coherent memory starts zeroed.
            expect_eq!(t, dst.read(size - 1), Ok(0));
            expect_eq!(t, edu.copy(&src, 0, &dst, 0, size), Ok(()));
            let mut out = require_ok!(t, KVec::from_elem(0u8, size, GFP_KERNEL));
            expect_eq!(t, dst.read_bytes(0, &mut out), Ok(()));
            expect_eq!(t, (size, first_mismatch(&out, seed)), (size, None));
        }
    });
}

/// The sync rules, direction by direction, on buffers the device cannot reach directly where
/// the VM has such memory (so the kernel bounces them), else on ordinary pages:
/// - to device: the CPU's data reaches the device at map time, and a later CPU write (while the
///   CPU owns the buffer) reaches it after `sync_for_device`;
/// - from device: the device's data reaches the CPU at `sync_for_cpu` (with a bounced mapping,
///   not before), and is in the buffer after unmap; with `SKIP_CPU_SYNC` unmap copies nothing;
/// - bidirectional: both at once on one buffer.
fn streaming_directions(t: &Test) {
    with_edu(t, |edu| {
        let dma = edu.dma();
        let Ok(scratch) = CoherentAllocation::<u8>::alloc(dma, MAX_XFER, GFP_KERNEL, Attrs::NONE)
        else {
            expect!(t, false, "coherent allocation failed");
            return;
        };
        let fresh = || pages_above_mask(0).map_or_else(|| Pages::alloc(0, Zone::Any), Ok);

        // To the device.
        let mut pages = require_ok!(t, fresh());
        for (i, b) in pages.iter_mut().enumerate() {
            *b = pattern(1, i);
        }
        let bus = direct_bus(&pages);
        let mut map = match Mapping::<_, ToDevice>::new(dma, pages, Attrs::NONE) {
            Ok(m) => m,
            Err(e) => {
                expect!(t, false, "mapping to device: {:?}", e.error);
                return;
            }
        };
        let bounced = map.dma_handle() != bus;
        kernel::pr_info!(
            "streaming: to-device mapping {:#x} of bus {:#x} (bounced: {})\n",
            map.dma_handle(),
            bus,
            bounced
        );
        expect!(t, map.dma_handle() + PAGE_SIZE as u64 - 1 <= EDU_MASK);
        let mut out = [0u8; 256];
        expect_eq!(t, edu.copy(&map, 0, &scratch, 0, MAX_XFER), Ok(()));
        expect_eq!(t, scratch.read_bytes(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 1), None);
        {
            let mut cpu = map.sync_for_cpu();
            for (i, b) in cpu.iter_mut().enumerate() {
                *b = pattern(2, i);
            }
            cpu.sync_for_device();
        }
        expect_eq!(t, edu.copy(&map, 0, &scratch, 0, MAX_XFER), Ok(()));
        expect_eq!(t, scratch.read_bytes(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 2), None);
        drop(map.unmap());

        // From the device.
        let mut scratch = require_ok!(
            t,
            CoherentAllocation::<u8>::alloc(dma, MAX_XFER, GFP_KERNEL, Attrs::NONE)
        );
        let data = require_ok!(t, pattern_vec(3, MAX_XFER));
        expect_eq!(t, scratch.write_bytes(0, &data), Ok(()));
        for skip_sync in [false, true] {
            let mut pages = require_ok!(t, fresh());
            pages.fill(0xee);
            let bus = direct_bus(&pages);
            let attrs = if skip_sync {
                Attrs::SKIP_CPU_SYNC
            } else {
                Attrs::NONE
            };
            let mut map = match Mapping::<_, FromDevice>::new(dma, pages, attrs) {
                Ok(m) => m,
                Err(e) => {
                    expect!(t, false, "mapping from device: {:?}", e.error);
                    return;
                }
            };
            let bounced = map.dma_handle() != bus;
            expect_eq!(t, edu.copy(&scratch, 0, &map, 0, MAX_XFER), Ok(()));
            expect_eq!(t, map.peek_unsynced(0, &mut out), Ok(()));
            if bounced {
                // The device wrote the bounce buffer; the CPU's buffer has not changed yet.
                expect!(
                    t,
                    out.iter().all(|b| *b == 0xee),
                    "bounced data visible before sync"
                );
            } else {
                // Direct on a cache-coherent machine: the device wrote the CPU's memory.
                expect_eq!(t, first_mismatch(&out, 3), None);
            }
            if !skip_sync {
                let cpu = map.sync_for_cpu();
                expect_eq!(t, first_mismatch(&cpu[..MAX_XFER], 3), None);
                expect!(
                    t,
                    cpu[MAX_XFER..].iter().all(|b| *b == 0xee),
                    "untouched bytes changed"
                );
            }
            let pages = map.unmap();
            if skip_sync && bounced {
                // SKIP_CPU_SYNC: unmap does not copy the bounce buffer back.
                expect!(
                    t,
                    pages[..MAX_XFER].iter().all(|b| *b == 0xee),
                    "SKIP_CPU_SYNC copied"
                );
            } else {
                expect_eq!(t, first_mismatch(&pages[..MAX_XFER], 3), None);
            }
        }

        // Both ways on one buffer: the device copies the first half onto the second.
        let mut pages = require_ok!(t, fresh());
        for (i, b) in pages.iter_mut().enumerate() {
            *b = pattern(4, i);
        }
        let half = PAGE_SIZE / 2;
        let map = match Mapping::<_, Bidirectional>::new(dma, pages, Attrs::NONE) {
            Ok(m) => m,
            Err(e) => {
                expect!(t, false, "bidirectional mapping: {:?}", e.error);
                return;
            }
        };
        expect_eq!(t, edu.copy(&map, 0, &map, half, half), Ok(()));
        let pages = map.unmap();
        expect_eq!(t, first_mismatch(&pages[..half], 4), None);
        expect_eq!(t, first_mismatch(&pages[half..], 4), None);
    });
}

/// Memory above 256 MiB with the device's 28-bit mask: the kernel either bounces it (through
/// swiotlb or swiotlb-xen) or refuses the mapping; the API reports exactly that, and a bounced
/// mapping round-trips through the device. In the plain QEMU lane the kernel's swiotlb lies in
/// the 256 MiB below 4 GiB, so there it must bounce.
fn mask_above_reach(t: &Test) {
    with_edu(t, |edu| {
        let Some(mut pages) = pages_above_mask(1) else {
            expect!(
                t,
                false,
                "no memory above the 28-bit mask in this VM (give it more RAM)"
            );
            return;
        };
        let bus = direct_bus(&pages);
        for (i, b) in pages.iter_mut().enumerate() {
            *b = pattern(5, i);
        }
        let len = pages.len();
        let Ok(dst) = CoherentAllocation::<u8>::alloc(edu.dma(), len, GFP_KERNEL, Attrs::NONE)
        else {
            expect!(t, false, "coherent allocation failed");
            return;
        };
        match Mapping::<_, ToDevice>::new(edu.dma(), pages, Attrs::NO_WARN) {
            Ok(map) => {
                kernel::pr_info!(
                    "mask: {:#x} (bus {:#x}) bounced to {:#x}\n",
                    bus,
                    bus,
                    map.dma_handle()
                );
                expect!(
                    t,
                    map.dma_handle() + len as u64 - 1 <= EDU_MASK,
                    "{:#x}",
                    map.dma_handle()
                );
                expect_eq!(t, edu.copy(&map, 0, &dst, 0, len), Ok(()));
                let mut out = require_ok!(t, KVec::from_elem(0u8, len, GFP_KERNEL));
                expect_eq!(t, dst.read_bytes(0, &mut out), Ok(()));
                expect_eq!(t, first_mismatch(&out, 5), None);
            }
            Err(e) => {
                kernel::pr_info!("mask: mapping bus {:#x} refused: {:?}\n", bus, e.error);
                expect_eq!(t, e.error, ENOMEM);
                // The buffer comes back intact.
                expect_eq!(t, first_mismatch(&e.buf, 5), None);
                expect!(
                    t,
                    crate::kext::kunit::expected_xen().as_bytes() != b"none",
                    "plain QEMU has a swiotlb under 256 MiB: the kernel should have bounced"
                );
            }
        }
    });
}

/// Pools: blocks are aligned, never cross the boundary, never overlap, and are reachable by the
/// device; a pool page is used up before the next is taken, and freed blocks are reused; the
/// pool outlives its handle while blocks are out; malformed pools are refused.
fn pools(t: &Test) {
    with_edu(t, |edu| {
        let dma = edu.dma();
        let (size, align, boundary) = (96usize, 64usize, 1024usize);
        let pool = match DmaPool::new(kernel::c_str!("xendma-test"), dma, size, align, boundary) {
            Ok(p) => p,
            Err(e) => {
                expect!(t, false, "pool creation: {:?}", e);
                return;
            }
        };
        let mut blocks = KVec::new();
        for i in 0..300usize {
            let Ok(mut b) = pool.alloc(GFP_KERNEL) else {
                expect!(t, false, "pool allocation {} failed", i);
                return;
            };
            let a = b.dma_handle();
            expect_eq!(t, a % align as u64, 0);
            expect_eq!(
                t,
                a / boundary as u64,
                (a + size as u64 - 1) / boundary as u64
            );
            expect!(t, a + size as u64 - 1 <= EDU_MASK);
            expect_eq!(t, b.write_bytes(0, &[i as u8; 96]), Ok(()));
            if blocks.push(b, GFP_KERNEL).is_err() {
                return;
            }
        }
        // Blocks are 128 bytes (96 rounded up to the alignment), 8 per 1 KiB boundary, 32 per
        // page: a fresh pool fills each page before it takes another, so 300 blocks use 10 pages.
        let mut pages_used = KVec::new();
        for b in blocks.iter() {
            let page = b.dma_handle() >> kernel::page::PAGE_SHIFT;
            if !pages_used.contains(&page) && pages_used.push(page, GFP_KERNEL).is_err() {
                return;
            }
        }
        expect_eq!(t, pages_used.len(), 300usize.div_ceil(32));
        // No two blocks overlap: each still holds its own fill.
        let mut out = [0u8; 96];
        for (i, b) in blocks.iter().enumerate() {
            expect_eq!(t, b.read_bytes(0, &mut out), Ok(()));
            expect!(
                t,
                out.iter().all(|x| *x == i as u8),
                "block {} overwritten",
                i
            );
        }
        // The device copies one block into another.
        if let (Some(a), Some(b)) = (blocks.get(7), blocks.get(250)) {
            expect_eq!(t, edu.copy(a, 0, b, 0, size), Ok(()));
            expect_eq!(t, b.read_bytes(0, &mut out), Ok(()));
            expect!(t, out.iter().all(|x| *x == 7), "device copy between blocks");
        }
        // Reuse: a freed block's address is handed out again.
        let freed = blocks.get(100).map(|b| b.dma_handle());
        let mut rest = KVec::new();
        for (i, b) in core::mem::take(&mut blocks).into_iter().enumerate() {
            if i != 100 {
                let _ = rest.push(b, GFP_KERNEL);
            }
        }
        match pool.alloc(GFP_KERNEL) {
            Ok(b) => expect_eq!(t, Some(b.dma_handle()), freed),
            Err(e) => expect!(t, false, "{:?}", e),
        }
        // The pool lives until the last block goes.
        drop(pool);
        if let Some(b) = rest.first() {
            expect_eq!(t, b.read_bytes(0, &mut out), Ok(()));
            expect!(t, out.iter().all(|x| *x == 0));
        }
        drop(rest);

        for (size, align, boundary) in [
            (0, 8, 0),
            (64, 3, 0),
            (64, 8, 32),
            (64, 8, 1000),
            (MAX_ALLOC + 1, 8, 0),
        ] {
            let r = DmaPool::new(kernel::c_str!("xendma-bad"), dma, size, align, boundary);
            expect_eq!(
                t,
                (size, align, boundary, r.err()),
                (size, align, boundary, Some(EINVAL))
            );
        }
    });
}

/// Pool exhaustion for real: a pool of 64 KiB blocks on a device whose coherent mask is the
/// smallest the platform grants (the 16 MiB DMA zone on bare metal; under Xen, what swiotlb-xen's
/// pool allows, each block then exchanged for machine memory under the mask) allocates without
/// sleeping until the memory under the mask runs out: `ENOMEM`, no warning. Freed blocks are
/// then handed out again, and every block is under the mask.
fn pool_exhaustion(t: &Test) {
    let Ok(dev) = t.device(kernel::c_str!("xendma-exhaust")) else {
        expect!(t, false, "kunit_device_register failed");
        return;
    };
    let dma = DmaDevice::new(dev);
    // Under Xen PV every block is exchanged for machine memory under the mask, and the lowest
    // 16 MiB or so are taken by the kernel's own swiotlb-xen pool: start at 27 bits there.
    let pv = matches!(
        crate::kext::xen::Domain::current(),
        crate::kext::xen::Domain::Pv { .. }
    );
    let lowest = if pv { 27 } else { 24 };
    let Some(bits) =
        (lowest..=32).find(|&b| kunit::set_coherent_mask(&dma, dma_bit_mask(b)).is_ok())
    else {
        expect!(
            t,
            false,
            "no coherent mask of {} to 32 bits is supported",
            lowest
        );
        return;
    };
    const BLOCK: usize = 64 * 1024;
    let pool = match DmaPool::new(kernel::c_str!("xendma-exhaust"), &dma, BLOCK, 0, 0) {
        Ok(p) => p,
        Err(e) => {
            expect!(t, false, "pool creation: {:?}", e);
            return;
        }
    };
    // More blocks than fit under the mask: the loop must end on ENOMEM, not on the cap.
    let cap = ((dma_bit_mask(bits) as usize + 1) / BLOCK) + 64;
    let gfp = GFP_NOWAIT | __GFP_NOWARN;
    let mut blocks = KVec::new();
    let outcome = loop {
        if blocks.len() >= cap {
            break None;
        }
        match pool.alloc(gfp) {
            Ok(b) => {
                expect!(t, b.dma_handle() + BLOCK as u64 - 1 <= dma_bit_mask(bits));
                if blocks.push(b, GFP_KERNEL).is_err() {
                    break None;
                }
            }
            Err(e) => break Some(e),
        }
    };
    let n = blocks.len();
    kernel::pr_info!(
        "pool exhaustion: {}-bit coherent mask, {} blocks of 64 KiB, then {:?}\n",
        bits,
        n,
        outcome
    );
    expect_eq!(t, outcome, Some(ENOMEM));
    expect!(t, n > 0, "not a single block under a {}-bit mask", bits);
    // Free half; as many allocations succeed again.
    let keep = n / 2;
    let mut kept = KVec::new();
    for b in blocks.into_iter().take(keep) {
        if kept.push(b, GFP_KERNEL).is_err() {
            return;
        }
    }
    let mut blocks = kept;
    let mut again = 0;
    for _ in keep..n {
        match pool.alloc(gfp) {
            Ok(b) => {
                expect!(t, b.dma_handle() + BLOCK as u64 - 1 <= dma_bit_mask(bits));
                if blocks.push(b, GFP_KERNEL).is_ok() {
                    again += 1;
                }
            }
            Err(_) => break,
        }
    }
    expect!(
        t,
        again > 0,
        "no block could be had again after freeing {}",
        n - keep
    );
    drop(blocks);
    expect!(
        t,
        pool.alloc(GFP_KERNEL).is_ok(),
        "the pool works after everything was freed"
    );
}

/// A table over several pages, starting mid-page: mapped to the device, copied segment by
/// segment into a second table mapped from the device, compared.
fn sg_round_trip(t: &Test) {
    with_edu(t, |edu| {
        let dma = edu.dma();
        // Mixed orders on one side, single pages on the other, so the segments differ.
        let make = |orders: &[u32]| -> Result<KVec<Pages>> {
            let mut v = KVec::new();
            for &order in orders {
                v.push(Pages::alloc(order, Zone::Any)?, GFP_KERNEL)?;
            }
            Ok(v)
        };
        let (offset, len) = (100usize, 3 * PAGE_SIZE + 200);
        let (Ok(a), Ok(b)) = (make(&[0, 1, 0]), make(&[0, 0, 0, 0])) else {
            expect!(t, false, "page allocation failed");
            return;
        };
        let (Ok(mut src), Ok(dst)) = (
            SgTable::new(a, offset, len, PAGE_SIZE as u32),
            SgTable::new(b, 0, len, 1 << 16),
        ) else {
            expect!(t, false, "table creation failed");
            return;
        };
        let data = require_ok!(t, pattern_vec(6, len));
        expect_eq!(t, src.write(0, &data), Ok(()));
        let src = match src.map::<ToDevice>(dma, Attrs::NONE) {
            Ok(m) => m,
            Err(e) => {
                expect!(t, false, "mapping the source table: {:?}", e.error);
                return;
            }
        };
        let mut dst = match dst.map::<FromDevice>(dma, Attrs::NONE) {
            Ok(m) => m,
            Err(e) => {
                expect!(t, false, "mapping the destination table: {:?}", e.error);
                return;
            }
        };
        for m in [src.segment_count(), dst.segment_count()] {
            expect!(t, m >= 1);
        }
        expect!(t, src.segment_count() <= src.entries());
        expect_eq!(t, src.segments().map(|s| s.dma_len()).sum::<usize>(), len);
        expect_eq!(t, dst.segments().map(|s| s.dma_len()).sum::<usize>(), len);
        // Walk both segment lists with one cursor each.
        let (mut si, mut di) = (src.segments(), dst.segments());
        let (mut s, mut d) = (si.next(), di.next());
        let (mut so, mut doff, mut moved) = (0usize, 0usize, 0usize);
        while let (Some(sseg), Some(dseg)) = (s, d) {
            expect!(t, sseg.dma_handle() + sseg.dma_len() as u64 - 1 <= EDU_MASK);
            let n = (sseg.dma_len() - so)
                .min(dseg.dma_len() - doff)
                .min(MAX_XFER);
            if edu.copy(&sseg, so, &dseg, doff, n).is_err() {
                expect!(t, false, "device copy at {} failed", moved);
                return;
            }
            moved += n;
            so += n;
            doff += n;
            if so == sseg.dma_len() {
                s = si.next();
                so = 0;
            }
            if doff == dseg.dma_len() {
                d = di.next();
                doff = 0;
            }
        }
        expect_eq!(t, moved, len);
        {
            let cpu = dst.sync_for_cpu();
            let mut out = require_ok!(t, KVec::from_elem(0u8, len, GFP_KERNEL));
            expect_eq!(t, cpu.read(0, &mut out), Ok(()));
            expect_eq!(t, first_mismatch(&out, 6), None);
        }
        drop(src);
        let table = dst.unmap();
        let mut out = require_ok!(t, KVec::from_elem(0u8, len, GFP_KERNEL));
        expect_eq!(t, table.read(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 6), None);
        drop(table.into_pages());
    });
}

/// Malformed requests get an errno, and the kernel is left as it was.
fn bad_input(t: &Test) {
    with_edu(t, |edu| {
        let dma = edu.dma();
        // Coherent.
        let c = |n: usize, attrs| CoherentAllocation::<u64>::alloc(dma, n, GFP_KERNEL, attrs).err();
        expect_eq!(t, c(0, Attrs::NONE), Some(EINVAL));
        expect_eq!(t, c(usize::MAX / 4, Attrs::NONE), Some(EINVAL));
        expect_eq!(t, c(MAX_ALLOC, Attrs::NONE), Some(ENOMEM));
        expect_eq!(t, c(8, Attrs::NO_KERNEL_MAPPING), Some(EINVAL));
        if let Ok(mut buf) = CoherentAllocation::<u64>::alloc(dma, 8, GFP_KERNEL, Attrs::NONE) {
            expect_eq!(t, buf.read(8).err(), Some(EINVAL));
            expect_eq!(t, buf.write(8, 1), Err(EINVAL));
            expect_eq!(t, buf.write_bytes(60, &[0; 5]), Err(EINVAL));
            expect_eq!(t, buf.read_bytes(usize::MAX, &mut [0; 2]), Err(EINVAL));
            expect_eq!(t, buf.dma_range(64, 1).err(), Some(EINVAL));
            expect_eq!(t, buf.dma_range(0, 0).err(), Some(EINVAL));
            // The device refuses ranges outside its buffer or too long, before touching it.
            expect_eq!(t, edu.read_from(&buf, 0, 4095, 2), Err(EINVAL));
            expect_eq!(t, edu.read_from(&buf, 0, 0, 0), Err(EINVAL));
            expect_eq!(t, edu.write_to(0, &buf, 60, 8), Err(EINVAL));
        }
        // Streaming.
        match Mapping::<_, ToDevice>::new(dma, KVec::<u8>::new(), Attrs::NONE) {
            Ok(_) => expect!(t, false, "an empty buffer was mapped"),
            Err(e) => expect_eq!(t, e.error, EINVAL),
        }
        expect_eq!(t, Pages::alloc(11, Zone::Any).err(), Some(EINVAL));
        // A 4 MiB buffer: mapped directly if the device reaches it, otherwise too big for any
        // bounce buffer (silently, with NO_WARN).
        if let Ok(big) = Pages::alloc(10, Zone::Any) {
            let bus = direct_bus(&big);
            match Mapping::<_, FromDevice>::new(dma, big, Attrs::NO_WARN) {
                Ok(map) => {
                    expect_eq!(t, map.dma_handle(), bus);
                    expect!(t, bus + (4 << 20) - 1 <= EDU_MASK);
                }
                Err(e) => {
                    expect_eq!(t, e.error, ENOMEM);
                    expect_eq!(t, e.buf.len(), 4 << 20);
                }
            }
        }
        // Scatter-gather.
        let pages = || -> Result<KVec<Pages>> {
            let mut v = KVec::new();
            v.push(Pages::alloc(0, Zone::Any)?, GFP_KERNEL)?;
            Ok(v)
        };
        for (offset, len, seg) in [
            (0, 0, 4096),
            (4000, 200, 4096),
            (0, 4096, 512),
            (usize::MAX, 2, 4096),
        ] {
            if let Ok(p) = pages() {
                let r = SgTable::new(p, offset, len, seg).err();
                expect_eq!(t, (offset, len, seg, r), (offset, len, seg, Some(EINVAL)));
            }
        }
        expect_eq!(t, kunit::set_max_seg_size(dma, 0), Err(EINVAL));
    });
}

kunit_suite!(
    masks_suite,
    c"dma_api_masks",
    [mask_errors, bit_masks, supports_matches_set_mask, limits]
);
kunit_suite!(
    edu_suite,
    c"dma_api_edu",
    [
        edu_probe,
        coherent_round_trip: slow,
        streaming_directions: slow,
        mask_above_reach,
        pools,
        pool_exhaustion: slow,
        sg_round_trip: slow,
        bad_input
    ]
);
