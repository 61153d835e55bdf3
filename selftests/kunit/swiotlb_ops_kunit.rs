// SPDX-License-Identifier: GPL-2.0

//! KUnit suite for the ops table of xen_swiotlb_rs: attach and detach, the bounce decision, copy
//! rules, exhaustion, limits and misuse, with QEMU's 32-bit `edu` (0000:00:05.0 in the plain VM)
//! doing real DMA through the table.
//!
//! Each case builds a pool of its own (a few hundred KiB below 256 MiB) so that it can fill it,
//! force bouncing on or off, and read exact counters. Under Xen PV, where the pool is not
//! machine-contiguous yet, the cases check that attaching is refused.

use crate::dma_api::{
    bit_mask, Attrs, Bidirectional, CoherentAllocation, DmaDevice, DmaPool, DmaRegion, FromDevice,
    Mapping, Pages, SgTable, ToDevice, Zone,
};
use crate::edu::{Edu, EduDriver, MAX_XFER};
use crate::ffi::{dma_ops, ktest::Test, pci::Registration, xen};
use crate::logic::bounce::Direction;
use crate::{expect, expect_eq, kunit_suite, Engine, PoolParams, Swiotlb};
use kernel::{
    alloc::{flags::GFP_KERNEL, KVec},
    c_str,
    device::Device,
    error::code::{EBUSY, EEXIST, EINVAL, ENODEV, ENOENT},
    sync::Arc,
    types::ARef,
};

/// The 32-bit edu of the plain VM.
const EDU32: &[u8] = b"0000:00:05.0";
const FOUR_GIB: u64 = 1 << 32;

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

/// True in the lanes where attaching is possible (not Xen PV); otherwise the case is skipped.
fn can_attach(t: &Test) -> bool {
    let pv = matches!(xen::Domain::current(), xen::Domain::Pv { .. });
    if pv {
        t.skip(c_str!(
            "Xen PV: attaching needs the machine-contiguous pool (attach_errors checks the refusal)"
        ));
    }
    !pv
}

