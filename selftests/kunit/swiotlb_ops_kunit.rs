// SPDX-License-Identifier: GPL-2.0

//! KUnit suite for the ops table of xen_swiotlb_rs: attach and detach, the bounce decision, copy
//! rules, exhaustion, growth, limits and misuse, with a QEMU `edu` doing real DMA through the
//! table: the 32-bit edu at 0000:00:05.0 in the plain VM, the 28-bit edu at 0000:00:05.0 in the
//! Xen dom0, and the 28-bit edu passed through to the domU (0000:00:00.0 there). A bus address
//! outside the edu's mask aborts QEMU, so a wrong translation cannot pass.
//!
//! Each case builds a pool of its own (a few hundred KiB below 256 MiB; under Xen PV each segment
//! exchanged for machine-contiguous frames) so that it can fill it, force bouncing on or off,
//! and read exact counters.

use crate::edu::{Edu, EduDriver, MAX_XFER};
use crate::kext::compat::ARef;
use crate::kext::dma::{
    Attrs, Bidirectional, CoherentAllocation, DmaDevice, DmaPages, DmaPool, DmaRegion, FromDevice,
    Mapping, SgTable, ToDevice,
};
use crate::kext::page::{Gfp, Pages, Zone};
use crate::kext::xen_frames;
use crate::kext::{
    dma::ops as dma_ops,
    kunit::{self, Test},
    pci::Registration,
    xen,
};
use crate::logic::dma::dma_bit_mask;
use crate::logic::dma::DataDirection;
use crate::logic::xlate::{self, FrameMap};
use crate::p2m::P2m;
use crate::{
    expect, expect_eq, kunit_suite, require_ok, require_some, Engine, PoolParams, Swiotlb,
};
use kernel::{
    alloc::{flags::GFP_KERNEL, KVec},
    c_str,
    device::Device,
    error::code::{EBUSY, EEXIST, EINVAL, ENODEV, ENOENT, ENOMEM},
    str::CStr,
    sync::Arc,
};

/// The edu this lane drives and the width of its DMA mask.
fn edu_under_test() -> (&'static CStr, u32) {
    match xen::Domain::current() {
        xen::Domain::Pv { initial: false } => (c_str!("0000:00:00.0"), 28),
        xen::Domain::Pv { initial: true } => (c_str!("0000:00:05.0"), 28),
        _ => (c_str!("0000:00:05.0"), 32),
    }
}

/// The edu's PCI name, as written to `attach`.
fn edu_name() -> &'static [u8] {
    edu_under_test().0.as_bytes()
}

/// The edu's mask width.
fn edu_bits() -> u32 {
    edu_under_test().1
}

fn pv() -> bool {
    matches!(xen::Domain::current(), xen::Domain::Pv { .. })
}

/// Bus address of guest-physical `phys` in this domain.
fn bus_of(phys: u64) -> Option<u64> {
    xlate::phys_to_bus(&P2m::current(), phys)
}

fn pattern(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(29).wrapping_add(seed) ^ ((i >> 9) as u8)
}

fn fill(buf: &mut [u8], seed: u8) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(seed, i);
    }
}

fn first_mismatch(data: &[u8], seed: u8) -> Option<usize> {
    data.iter()
        .enumerate()
        .position(|(i, b)| *b != pattern(seed, i))
}

/// A test pool of `kib` KiB below 256 MiB (reachable by both edu devices), no module pinning.
fn pool(t: &Test, kib: usize, force: bool) -> Option<Arc<Swiotlb>> {
    let params = PoolParams::new(kib << 10, 28);
    let sw = Engine::new(params, Some(force)).and_then(|e| Swiotlb::new(e, None));
    expect!(
        t,
        sw.is_ok(),
        "test pool of {} KiB: {:?}",
        kib,
        sw.as_ref().err()
    );
    sw.ok()
}

fn edu() -> Option<ARef<Device>> {
    dma_ops::pci_device(edu_under_test().0)
}

/// Attaches the lane's edu to `sw` for the duration of `f` (no driver bound), then detaches it.
fn with_attached(t: &Test, sw: &Swiotlb, f: impl FnOnce(&Device, &DmaDevice)) {
    let Some(dev) = edu() else {
        expect!(t, false, "no edu at {}", edu_under_test().0);
        return;
    };
    expect_eq!(t, sw.attach(edu_name()), Ok(()));
    let dma = DmaDevice::new(&dev);
    f(&dev, &dma);
    expect_eq!(t, sw.detach(edu_name()), Ok(()));
}

/// Attaches the lane's edu to `sw`, binds the edu driver and calls `f` with it, its masks set.
fn with_edu(t: &Test, sw: &Swiotlb, f: impl FnOnce(&Device, &Edu)) {
    let Some(dev) = edu() else {
        expect!(t, false, "no edu at {}", edu_under_test().0);
        return;
    };
    expect_eq!(t, sw.attach(edu_name()), Ok(()));
    match Registration::<EduDriver>::new(&crate::THIS_MODULE) {
        Ok(reg) => {
            let ran = reg.with_bound_named(edu_under_test().0, |_, edu| {
                expect_eq!(
                    t,
                    kunit::set_mask_and_coherent(edu.dma(), dma_bit_mask(edu_bits())),
                    Ok(())
                );
                f(&dev, edu)
            });
            expect!(
                t,
                ran.is_some(),
                "the edu driver did not bind {}",
                edu_under_test().0
            );
        }
        Err(e) => expect!(t, false, "registering the edu driver: {:?}", e),
    }
    expect_eq!(t, sw.detach(edu_name()), Ok(()));
}

/// Pages the edu cannot reach: their bus addresses lie beyond its mask (the plain VM has most of
/// its memory above 4 GiB; a Xen guest's frames are mostly above 256 MiB machine address).
fn pages_beyond_mask(order: u32) -> Option<Pages> {
    let mask = dma_bit_mask(edu_bits());
    let mut keep = KVec::new();
    for _ in 0..256 {
        let p = Pages::alloc(order, Zone::Any).ok()?;
        if !bus_of(p.phys()).is_some_and(|b| b <= mask) {
            return Some(p);
        }
        keep.push(p, GFP_KERNEL).ok()?;
    }
    None
}

/// A page the edu reaches directly: from the 32-bit zone in the plain VM; under Xen PV a page
/// whose frame was exchanged for one below the edu's mask (give it back with
/// [`give_back_low_page`]).
fn page_within_mask() -> Option<Pages> {
    if !pv() {
        return Pages::alloc(0, Zone::Dma32).ok();
    }
    let p = Pages::alloc(0, Zone::Any).ok()?;
    xen_frames::make_contiguous(p, 0, 0, edu_bits(), Gfp::KERNEL)
        .ok()
        .map(|(p, _)| p)
}

/// Returns the frame of a [`page_within_mask`] page to Xen (nothing to do outside Xen PV).
fn give_back_low_page(p: Pages) {
    if pv() {
        let _ = xen_frames::undo_contiguous(p, 0, 0, Gfp::KERNEL);
    }
}

fn attached_counts(sw: &Swiotlb, dev: &Device) -> (usize, u64) {
    sw.with_attached(dev, |a| (a.mappings(), a.bounces()))
        .unwrap_or((usize::MAX, u64::MAX))
}

fn attach_errors(t: &Test) {
    let Some(sw) = pool(t, 256, false) else {
        return;
    };
    expect_eq!(t, sw.attach(b"bogus"), Err(EINVAL));
    expect_eq!(t, sw.attach(b""), Err(EINVAL));
    expect_eq!(t, sw.attach(b"0000:00:04.8"), Err(EINVAL));
    expect_eq!(t, sw.attach(b"0000:00:1f.7"), Err(ENODEV));
    expect_eq!(t, sw.detach(b"0000:00:1f.7"), Err(ENODEV));
    expect_eq!(t, sw.detach(edu_name()), Err(ENOENT));
    expect_eq!(t, sw.attach(edu_name()), Ok(()));
    expect_eq!(t, sw.attach(edu_name()), Err(EEXIST));
    // The short form (no domain), with a newline, and the long one with blanks name the same
    // device.
    let name = edu_name();
    let mut short = [b'\n'; 8];
    short[..7].copy_from_slice(&name[5..12]);
    expect_eq!(t, sw.attach(&short), Err(EEXIST));
    expect_eq!(t, sw.attached(), 1);
    let mut padded = [b' '; 14];
    padded[1..13].copy_from_slice(&name[..12]);
    padded[13] = b'\n';
    expect_eq!(t, sw.detach(&padded), Ok(()));
    expect_eq!(t, sw.detach(edu_name()), Err(ENOENT));
    expect_eq!(t, sw.attached(), 0);
}

/// Under Xen PV, every segment of `e`'s pool is one machine-contiguous extent below its limit,
/// in the p2m and in the m2p; outside Xen PV nothing was exchanged.
fn check_extents(t: &Test, e: &Engine) {
    let p = e.pool();
    if !pv() {
        expect_eq!(t, e.extents().count(), 0);
        return;
    }
    let mut bytes = 0;
    for c in 0..p.chunk_count() {
        let (Some((first, _)), Some(xs)) = (p.chunk_range(c), p.chunk_extents(c)) else {
            continue;
        };
        for x in xs {
            let pfn = (first >> 12) + x.first as u64;
            let n = 1u64 << x.order;
            expect!(
                t,
                e.extent_is_contiguous(pfn, x),
                "extent pfn {:#x} mfn {:#x} x{} ({} bits) not contiguous below the limit",
                pfn,
                x.mfn,
                n,
                x.bits
            );
            expect!(
                t,
                (0..n).all(|i| e.map().bfn_to_pfn(x.mfn + i) == Some(pfn + i)),
                "m2p of mfn {:#x} x{} does not point back at pfn {:#x}",
                x.mfn,
                n,
                pfn
            );
            bytes += (n as usize) << 12;
        }
    }
    expect_eq!(t, bytes, p.bytes());
}

/// Pool placement: the pool lies below `2^dma_bits` in bus addresses; bad parameters refused.
fn pool_params(t: &Test) {
    let base = PoolParams::new(1 << 20, 28);
    for (bad, why) in [
        (PoolParams::new(1 << 20, 11), "2^11"),
        (
            PoolParams {
                segment_bytes: 300 << 10,
                ..base
            },
            "300 KiB segments",
        ),
        (
            PoolParams {
                segment_bytes: 8 << 20,
                ..base
            },
            "8 MiB segments",
        ),
        (PoolParams::new(usize::MAX / 4, 32), "more than half of RAM"),
    ] {
        let r = Engine::new(bad, None);
        expect!(
            t,
            r.as_ref().err() == Some(&EINVAL),
            "{}: {:?}",
            why,
            r.as_ref().err()
        );
    }
    // 2 MiB below 2^28: all of it, below the limit.
    let Ok(e) = Engine::new(PoolParams::new(2 << 20, 28), Some(false)) else {
        expect!(t, false, "no 2 MiB pool below 256 MiB");
        return;
    };
    let p = e.pool();
    expect_eq!(t, p.bytes(), 2 << 20);
    expect_eq!(t, p.nslabs(), p.bytes() >> 11);
    expect!(
        t,
        p.last_bus() < 1 << 28,
        "pool ends at bus {:#x}",
        p.last_bus()
    );
    for c in 0..p.chunk_count() {
        if let Some((first, _)) = p.chunk_range(c) {
            expect_eq!(t, first % 4096, 0);
        }
    }
    check_extents(t, &e);
    if pv() {
        expect_eq!(t, e.extents().count(), 8);
        let widths = (
            e.extents().map(|x| x.bits).min(),
            e.extents().map(|x| x.bits).max(),
        );
        kernel::pr_info!(
            "ops: 2 MiB below 2^28: 8 extents, widths {:?}, built in {} us\n",
            widths,
            e.build_us()
        );
        expect!(t, widths.1.is_some_and(|w| w <= 28));
        return;
    }
    drop(e);
    // 32 MiB cannot fit in the 16 MiB DMA zone: the pool settles for less, in smaller chunks,
    // and says so in the log.
    let Ok(e) = Engine::new(PoolParams::new(32 << 20, 24), Some(false)) else {
        expect!(t, false, "no pool at all below 16 MiB");
        return;
    };
    let p = e.pool();
    expect!(t, p.bytes() < 16 << 20, "{} bytes below 16 MiB", p.bytes());
    let smallest = (0..p.chunk_count())
        .filter_map(|c| p.chunk_range(c))
        .map(|(first, last)| last - first + 1)
        .min();
    kernel::pr_info!(
        "ops: 32 MiB asked below 2^24: got {} KiB in {} chunks, smallest {:?} bytes\n",
        p.bytes() >> 10,
        p.chunk_count(),
        smallest
    );
    expect!(
        t,
        smallest.is_some_and(|s| s < 4 << 20),
        "no fallback to smaller chunks"
    );
    expect!(t, p.last_phys() < 1 << 24);
}

/// Free pages of the page allocator (blocks of a pool's orders bypass the per-CPU lists).
fn free_pages() -> i64 {
    crate::kext::page::free_pages() as i64
}