/// A test pool of `kib` KiB below 256 MiB (reachable by both edu devices), no module pinning.
fn pool(t: &Test, kib: usize, force: bool) -> Option<Arc<Swiotlb>> {
    let params = PoolParams {
        bytes: kib << 10,
        dma_bits: 28,
    };
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

/// As [`pool`], where devices can be attached to it (the case is skipped elsewhere).
fn attachable_pool(t: &Test, kib: usize, force: bool) -> Option<Arc<Swiotlb>> {
    if !can_attach(t) {
        return None;
    }
    pool(t, kib, force)
}

fn edu32() -> Option<ARef<Device>> {
    dma_ops::pci_device(c_str!("0000:00:05.0"))
}

/// Attaches the 32-bit edu to `sw` for the duration of `f` (no driver bound), then detaches it.
fn with_attached(t: &Test, sw: &Swiotlb, f: impl FnOnce(&Device, &DmaDevice)) {
    let Some(dev) = edu32() else {
        expect!(t, false, "no 32-bit edu at 0000:00:05.0 (plain VM)");
        return;
    };
    expect_eq!(t, sw.attach(EDU32), Ok(()));
    let dma = DmaDevice::new(&dev);
    f(&dev, &dma);
    expect_eq!(t, sw.detach(EDU32), Ok(()));
}

/// Attaches the 32-bit edu to `sw`, binds the edu driver and calls `f` with it, 32-bit masks set.
fn with_edu32(t: &Test, sw: &Swiotlb, f: impl FnOnce(&Device, &Edu)) {
    let Some(dev) = edu32() else {
        expect!(t, false, "no 32-bit edu at 0000:00:05.0 (plain VM)");
        return;
    };
    expect_eq!(t, sw.attach(EDU32), Ok(()));
    match Registration::<EduDriver>::new(&crate::THIS_MODULE) {
        Ok(reg) => {
            let ran = reg.with_bound_named(c_str!("0000:00:05.0"), |_, edu| {
                expect_eq!(t, edu.dma().set_mask_and_coherent(bit_mask(32)), Ok(()));
                f(&dev, edu)
            });
            expect!(t, ran.is_some(), "the edu driver did not bind 0000:00:05.0");
        }
        Err(e) => expect!(t, false, "registering the edu driver: {:?}", e),
    }
    expect_eq!(t, sw.detach(EDU32), Ok(()));
}

/// Pages entirely above 4 GiB (the VM has most of its memory there).
fn pages_above_4g(order: u32) -> Option<Pages> {
    let mut keep = KVec::new();
    for _ in 0..256 {
        let p = Pages::alloc(order, Zone::Any).ok()?;
        if p.phys() >= FOUR_GIB {
            return Some(p);
        }
        keep.push(p, GFP_KERNEL).ok()?;
    }
    None
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
    if matches!(xen::Domain::current(), xen::Domain::Pv { .. }) {
        // The device the lane has: the edu (dom0: 00:03.0, hidden by pciback; domU: its slot).
        let name = crate::ffi::ktest::with_pci_device(0x1234, 0x11e8, |d| {
            let mut b = [0u8; 13];
            let n = dma_ops::device_name(d).as_bytes();
            b[..n.len().min(12)].copy_from_slice(&n[..n.len().min(12)]);
            b
        });
        let Some(name) = name else {
            expect!(t, false, "no edu device in this lane");
            return;
        };
        let r = sw.attach(&name[..12]);
        expect_eq!(t, r.map_err(|e| e.to_errno()), Err(-95)); // EOPNOTSUPP
        expect_eq!(t, sw.attached(), 0);
        return;
    }
    expect_eq!(t, sw.detach(EDU32), Err(ENOENT));
    expect_eq!(t, sw.attach(EDU32), Ok(()));
    expect_eq!(t, sw.attach(EDU32), Err(EEXIST));
    // The short and upper-case forms name the same device.
    expect_eq!(t, sw.attach(b"00:05.0\n"), Err(EEXIST));
    expect_eq!(t, sw.attached(), 1);
    expect_eq!(t, sw.detach(b" 0000:00:05.0\n"), Ok(()));
    expect_eq!(t, sw.detach(EDU32), Err(ENOENT));
    expect_eq!(t, sw.attached(), 0);
}

/// Pool placement: every chunk below `2^dma_bits`; impossible widths refused.
fn pool_params(t: &Test) {
    let bad = Engine::new(
        PoolParams {
            bytes: 1 << 20,
            dma_bits: 11,
        },
        None,
    );
    expect_eq!(t, bad.err(), Some(EINVAL));
    // 2 MiB in the 16 MiB DMA zone: whatever was obtained lies below 2^24.
    let Ok(e) = Engine::new(
        PoolParams {
            bytes: 2 << 20,
            dma_bits: 24,
        },
        Some(false),
    ) else {
        expect!(t, false, "no pool at all below 16 MiB");
        return;
    };
    let p = e.pool();
    expect!(
        t,
        p.bytes() > 0 && p.bytes() <= 2 << 20,
        "{} bytes",
        p.bytes()
    );
    expect_eq!(t, p.nslabs(), p.bytes() >> 11);
    for c in 0..p.chunk_count() {
        let Some((first, last)) = p.chunk_range(c) else {
            continue;
        };
        expect!(
            t,
            last < 1 << 24,
            "chunk {:#x}-{:#x} above 16 MiB",
            first,
            last
        );
        expect_eq!(t, first % 4096, 0);
    }
    expect!(t, p.last_phys() < 1 << 24);
    drop(e);
    // 32 MiB cannot fit in the 16 MiB DMA zone: the pool settles for less, in smaller chunks,
    // and says so in the log.
    let Ok(e) = Engine::new(
        PoolParams {
            bytes: 32 << 20,
            dma_bits: 24,
        },
        Some(false),
    ) else {
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

/// Buffers above 4 GiB are bounced for the 32-bit edu, buffers below are mapped directly; the
/// device round trip is exact either way.
fn bounce_above_4g(t: &Test) {
    let Some(sw) = attachable_pool(t, 512, false) else {
        return;
    };
    let e = sw.engine().clone();
    with_edu32(t, &sw, |dev, edu| {
        let dma = edu.dma();
        let Ok(mut scratch) =
            CoherentAllocation::<u8>::alloc(dma, MAX_XFER, GFP_KERNEL, Attrs::NONE)
        else {
            expect!(t, false, "coherent allocation on our ops failed");
            return;
        };
        expect!(
            t,
            scratch.dma_handle() + MAX_XFER as u64 - 1 <= bit_mask(32)
        );
        let (maps0, b0) = attached_counts(&sw, dev);
        expect_eq!(t, maps0, 1); // the coherent buffer

        // High memory, to the device: bounced.
        let Some(mut high) = pages_above_4g(0) else {
            expect!(
                t,
                false,
                "no page above 4 GiB (is the VM given more than 4 GiB?)"
            );
            return;
        };
        fill(&mut high, 1);
        let phys = high.phys();
        let map = match Mapping::<_, ToDevice>::new(dma, high, Attrs::NONE) {
            Ok(m) => m,
            Err(err) => {
                expect!(t, false, "mapping above 4 GiB: {:?}", err.error);
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
            "a page above 4 GiB was not bounced"
        );
        expect!(t, e.pool().contains(map.dma_handle()));
        expect_eq!(t, attached_counts(&sw, dev), (2, b0 + 1));
        let mut out = [0u8; 512];
        expect_eq!(t, edu.copy(&map, 0, &scratch, 0, MAX_XFER), Ok(()));
        expect_eq!(t, scratch.read_bytes(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 1), None);
        drop(map.unmap());

        // High memory, from the device: bounced, copied back on unmap only.
        let Some(mut high) = pages_above_4g(0) else {
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
        expect!(t, e.pool().contains(map.dma_handle()));
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

        // Low memory (below 256 MiB): mapped directly, no bounce.
        let b1 = attached_counts(&sw, dev).1;
        let Ok(mut low) = Pages::alloc(0, Zone::Dma32) else {
            return;
        };
        fill(&mut low, 3);
        let phys = low.phys();
        let map = match Mapping::<_, Bidirectional>::new(dma, low, Attrs::NONE) {
            Ok(m) => m,
            Err(err) => {
                expect!(t, false, "mapping below 4 GiB: {:?}", err.error);
                return;
            }
        };
        expect_eq!(t, map.dma_handle(), phys);
        expect_eq!(t, attached_counts(&sw, dev), (2, b1));
        expect_eq!(t, edu.copy(&map, 0, &scratch, 0, MAX_XFER), Ok(()));
        expect_eq!(t, scratch.read_bytes(0, &mut out), Ok(()));
        expect_eq!(t, first_mismatch(&out, 3), None);
        drop(map.unmap());
        expect_eq!(t, attached_counts(&sw, dev), (1, b1));
        drop(scratch);
        expect_eq!(t, attached_counts(&sw, dev).0, 0);
        expect_eq!(t, e.pool().used_slots(), 0);
        expect_eq!(t, e.counters().1, 0); // no mapping failure
    });
}

/// A scatter-gather table above 4 GiB, bounced segment by segment, through the device.
fn sg_bounce(t: &Test) {
    let Some(sw) = attachable_pool(t, 512, false) else {
        return;
    };
    let e = sw.engine().clone();
    with_edu32(t, &sw, |_, edu| {
        let dma = edu.dma();
        let mut pages = KVec::new();
        for _ in 0..3 {
            let Some(p) = pages_above_4g(0) else {
                expect!(t, false, "no page above 4 GiB");
                return;
            };
            if pages.push(p, GFP_KERNEL).is_err() {
                return;
            }
        }
        let len = 3 * 4096 - 300;
        let Ok(mut sg) = SgTable::new(pages, 100, len, 4096) else {
            expect!(t, false, "sg table");
            return;
        };
        let mut data = KVec::new();
        for i in 0..len {
            if data.push(pattern(4, i), GFP_KERNEL).is_err() {
                return;
            }
        }
        expect_eq!(t, sg.write(0, &data), Ok(()));
        let Ok(dst) = CoherentAllocation::<u8>::alloc(dma, MAX_XFER, GFP_KERNEL, Attrs::NONE)
        else {
            return;
        };
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
            expect!(
                t,
                e.pool().contains(seg.dma_handle()),
                "segment not bounced"
            );
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

/// Filling the pool: the next mapping fails (warned unless NO_WARN), a freed one succeeds; a
/// scatter-gather mapping that does not fit is undone completely.
fn exhaustion(t: &Test) {
    // One chunk of 256 KiB: 128 slots of 2 KiB in one segment, four 64 KiB buffers.
    let Some(sw) = attachable_pool(t, 256, true) else {
        return;
    };
    let e = sw.engine().clone();
    expect_eq!(t, e.pool().nslabs(), 128);
    with_attached(t, &sw, |_, dma| {
        let mut held = KVec::new();
        for i in 0..4 {
            let Ok(p) = Pages::alloc(4, Zone::Any) else {
                return;
            };
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
        let Ok(p) = Pages::alloc(4, Zone::Any) else {
            return;
        };
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
        let Some(m) = held.into_iter().next() else {
            return;
        };
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
            let Ok(p) = Pages::alloc(4, Zone::Any) else {
                return;
            };
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
    let Some(sw) = attachable_pool(t, 512, true) else {
        return;
    };
    let e = sw.engine().clone();
    with_attached(t, &sw, |_, dma| {
        // One segment: 128 slots of 2 KiB.
        expect_eq!(t, dma.max_mapping_size(), 256 << 10);
        let Ok(big) = Pages::alloc(7, Zone::Any) else {
            return;
        };
        let (_, f0, _, _) = e.counters();
        let r = Mapping::<_, ToDevice>::new(dma, big, Attrs::NO_WARN);
        expect!(
            t,
            r.is_err(),
            "a 512 KiB mapping got through a 256 KiB limit"
        );
        expect_eq!(t, e.counters().1, f0 + 1);
        expect_eq!(t, e.pool().used_slots(), 0);
        // A mask must cover the pool, which lies above 16 MiB and below 256 MiB.
        let last = e.pool().last_phys();
        expect!(
            t,
            (1 << 24..1 << 28).contains(&last),
            "pool ends at {:#x}",
            last
        );
        expect!(
            t,
            dma.set_mask(bit_mask(24)).is_err(),
            "a 24-bit mask accepted"
        );
        expect_eq!(t, dma.set_mask(bit_mask(28)), Ok(()));
        expect_eq!(t, dma.set_mask(bit_mask(64)), Ok(()));
        expect!(t, !dma.supports(bit_mask(24)));
        // The required mask covers all of RAM (above 4 GiB in this VM).
        let req = dma.required_mask();
        expect!(
            t,
            req > bit_mask(32) && req.wrapping_add(1) & req == 0,
            "{:#x}",
            req
        );
        expect!(t, dma.can_mmap());
    });
}

/// Coherent memory and a DMA pool on our ops honour the coherent mask and are counted.
fn coherent(t: &Test) {
    let Some(sw) = attachable_pool(t, 256, false) else {
        return;
    };
    with_attached(t, &sw, |dev, dma| {
        expect_eq!(t, dma.set_mask_and_coherent(bit_mask(24)).is_err(), true);
        expect_eq!(t, dma.set_mask_and_coherent(bit_mask(28)), Ok(()));
        let mut bufs = KVec::new();
        for _ in 0..8 {
            match CoherentAllocation::<u8>::alloc(dma, 3 * 4096, GFP_KERNEL, Attrs::NONE) {
                Ok(c) => {
                    expect!(t, c.dma_handle() + 3 * 4096 - 1 <= bit_mask(28));
                    let _ = bufs.push(c, GFP_KERNEL);
                }
                Err(e) => expect!(t, false, "coherent alloc: {:?}", e),
            }
        }
        expect_eq!(t, attached_counts(&sw, dev).0, 8);
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
                .all(|b| b.dma_handle() + 95 <= bit_mask(28) && b.dma_handle() % 64 == 0)
        );
        drop(blocks);
        drop(pool);
        drop(bufs);
        expect_eq!(t, attached_counts(&sw, dev).0, 0);
    });
}

/// A detach with mappings outstanding is refused; unmap, then it succeeds.
fn detach_busy(t: &Test) {
    let Some(sw) = attachable_pool(t, 256, true) else {
        return;
    };
    let Some(dev) = edu32() else {
        expect!(t, false, "no 32-bit edu");
        return;
    };
    expect_eq!(t, sw.attach(EDU32), Ok(()));
    let dma = DmaDevice::new(&dev);
    let Ok(p) = Pages::alloc(0, Zone::Any) else {
        return;
    };
    match Mapping::<_, ToDevice>::new(&dma, p, Attrs::NONE) {
        Ok(m) => {
            expect_eq!(t, sw.detach(EDU32), Err(EBUSY));
            expect_eq!(t, sw.attached(), 1);
            drop(m.unmap());
        }
        Err(err) => expect!(t, false, "map: {:?}", err.error),
    }
    expect_eq!(t, sw.detach(EDU32), Ok(()));
    expect_eq!(t, sw.attached(), 0);
}

/// Unmaps and syncs of addresses we never handed out change nothing and are counted (the
/// warning is printed once). Called on the ops directly: through the DMA API, DMA-API debugging
/// would (rightly) report the misuse first.
fn unknown_addresses(t: &Test) {
    let Some(sw) = attachable_pool(t, 256, true) else {
        return;
    };
    let e = sw.engine().clone();
    with_attached(t, &sw, |dev, dma| {
        let Ok(p) = Pages::alloc(0, Zone::Any) else {
            return;
        };
        let Ok(m) = Mapping::<_, ToDevice>::new(dma, p, Attrs::NONE) else {
            expect!(t, false, "map");
            return;
        };
        let bounce = m.dma_handle();
        let (_, _, _, u0) = e.counters();
        let used = e.pool().used_slots();
        sw.with_attached(dev, |a| {
            use crate::ffi::dma_ops::DmaOps;
            // Inside the pool but not a mapping's start, a wrong size, outside any mapping.
            a.unmap_page(dev, bounce + 2048, 2048, Direction::ToDevice, Attrs::NONE);
            a.unmap_page(dev, bounce, 100, Direction::ToDevice, Attrs::NONE);
            a.sync_for_cpu(dev, bounce + 8192, 64, Direction::Bidirectional);
            expect_eq!(t, a.mappings(), 1);
        });
        expect_eq!(t, e.counters().3, u0 + 3);
        expect_eq!(t, e.pool().used_slots(), used);
        drop(m.unmap());
        expect_eq!(t, e.pool().used_slots(), 0);
        // Nothing mapped: an unmap of a direct address is unknown too.
        sw.with_attached(dev, |a| {
            use crate::ffi::dma_ops::DmaOps;
            a.unmap_page(dev, 0x1000, 4096, Direction::ToDevice, Attrs::NONE);
            expect_eq!(t, a.mappings(), 0);
        });
        expect_eq!(t, e.counters().3, u0 + 4);
    });
}

kunit_suite!(
    ops_suite,
    c"xen_swiotlb_rs_ops",
    [
        pool_params,
        attach_errors,
        bounce_above_4g,
        sg_bounce,
        exhaustion,
        limits,
        coherent,
        detach_busy,
        unknown_addresses
    ]
);