/// Widths and sizes that cannot be had fail cleanly, and give back everything they took.
fn exchange_failures(t: &Test) {
    let res0 = xen_frames::reservation();
    let free0 = free_pages();
    // Each failure is made LEAK_ROUNDS times, so that a leak of the smallest (64 pages) lowers
    // the free count by far more than other tasks' allocations meanwhile move it.
    const LEAK_ROUNDS: i64 = 8;
    for _ in 0..LEAK_ROUNDS {
        // Nothing fits below 1 MiB. (One segment only: freed blocks of order 9 would sit on the
        // per-CPU lists, uncounted, and blur the free-page check.)
        let r = Engine::new(PoolParams::new(256 << 10, 20), Some(false));
        expect_eq!(t, r.as_ref().err(), Some(&ENOMEM));
        // 4 MiB segments below 4 MiB: the first MiB is never free.
        let r = Engine::new(
            PoolParams {
                segment_bytes: 4 << 20,
                ..PoolParams::new(4 << 20, 22)
            },
            Some(false),
        );
        expect_eq!(t, r.as_ref().err(), Some(&ENOMEM));
    }
    let free1 = free_pages();
    kernel::pr_info!(
        "ops: failed pools: free pages {} -> {}, reservation {:?} -> {:?}\n",
        free0,
        free1,
        res0,
        xen_frames::reservation()
    );
    // Nothing lost: a leak of the smaller pool's 64 pages in every round lowers the count by
    // 512 pages or more. The count is the whole system's, and other tasks allocate and free
    // meanwhile (lanes saw -16 and +504 pages), so only a fall of half that fails.
    expect!(
        t,
        free1 - free0 > -(LEAK_ROUNDS * 64 / 2),
        "free pages {} -> {}",
        free0,
        free1
    );
    expect_eq!(t, xen_frames::reservation(), res0);
    if !pv() {
        return;
    }
    // One exchange Xen must refuse (a 256 KiB extent below 256 KiB): the old frames are back and
    // the pages hold what is written to them.
    let mut p = require_ok!(t, Pages::alloc(6, Zone::Any));
    let pfn = p.phys() >> 12;
    let mfns0 = frames_of(pfn);
    fill(&mut p, 7);
    let p = match xen_frames::make_contiguous(p, 0, 6, 18, Gfp::KERNEL) {
        Ok((p, mfn)) => {
            expect!(
                t,
                false,
                "Xen gave an extent below 256 KiB at mfn {:#x}",
                mfn
            );
            p
        }
        Err(f) => {
            kernel::pr_info!("ops: exchange below 2^18 refused: {:?}\n", f.error);
            let Some(p) = f.pages else {
                expect!(t, false, "pages lost in a refused exchange");
                return;
            };
            p
        }
    };
    let mfns1 = frames_of(pfn);
    expect_eq!(t, mfns0, mfns1);
    let mut p = p;
    fill(&mut p, 8);
    expect_eq!(t, first_mismatch(&p, 8), None);
    // A range outside the pages: EINVAL, nothing done.
    let Err(f) = xen_frames::make_contiguous(p, 32, 6, 28, Gfp::KERNEL) else {
        expect!(t, false, "an extent beyond the pages was exchanged");
        return;
    };
    expect_eq!(t, f.error, EINVAL);
    expect!(t, f.pages.is_some());
}

/// The machine frames behind the 64 guest frames from `pfn`.
fn frames_of(pfn: u64) -> [Option<u64>; 64] {
    let map = P2m::current();
    core::array::from_fn(|i| map.pfn_to_bfn(pfn + i as u64))
}

/// Buffers the edu cannot reach are bounced, buffers it reaches are mapped directly (under Xen PV
/// at their machine address, not their guest address); the device round trip is exact either way.
fn bounce_beyond_mask(t: &Test) {
    let Some(sw) = pool(t, 512, false) else {
        return;
    };
    let e = sw.engine().clone();
    with_edu(t, &sw, |dev, edu| {
        let dma = edu.dma();
        let Ok(mut scratch) =
            CoherentAllocation::<u8>::alloc(dma, MAX_XFER, GFP_KERNEL, Attrs::NONE)
        else {
            expect!(t, false, "coherent allocation on our ops failed");
            return;
        };
        expect!(
            t,
            scratch.dma_handle() + MAX_XFER as u64 - 1 <= dma_bit_mask(edu_bits())
        );
        let (maps0, b0) = attached_counts(&sw, dev);
        expect_eq!(t, maps0, 1); // the coherent buffer

        // High memory, to the device: bounced.
        let Some(mut high) = pages_beyond_mask(0) else {
            expect!(
                t,
                false,
                "no page beyond the edu's mask (is the VM given more than 4 GiB?)"
            );
            return;
        };
        fill(&mut high, 1);
        let phys = high.phys();
        let map = match Mapping::<_, ToDevice>::new(dma, high, Attrs::NONE) {
            Ok(m) => m,
            Err(err) => {
                expect!(t, false, "mapping beyond the mask: {:?}", err.error);
                return;
            }
        };
        kernel::pr_info!(
            "ops: page at {:#x} mapped to device at {:#x}\n",
            phys,
            map.dma_handle()
        );
        expect!(
            t,
            map.dma_handle() != phys,
            "a page beyond the mask was not bounced"
        );
        expect!(t, e.owns_bus(map.dma_handle()));
        expect_eq!(t, attached_counts(&sw, dev), (2, b0 + 1));
        let mut out = [0u8; 512];
        expect_eq!(t, edu.copy(&map, 0, &scratch, 0, MAX_XFER), Ok(()));
        expect_eq!(t, scratch.read_bytes(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 1), None);
        drop(map.unmap());

        // High memory, from the device: bounced, copied back on unmap only.
        let Some(mut high) = pages_beyond_mask(0) else {
            t.skip(c_str!(
                "from the device: no memory beyond the 28-bit mask to bounce from"
            ));
            return;
        };
        high.fill(0xee);
        let mut data = [0u8; MAX_XFER];
        fill(&mut data, 2);
        expect_eq!(t, scratch.write_bytes(0, &data), Ok(()));
        let map = match Mapping::<_, FromDevice>::new(dma, high, Attrs::NONE) {
            Ok(m) => m,
            Err(err) => {
                expect!(t, false, "mapping from device: {:?}", err.error);
                return;
            }
        };
        expect!(t, e.owns_bus(map.dma_handle()));
        expect_eq!(t, edu.copy(&scratch, 0, &map, 0, MAX_XFER), Ok(()));
        let mut before = [0u8; 64];
        expect_eq!(t, map.peek_unsynced(0, &mut before), Ok(()));
        expect!(
            t,
            before.iter().all(|&b| b == 0xee),
            "bounced data visible before unmap"
        );
        let high = map.unmap();
        expect_eq!(t, first_mismatch(&high[..MAX_XFER], 2), None);
        expect!(
            t,
            high[MAX_XFER..].iter().all(|&b| b == 0xee),
            "copy-back beyond the write"
        );

        // Memory the edu reaches: mapped directly, no bounce, at its bus address.
        let b1 = attached_counts(&sw, dev).1;
        let Some(mut low) = page_within_mask() else {
            expect!(t, false, "no page within the edu's mask");
            return;
        };
        fill(&mut low, 3);
        let phys = low.phys();
        let Some(bus) = bus_of(phys) else {
            expect!(t, false, "no bus address for {:#x}", phys);
            return;
        };
        kernel::pr_info!("ops: page {:#x} (bus {:#x}) mapped directly\n", phys, bus);
        let map = match Mapping::<_, Bidirectional>::new(dma, low, Attrs::NONE) {
            Ok(m) => m,
            Err(err) => {
                expect!(t, false, "mapping below 4 GiB: {:?}", err.error);
                return;
            }
        };
        expect_eq!(t, map.dma_handle(), bus);
        expect_eq!(t, attached_counts(&sw, dev), (2, b1));
        expect_eq!(t, edu.copy(&map, 0, &scratch, 0, MAX_XFER), Ok(()));
        expect_eq!(t, scratch.read_bytes(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 3), None);
        give_back_low_page(map.unmap());
        expect_eq!(t, attached_counts(&sw, dev), (1, b1));
        drop(scratch);
        expect_eq!(t, attached_counts(&sw, dev).0, 0);
        expect_eq!(t, e.pool().used_slots(), 0);
        expect_eq!(t, e.counters().1, 0); // no mapping failure
    });
}

/// `len` bytes of pattern `seed`.
fn patterned(len: usize, seed: u8) -> Option<KVec<u8>> {
    let mut v = KVec::new();
    for i in 0..len {
        v.push(pattern(seed, i), GFP_KERNEL).ok()?;
    }
    Some(v)
}

/// A scatter-gather table of `len` bytes from `offset` over three single pages beyond the edu's
/// mask (`None` when there are no such pages, or no memory).
fn sg_beyond_mask(offset: usize, len: usize) -> Option<SgTable> {
    let mut pages = KVec::new();
    for _ in 0..3 {
        pages.push(pages_beyond_mask(0)?, GFP_KERNEL).ok()?;
    }
    SgTable::new(pages, offset, len, 4096).ok()
}

/// A scatter-gather table beyond the edu's mask, bounced segment by segment, through the device.
fn sg_bounce(t: &Test) {
    let Some(sw) = pool(t, 512, false) else {
        return;
    };
    let e = sw.engine().clone();
    with_edu(t, &sw, |_, edu| {
        let dma = edu.dma();
        let len = 3 * 4096 - 300;
        let mut sg = require_some!(t, sg_beyond_mask(100, len));
        let data = require_some!(t, patterned(len, 4));
        expect_eq!(t, sg.write(0, &data), Ok(()));
        let dst = require_ok!(
            t,
            CoherentAllocation::<u8>::alloc(dma, MAX_XFER, GFP_KERNEL, Attrs::NONE)
        );
        let bounces0 = e.counters().0;
        let map = match sg.map::<ToDevice>(dma, Attrs::NONE) {
            Ok(m) => m,
            Err(err) => {
                expect!(t, false, "sg map: {:?}", err.error);
                return;
            }
        };
        let nseg = map.segment_count();
        expect_eq!(t, e.counters().0 - bounces0, nseg as u64);
        // Copy every segment through the device, in order, and compare.
        let mut off = 0usize;
        let mut out = [0u8; MAX_XFER];
        for seg in map.segments() {
            expect!(t, e.owns_bus(seg.dma_handle()), "segment not bounced");
            let mut done = 0;
            while done < seg.dma_len() {
                let n = (seg.dma_len() - done).min(MAX_XFER);
                expect_eq!(t, edu.copy(&seg, done, &dst, 0, n), Ok(()));
                expect_eq!(t, dst.read_bytes(0, &mut out[..n]), Ok(()));
                expect_eq!(t, &out[..n], &data[off + done..off + done + n]);
                done += n;
            }
            off += seg.dma_len();
        }
        expect_eq!(t, off, len);
        drop(map.unmap());
        expect_eq!(t, e.pool().used_slots(), 0);
    });
}

/// The scatter-gather syncs on a live bounced mapping through our ops: what the device writes
/// reaches the pages at `sync_for_cpu` and not before (the negative control: until then the pages
/// keep the CPU's bytes), and what the CPU then writes reaches the device at `sync_for_device`.
fn sg_sync_live(t: &Test) {
    let Some(sw) = pool(t, 512, false) else {
        return;
    };
    let e = sw.engine().clone();
    with_edu(t, &sw, |_, edu| {
        let dma = edu.dma();
        let len = 3 * 4096 - 700;
        let mut sg = require_some!(t, sg_beyond_mask(200, len));
        let cpu_bytes = require_some!(t, patterned(len, 1));
        let dev_bytes = require_some!(t, patterned(len, 2));
        let cpu_again = require_some!(t, patterned(len, 3));
        let mut out = require_some!(t, patterned(len, 0));
        expect_eq!(t, sg.write(0, &cpu_bytes), Ok(()));
        let mut src = require_ok!(
            t,
            CoherentAllocation::<u8>::alloc(dma, MAX_XFER, GFP_KERNEL, Attrs::NONE)
        );
        let mut map = match sg.map::<Bidirectional>(dma, Attrs::NONE) {
            Ok(m) => m,
            Err(err) => {
                expect!(t, false, "sg map: {:?}", err.error);
                return;
            }
        };
        // The device writes every segment, through the edu's buffer.
        let mut off = 0usize;
        for seg in map.segments() {
            expect!(t, e.owns_bus(seg.dma_handle()), "segment not bounced");
            let mut done = 0;
            while done < seg.dma_len() {
                let n = (seg.dma_len() - done).min(MAX_XFER);
                let at = off + done;
                expect_eq!(t, src.write_bytes(0, &dev_bytes[at..at + n]), Ok(()));
                expect_eq!(t, edu.copy(&src, 0, &seg, done, n), Ok(()));
                done += n;
            }
            off += seg.dma_len();
        }
        expect_eq!(t, off, len);
        expect_eq!(t, map.peek_unsynced(0, &mut out), Ok(()));
        expect!(
            t,
            first_mismatch(&out, 1).is_none(),
            "before sync_for_cpu the bounced pages must keep the CPU's bytes"
        );
        let mut cpu = map.sync_for_cpu();
        expect_eq!(t, cpu.read(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 2), None);
        expect_eq!(t, cpu.write(0, &cpu_again), Ok(()));
        cpu.sync_for_device();
        // The device reads every segment back into the coherent buffer.
        off = 0;
        for seg in map.segments() {
            let mut done = 0;
            while done < seg.dma_len() {
                let n = (seg.dma_len() - done).min(MAX_XFER);
                expect_eq!(t, edu.copy(&seg, done, &src, 0, n), Ok(()));
                expect_eq!(t, src.read_bytes(0, &mut out[..n]), Ok(()));
                expect_eq!(t, &out[..n], &cpu_again[off + done..off + done + n]);
                done += n;
            }
            off += seg.dma_len();
        }
        drop(map.unmap());
        expect_eq!(t, e.pool().used_slots(), 0);
    });
}

/// Filling the pool: the next mapping fails (warned unless NO_WARN), a freed one succeeds; a
/// scatter-gather mapping that does not fit is undone completely.
fn exhaustion(t: &Test) {
    // One chunk of 256 KiB: 128 slots of 2 KiB in one segment, four 64 KiB buffers.
    let Some(sw) = pool(t, 256, true) else {
        return;
    };
    let e = sw.engine().clone();
    expect_eq!(t, e.pool().nslabs(), 128);
    with_attached(t, &sw, |_, dma| {
        let mut held = KVec::new();
        for i in 0..4 {
            let p = require_ok!(t, Pages::alloc(4, Zone::Any));
            match Mapping::<_, ToDevice>::new(dma, p, Attrs::NONE) {
                Ok(m) => {
                    if held.push(m, GFP_KERNEL).is_err() {
                        return;
                    }
                }
                Err(err) => expect!(t, false, "mapping {} of 4: {:?}", i, err.error),
            }
        }
        expect_eq!(t, e.pool().used_slots(), 128);
        let (_, fail0, warn0, _) = e.counters();
        let p = require_ok!(t, Pages::alloc(4, Zone::Any));
        let p = match Mapping::<_, ToDevice>::new(dma, p, Attrs::NONE) {
            Ok(_) => {
                expect!(t, false, "a mapping succeeded in a full pool");
                return;
            }
            Err(err) => err.buf,
        };
        let (_, fail1, warn1, _) = e.counters();
        expect_eq!(t, fail1, fail0 + 1);
        expect_eq!(t, warn1, warn0 + 1);
        let p = match Mapping::<_, ToDevice>::new(dma, p, Attrs::NO_WARN) {
            Ok(_) => {
                expect!(t, false, "a mapping succeeded in a full pool");
                return;
            }
            Err(err) => err.buf,
        };
        let (_, fail2, warn2, _) = e.counters();
        expect_eq!(t, (fail2, warn2), (fail1 + 1, warn1));
        // Free one: the next mapping fits again.
        let m = require_some!(t, held.into_iter().next());
        drop(m.unmap());
        // (The other three were dropped, and so unmapped, with the iterator.)
        expect_eq!(t, e.pool().used_slots(), 0);
        let mut held = KVec::new();
        match Mapping::<_, ToDevice>::new(dma, p, Attrs::NONE) {
            Ok(m) => {
                let _ = held.push(m, GFP_KERNEL);
            }
            Err(err) => expect!(t, false, "mapping after a free: {:?}", err.error),
        }
        expect_eq!(t, e.pool().used_slots(), 32);
        // A scatter-gather table of 4 x 64 KiB cannot fit next to it: all or nothing.
        let mut pages = KVec::new();
        for _ in 0..4 {
            let p = require_ok!(t, Pages::alloc(4, Zone::Any));
            if pages.push(p, GFP_KERNEL).is_err() {
                return;
            }
        }
        let Ok(sg) = SgTable::new(pages, 0, 4 << 16, 1 << 16) else {
            expect!(t, false, "sg table");
            return;
        };
        let r = sg.map::<ToDevice>(dma, Attrs::NO_WARN);
        expect!(t, r.is_err(), "4 x 64 KiB mapped in 96 free slots");
        expect_eq!(t, e.pool().used_slots(), 32);
        drop(held);
        expect_eq!(t, e.pool().used_slots(), 0);
    });
}

/// Limits: the largest mapping, the masks the pool supports, the required mask.
fn limits(t: &Test) {
    let Some(sw) = pool(t, 512, true) else {
        return;
    };
    let e = sw.engine().clone();
    with_attached(t, &sw, |_, dma| {
        // One segment: 128 slots of 2 KiB.
        expect_eq!(t, dma.max_mapping_size(), 256 << 10);
        let big = require_ok!(t, Pages::alloc(7, Zone::Any));
        let (_, f0, _, _) = e.counters();
        let r = Mapping::<_, ToDevice>::new(dma, big, Attrs::NO_WARN);
        expect!(
            t,
            r.is_err(),
            "a 512 KiB mapping got through a 256 KiB limit"
        );
        expect_eq!(t, e.counters().1, f0 + 1);
        expect_eq!(t, e.pool().used_slots(), 0);
        // A mask must cover the pool, which lies above 16 MiB and below 256 MiB (bus addresses).
        let last = e.pool().last_bus();
        expect!(
            t,
            (1 << 24..1 << 28).contains(&last),
            "pool ends at {:#x}",
            last
        );
        expect!(
            t,
            kunit::set_mask(dma, dma_bit_mask(24)).is_err(),
            "a 24-bit mask accepted"
        );
        expect_eq!(t, kunit::set_mask(dma, dma_bit_mask(28)), Ok(()));
        expect_eq!(t, kunit::set_mask(dma, dma_bit_mask(64)), Ok(()));
        expect!(t, !dma.supports(dma_bit_mask(24)));
        // The required mask covers all of RAM: above 4 GiB in the plain VM; under Xen PV every
        // machine frame of the host (the VM has 2 GiB).
        let req = dma.required_mask();
        let floor = if pv() {
            dma_bit_mask(31)
        } else {
            dma_bit_mask(33)
        };
        expect!(
            t,
            req >= floor && req.wrapping_add(1) & req == 0,
            "{:#x}",
            req
        );
        expect!(t, dma.can_mmap());
    });
}

/// Coherent memory and a DMA pool on our ops honour the coherent mask and are counted.
fn coherent(t: &Test) {
    let Some(sw) = pool(t, 256, false) else {
        return;
    };
    with_attached(t, &sw, |dev, dma| {
        expect_eq!(
            t,
            kunit::set_mask_and_coherent(dma, dma_bit_mask(24)).is_err(),
            true
        );
        expect_eq!(
            t,
            kunit::set_mask_and_coherent(dma, dma_bit_mask(28)),
            Ok(())
        );
        let mut bufs = KVec::new();
        for _ in 0..8 {
            match CoherentAllocation::<u8>::alloc(dma, 3 * 4096, GFP_KERNEL, Attrs::NONE) {
                Ok(c) => {
                    expect!(t, c.dma_handle() + 3 * 4096 - 1 <= dma_bit_mask(28));
                    let _ = bufs.push(c, GFP_KERNEL);
                }
                Err(e) => expect!(t, false, "coherent alloc: {:?}", e),
            }
        }
        expect_eq!(t, attached_counts(&sw, dev).0, 8);
        // Under Xen PV the guest's pages lie beyond 256 MiB machine address (or are not
        // machine-contiguous): each buffer was exchanged for one that fits, and is given back
        // when freed.
        let exchanged = sw.with_attached(dev, |a| a.exchanged()).unwrap_or(0);
        kernel::pr_info!(
            "ops: coherent: 8 buffers, {} exchanged with Xen\n",
            exchanged
        );
        if pv() {
            expect!(
                t,
                exchanged > 0,
                "no coherent buffer was exchanged under Xen PV"
            );
        } else {
            expect_eq!(t, exchanged, 0);
        }
        let Ok(pool) = DmaPool::new(c_str!("xsw_kunit"), dma, 96, 64, 0) else {
            expect!(t, false, "dma pool");
            return;
        };
        let blocks: KVec<_> =
            (0..100)
                .filter_map(|_| pool.alloc(GFP_KERNEL).ok())
                .fold(KVec::new(), |mut v, b| {
                    let _ = v.push(b, GFP_KERNEL);
                    v
                });
        expect_eq!(t, blocks.len(), 100);
        expect!(
            t,
            blocks
                .iter()
                .all(|b| b.dma_handle() + 95 <= dma_bit_mask(28) && b.dma_handle() % 64 == 0)
        );
        drop(blocks);
        drop(pool);
        drop(bufs);
        expect_eq!(t, attached_counts(&sw, dev).0, 0);
        expect_eq!(t, sw.with_attached(dev, |a| a.exchanged()), Some(0));
    });
}

/// `alloc_pages_op`/`free_pages` and `get_sgtable` on our ops: non-coherent pages under the
/// edu's mask (exchanged under Xen PV, counted, given back when freed), which the device writes
/// and reads through `sync_for_cpu`/`sync_for_device`; and the table of a coherent buffer's pages,
/// whose page is the one the device reaches at the buffer's bus address.
fn pages_and_sgtable(t: &Test) {
    let Some(sw) = pool(t, 256, false) else {
        return;
    };
    with_edu(t, &sw, |dev, edu| {
        let dma = edu.dma();
        let len = 3 * 4096;
        let mut src = require_ok!(
            t,
            CoherentAllocation::<u8>::alloc(dma, len, GFP_KERNEL, Attrs::NONE)
        );
        let (maps0, _) = attached_counts(&sw, dev);
        let mut pages = require_ok!(t, DmaPages::alloc(dma, len, GFP_KERNEL));
        expect!(
            t,
            pages.dma_handle() + len as u64 - 1 <= dma_bit_mask(edu_bits()),
            "dma_alloc_pages gave {:#x}, beyond the edu's mask",
            pages.dma_handle()
        );
        expect_eq!(t, bus_of(pages.phys()), Some(pages.dma_handle()));
        expect_eq!(t, attached_counts(&sw, dev).0, maps0 + 1);
        let exchanged = sw.with_attached(dev, |a| a.exchanged()).unwrap_or(0);
        if pv() {
            expect!(
                t,
                exchanged > 0,
                "the pages were not exchanged under Xen PV"
            );
        }
        // The device writes them, the CPU reads after sync_for_cpu.
        let dev_bytes = require_some!(t, patterned(len, 5));
        let cpu_bytes = require_some!(t, patterned(len, 6));
        let mut out = require_some!(t, patterned(len, 0));
        expect_eq!(t, src.write_bytes(0, &dev_bytes), Ok(()));
        pages.sync_for_device();
        expect_eq!(t, edu.copy(&src, 0, &pages, 0, len), Ok(()));
        pages.sync_for_cpu();
        expect_eq!(t, pages.read_bytes(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 5), None);
        // The CPU writes, the device reads after sync_for_device.
        expect_eq!(t, pages.write_bytes(0, &cpu_bytes), Ok(()));
        pages.sync_for_device();
        expect_eq!(t, edu.copy(&pages, 0, &src, 0, len), Ok(()));
        expect_eq!(t, src.read_bytes(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 6), None);
        drop(pages);
        expect_eq!(t, attached_counts(&sw, dev).0, maps0);

        // get_sgtable: one entry covering the buffer, at the page the device writes.
        let table = require_ok!(t, src.pages());
        let mut ranges = [(0u64, 0usize); 4];
        let n = table.ranges(&mut ranges);
        expect_eq!(t, (n, table.entries()), (1, 1));
        expect_eq!(t, ranges[0].1, len);
        expect_eq!(t, bus_of(ranges[0].0), Some(src.dma_handle()));
        drop(table);
        drop(src);
        expect_eq!(t, sw.with_attached(dev, |a| a.exchanged()), Some(0));
    });
}

/// A detach with mappings outstanding is refused; unmap, then it succeeds.
fn detach_busy(t: &Test) {
    let Some(sw) = pool(t, 256, true) else {
        return;
    };
    let Some(dev) = edu() else {
        expect!(t, false, "no edu at {}", edu_under_test().0);
        return;
    };
    expect_eq!(t, sw.attach(edu_name()), Ok(()));
    let dma = DmaDevice::new(&dev);
    let p = require_ok!(t, Pages::alloc(0, Zone::Any));
    match Mapping::<_, ToDevice>::new(&dma, p, Attrs::NONE) {
        Ok(m) => {
            expect_eq!(t, sw.detach(edu_name()), Err(EBUSY));
            expect_eq!(t, sw.attached(), 1);
            drop(m.unmap());
        }
        Err(err) => expect!(t, false, "map: {:?}", err.error),
    }
    expect_eq!(t, sw.detach(edu_name()), Ok(()));
    expect_eq!(t, sw.attached(), 0);
}

/// Unmaps and syncs of addresses we never handed out change nothing and are counted (the
/// warning is printed once). Called on the ops directly: through the DMA API, DMA-API debugging
/// would (rightly) report the misuse first.
fn unknown_addresses(t: &Test) {
    let Some(sw) = pool(t, 256, true) else {
        return;
    };
    let e = sw.engine().clone();
    with_attached(t, &sw, |dev, dma| {
        let p = require_ok!(t, Pages::alloc(0, Zone::Any));
        let Ok(m) = Mapping::<_, ToDevice>::new(dma, p, Attrs::NONE) else {
            expect!(t, false, "map");
            return;
        };
        let bounce = m.dma_handle();
        let (_, _, _, u0) = e.counters();
        let used = e.pool().used_slots();
        sw.with_attached(dev, |a| {
            use crate::kext::dma::ops::DmaOps;
            // Inside the pool but not a mapping's start, a wrong size, outside any mapping.
            a.unmap_page(
                dev,
                bounce + 2048,
                2048,
                DataDirection::ToDevice,
                Attrs::NONE,
            );
            a.sync_for_cpu(dev, bounce + 8192, 64, DataDirection::Bidirectional);
            // Outside the pool while the only mapping is bounced: no direct mapping to undo.
            a.unmap_page(dev, 0x1000, 4096, DataDirection::ToDevice, Attrs::NONE);
            expect_eq!(t, a.mappings(), 1);
        });
        expect_eq!(t, e.counters().3, u0 + 3);
        expect_eq!(t, e.pool().used_slots(), used);
        drop(m.unmap());
        expect_eq!(t, e.pool().used_slots(), 0);
        // Nothing mapped: an unmap of a direct address is unknown too.
        sw.with_attached(dev, |a| {
            use crate::kext::dma::ops::DmaOps;
            a.unmap_page(dev, 0x1000, 4096, DataDirection::ToDevice, Attrs::NONE);
            expect_eq!(t, a.mappings(), 0);
        });
        expect_eq!(t, e.counters().3, u0 + 4);
    });
}

/// An unmap at a mapping's start with another size (a driver bug) frees the mapping whole and
/// copies back the bytes given, at most the mapped ones, as the kernel's swiotlb does: no slot
/// leaked, no data the driver expects lost. Called on the ops directly, as above.
fn wrong_size_unmap(t: &Test) {
    let Some(sw) = pool(t, 256, true) else {
        return;
    };
    let e = sw.engine().clone();
    with_attached(t, &sw, |dev, dma| {
        for (given, copied) in [(100, 100), (8192, 4096)] {
            let p = require_ok!(t, Pages::alloc(0, Zone::Any));
            let Ok(m) = Mapping::<_, Bidirectional>::new(dma, p, Attrs::NONE) else {
                expect!(t, false, "map");
                return;
            };
            let bounce = m.dma_handle();
            let (_, _, _, u0) = e.counters();
            let b0 = e.pool().snapshot().bounced_bytes;
            sw.with_attached(dev, |a| {
                use crate::kext::dma::ops::DmaOps;
                expect_eq!(t, a.mappings(), 1);
                a.unmap_page(
                    dev,
                    bounce,
                    given,
                    DataDirection::Bidirectional,
                    Attrs::NONE,
                );
                expect_eq!(t, a.mappings(), 0);
            });
            expect_eq!(t, e.pool().used_slots(), 0);
            expect_eq!(t, e.pool().snapshot().bounced_bytes - b0, copied);
            expect_eq!(t, e.counters().3, u0);
            // The driver's own unmap of it afterwards is a second one: refused and counted.
            drop(m.unmap());
            expect_eq!(t, e.counters().3, u0 + 1);
            expect_eq!(t, e.pool().used_slots(), 0);
        }
    });
}

/// Under Xen PV, a buffer whose two pages are each within the edu's reach but not consecutive in
/// machine memory is bounced (a page alone is mapped directly: see `bounce_beyond_mask`).
fn straddle(t: &Test) {
    if !pv() {
        t.skip(c_str!(
            "identity translation: consecutive frames are always contiguous"
        ));
        return;
    }
    let Some(sw) = pool(t, 256, false) else {
        return;
    };
    let e = sw.engine().clone();
    with_attached(t, &sw, |dev, dma| {
        expect_eq!(t, kunit::set_mask(dma, dma_bit_mask(edu_bits())), Ok(()));
        // Two pages, each exchanged on its own for a frame below the mask.
        let p = require_ok!(t, Pages::alloc(1, Zone::Any));
        let Ok((p, m0)) = xen_frames::make_contiguous(p, 0, 0, edu_bits(), Gfp::KERNEL) else {
            expect!(t, false, "no frame below the mask for page 0");
            return;
        };
        let Ok((mut p, m1)) = xen_frames::make_contiguous(p, 1, 0, edu_bits(), Gfp::KERNEL) else {
            expect!(t, false, "no frame below the mask for page 1");
            return;
        };
        kernel::pr_info!(
            "ops: straddle: pfns {:#x}+1 at mfns {:#x}, {:#x}\n",
            p.phys() >> 12,
            m0,
            m1
        );
        if m1 == m0 + 1 {
            // Xen happened to hand out consecutive frames: nothing to straddle.
            t.skip(c_str!("Xen gave consecutive machine frames"));
        } else {
            fill(&mut p, 5);
            let b0 = attached_counts(&sw, dev).1;
            match Mapping::<_, ToDevice>::new(dma, p, Attrs::NONE) {
                Ok(m) => {
                    expect!(
                        t,
                        e.owns_bus(m.dma_handle()),
                        "a buffer over non-consecutive machine frames was not bounced"
                    );
                    expect_eq!(t, attached_counts(&sw, dev).1, b0 + 1);
                    p = m.unmap();
                }
                Err(err) => {
                    expect!(t, false, "map: {:?}", err.error);
                    return;
                }
            }
        }
        let _ = xen_frames::undo_contiguous(p, 0, 0, Gfp::KERNEL)
            .and_then(|p| xen_frames::undo_contiguous(p, 1, 0, Gfp::KERNEL));
        expect_eq!(t, e.pool().used_slots(), 0);
    });
}

/// Growth: once three quarters of the pool are in use the worker adds memory ahead of need; a
/// burst of mappings beyond the pool then makes it grow from the mapping path as well, up to its
/// maximum; every mapping of the burst succeeds and reaches the device intact, and past the
/// maximum mappings fail cleanly. Under Xen PV the same burst then goes to the kernel's
/// swiotlb-xen on the same device, its own ops restored.
fn growth(t: &Test) {
    const SEG: usize = 256 << 10;
    const BURST: usize = 40;
    const MAX: usize = 12 << 20;
    let params = PoolParams {
        max_bytes: MAX,
        ..PoolParams::new(4 * SEG, 28)
    };
    let Ok(sw) = Engine::new(params, Some(true)).and_then(|e| Swiotlb::new(e, None)) else {
        expect!(t, false, "growable pool");
        return;
    };
    let e = sw.engine().clone();
    with_edu(t, &sw, |_, edu| {
        let dma = edu.dma();
        let Ok(scratch) = CoherentAllocation::<u8>::alloc(dma, MAX_XFER, GFP_KERNEL, Attrs::NONE)
        else {
            expect!(t, false, "coherent allocation on our ops failed");
            return;
        };
        let mut held = KVec::new();
        let mut failed = 0;
        let map = |i: usize| {
            let mut p = Pages::alloc(6, Zone::Any).ok()?;
            fill(&mut p, i as u8);
            Mapping::<_, ToDevice>::new(dma, p, Attrs::NO_WARN).ok()
        };
        // Three of the four segments: the worker is asked to grow, and does, with no mapping
        // having failed.
        for i in 0..3 {
            match map(i) {
                Some(m) => {
                    let _ = held.push(m, GFP_KERNEL);
                }
                None => failed += 1,
            }
        }
        e.quiesce();
        let (grows, worker, _) = e.growth();
        kernel::pr_info!(
            "ops: growth: 3 of 4 segments in use: the worker grew the pool to {} KiB ({} growths)\n",
            e.pool().bytes() >> 10,
            grows
        );
        expect_eq!(t, failed, 0);
        expect!(
            t,
            worker >= 1,
            "the worker did not grow the pool at 75 % use"
        );
        expect!(t, e.pool().bytes() > 4 * SEG);
        for i in 3..BURST {
            match map(i) {
                Some(m) => {
                    if held.push(m, GFP_KERNEL).is_err() {
                        return;
                    }
                }
                None => failed += 1,
            }
        }
        let (grows, worker, grow_failures) = e.growth();
        kernel::pr_info!(
            "ops: growth: burst of {} x 256 KiB from a 1 MiB pool: {} failed; pool {} KiB in {} chunks, grown {} times ({} by the worker, {} attempts added nothing)\n",
            BURST,
            failed,
            e.pool().bytes() >> 10,
            e.pool().chunk_count(),
            grows,
            worker,
            grow_failures
        );
        expect_eq!(t, failed, 0);
        expect!(
            t,
            e.pool().bytes() >= BURST * SEG && e.pool().bytes() <= MAX
        );
        // The last mapping lies in grown memory: the device reads it intact.
        let mut out = [0u8; MAX_XFER];
        if let Some(m) = held.last() {
            expect!(t, e.owns_bus(m.dma_handle()));
            expect_eq!(
                t,
                edu.copy(m, SEG - MAX_XFER, &scratch, 0, MAX_XFER),
                Ok(())
            );
            expect_eq!(t, scratch.read_bytes(0, &mut out), Ok(()));
            let want =
                (0..MAX_XFER).all(|i| out[i] == pattern((BURST - 1) as u8, SEG - MAX_XFER + i));
            expect!(t, want, "grown pool: data differs at the device");
        }
        // Past the maximum: clean failures, the pool stays within it.
        let f0 = e.counters().1;
        let mut more = 0;
        for _ in 0..16 {
            let p = require_ok!(t, Pages::alloc(6, Zone::Any));
            if let Ok(m) = Mapping::<_, ToDevice>::new(dma, p, Attrs::NO_WARN) {
                more += 1;
                let _ = held.push(m, GFP_KERNEL);
            }
        }
        expect!(
            t,
            more < 16,
            "16 more mappings fit in a full pool at its maximum"
        );
        expect_eq!(t, e.counters().1 - f0, 16 - more as u64);
        expect!(t, e.pool().bytes() <= MAX);
        drop(held);
        drop(scratch);
        expect_eq!(t, e.pool().used_slots(), 0);
    });
    e.quiesce();
    check_extents(t, &e);
    if !pv() {
        return;
    }
    // The kernel's swiotlb-xen, same device, same burst of buffers it must bounce.
    let dev = require_some!(t, edu());
    let dma = DmaDevice::new(&dev);
    // Both Xen lanes give swiotlb-xen a pool the edu reaches; a refusal means the comparison
    // cannot run, which must not pass silently.
    if let Err(err) = kunit::set_mask(&dma, dma_bit_mask(edu_bits())) {
        expect!(
            t,
            false,
            "the kernel's swiotlb-xen refuses a {}-bit mask ({:?}): its pool lies beyond it, no comparison",
            edu_bits(),
            err
        );
        return;
    }
    let mut held = KVec::new();
    let mut failed = 0;
    for _ in 0..BURST {
        let Some(p) = pages_beyond_mask(6) else {
            expect!(t, false, "no 256 KiB block beyond the edu's mask");
            return;
        };
        match Mapping::<_, ToDevice>::new(&dma, p, Attrs::NONE) {
            Ok(m) => {
                let _ = held.push(m, GFP_KERNEL);
            }
            Err(_) => failed += 1,
        }
    }
    kernel::pr_info!(
        "ops: growth: the same burst on the kernel's swiotlb-xen: {} of {} mappings failed\n",
        failed,
        BURST
    );
    // The dom0 lane boots with a kernel pool (swiotlb=4096: 8 MiB) smaller than the burst.
    if matches!(xen::Domain::current(), xen::Domain::Pv { initial: true }) {
        expect!(
            t,
            failed > 0,
            "swiotlb-xen held a 10 MiB burst in an 8 MiB pool"
        );
    }
}

/// Segments larger than 256 KiB allow larger mappings: a 1 MiB buffer through 1 MiB segments,
/// with 2 MiB refused; a 2 MiB buffer through 4 MiB segments (`segment_kb=4096`, the 2 MiB
/// mappings amdgpu makes in a Qubes OS dom0). The pool of two segments holds as many such
/// mappings at once as fit in its segments, and each buffer arrives intact at the device at its
/// start, middle and end.
fn large_segments(t: &Test) {
    // (segment order, mapping order, an order that must be refused)
    for (seg_order, map_order, refused) in [(8u32, 8u32, Some(9u32)), (10, 9, None)] {
        large_segment_case(t, seg_order, map_order, refused);
    }
}

fn large_segment_case(t: &Test, seg_order: u32, map_order: u32, refused: Option<u32>) {
    let seg_bytes = 4096usize << seg_order;
    let map_bytes = 4096usize << map_order;
    let params = PoolParams {
        segment_bytes: seg_bytes,
        ..PoolParams::new(2 * seg_bytes, 28)
    };
    let Ok(sw) = Engine::new(params, Some(true)).and_then(|e| Swiotlb::new(e, None)) else {
        expect!(t, false, "pool with {} KiB segments", seg_bytes >> 10);
        return;
    };
    let e = sw.engine().clone();
    check_extents(t, &e);
    expect!(t, e.extents().all(|x| x.order == seg_order));
    with_edu(t, &sw, |_, edu| {
        let dma = edu.dma();
        expect_eq!(t, dma.max_mapping_size(), seg_bytes);
        let scratch = require_ok!(
            t,
            CoherentAllocation::<u8>::alloc(dma, MAX_XFER, GFP_KERNEL, Attrs::NONE)
        );
        // As many mappings as the pool's segments hold, all live at once. The buffers are
        // allocated whole, so aligned to their size as the pool's segments are: the case in
        // which the allocator looks for a placement that does not alias, and one that moved a
        // mapping into its segment would leave no room for the next.
        let fit = 2 * (seg_bytes / map_bytes);
        let mut held = KVec::new();
        for k in 0..fit {
            let mut big = require_ok!(t, Pages::alloc(map_order, Zone::Any));
            fill(&mut big, 9 + k as u8);
            match Mapping::<_, ToDevice>::new(dma, big, Attrs::NONE) {
                Ok(m) => {
                    expect!(t, e.owns_bus(m.dma_handle()));
                    if held.push(m, GFP_KERNEL).is_err() {
                        return;
                    }
                }
                Err(err) => {
                    expect!(
                        t,
                        false,
                        "{} KiB mapping {} of {}: {:?}",
                        map_bytes >> 10,
                        k + 1,
                        fit,
                        err.error
                    );
                    break;
                }
            }
        }
        expect_eq!(t, e.pool().used_slots(), e.pool().nslabs());
        let mut out = [0u8; MAX_XFER];
        for (k, m) in held.iter().enumerate() {
            for off in [0, map_bytes / 2, map_bytes - MAX_XFER] {
                expect_eq!(t, edu.copy(m, off, &scratch, 0, MAX_XFER), Ok(()));
                expect_eq!(t, scratch.read_bytes(0, &mut out), Ok(()));
                let ok = (0..MAX_XFER).all(|i| out[i] == pattern(9 + k as u8, off + i));
                expect!(
                    t,
                    ok,
                    "{} KiB mapping {}: data differs at offset {:#x}",
                    map_bytes >> 10,
                    k + 1,
                    off
                );
            }
        }
        // The pool is full: one more is refused.
        let more = require_ok!(t, Pages::alloc(map_order, Zone::Any));
        expect!(
            t,
            Mapping::<_, ToDevice>::new(dma, more, Attrs::NO_WARN).is_err(),
            "a {} KiB mapping in a full pool",
            map_bytes >> 10
        );
        for m in held {
            drop(m.unmap());
        }
        if let Some(order) = refused {
            let huge = require_ok!(t, Pages::alloc(order, Zone::Any));
            expect!(
                t,
                Mapping::<_, ToDevice>::new(dma, huge, Attrs::NO_WARN).is_err(),
                "a {} KiB mapping through {} KiB segments",
                4 << order,
                seg_bytes >> 10
            );
        }
        drop(scratch);
        expect_eq!(t, e.pool().used_slots(), 0);
    });
}

kunit_suite!(
    ops_suite,
    c"xen_swiotlb_rs_ops",
    [
        pool_params,
        exchange_failures,
        attach_errors,
        bounce_beyond_mask,
        sg_bounce,
        sg_sync_live,
        exhaustion,
        limits,
        coherent,
        pages_and_sgtable,
        detach_busy,
        unknown_addresses,
        wrong_size_unmap,
        straddle,
        growth,
        large_segments: slow
    ]
);
