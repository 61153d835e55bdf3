// SPDX-License-Identifier: GPL-2.0

//! xen_swiotlb_rs: DMA bounce buffering through machine-contiguous memory for Xen PV guests.
//!
//! A `dma_map_ops` table, attachable to chosen devices at run time, that bounces DMA through a
//! pool of machine-contiguous frames obtained from Xen with `XENMEM_exchange` (identity frames
//! when not under Xen).
//!
//! The pool comes from the page allocator below `2^dma_bits`, in chunks of up to 4 MiB; each
//! chunk is a pool of the slot allocator in `logic/slots.rs`, with one irq-saving lock per
//! area. Devices are put on the ops table at load (`attach=`) or at run time (debugfs
//! `attach`/`detach`); their driver is unbound first and re-probed afterwards. See
//! `Documentation/xen-swiotlb-rs.rst`.

// The engine's initialiser has more fields than pin_init!'s default recursion allows.
#![recursion_limit = "256"]

use kernel::prelude::*;

pub mod dma_api;
pub mod ffi;

/// The bounce pool's kernel-independent core, the same files the host crate tests.
pub mod logic {
    #[path = "bounce.rs"]
    pub mod bounce;
    #[path = "pciname.rs"]
    pub mod pciname;
    #[path = "slots.rs"]
    pub mod slots;
    #[path = "xlate.rs"]
    pub mod xlate;
}

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/xen_swiotlb_rs_kunit.rs"]
mod kunit_tests;

/// The `edu` test device driver (test builds only).
#[cfg(xendma_kunit)]
#[path = "selftests/edu/edu.rs"]
pub mod edu;

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/dma_api_kunit.rs"]
mod dma_api_kunit;

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/swiotlb_ops_kunit.rs"]
mod swiotlb_ops_kunit;

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use dma_api::{Attrs, Gfp, Pages, Zone, MAX_ORDER};
use ffi::bounce::BouncePool;
use ffi::debugfs::{Debugfs, Out, Source};
use ffi::dma_ops::{self, CallerBuf, DmaOps, Installed};
use ffi::xen::Domain;
use ffi::xen_frames::{self, ChunkMem, Extent, P2m};
use kernel::device::Device;
use kernel::sync::{new_mutex, Arc, Mutex};
use kernel::time::Ktime;
use kernel::workqueue::{self, impl_has_work, new_work, Work, WorkItem};
use kernel::{c_str, str::CStr};
use logic::bounce::{self as policy, dma_bit_mask, fls64, Direction, DmaLimits, MapDecision};
use logic::pciname::{self, PciName};
use logic::slots::{self, MapError, UnmapError};
use logic::xlate::{self, FrameMap, IdentityMap};

module! {
    type: XenSwiotlbRs,
    name: "xen_swiotlb_rs",
    author: "The xendma authors",
    description: "Xen swiotlb DMA bouncing through machine-contiguous frames",
    license: "GPL",
}

/// The default segment: 128 slots of 2 KiB (upstream's `IO_TLB_SEGSIZE << IO_TLB_SHIFT`).
pub const DEFAULT_SEGMENT_BYTES: usize = 256 << 10;

/// What a pool is built from.
#[derive(Clone, Copy, Debug)]
pub struct PoolParams {
    /// Bytes asked for.
    pub bytes: usize,
    /// The pool must lie below `2^dma_bits` (bus addresses, that is machine addresses under Xen).
    pub dma_bits: u32,
    /// Bytes per segment, a power of two from 256 KiB to 4 MiB: under Xen each segment is one
    /// machine-contiguous extent, and no mapping is larger than a segment.
    pub segment_bytes: usize,
    /// The pool grows on demand up to this many bytes (no growth if not above `bytes`).
    pub max_bytes: usize,
}

impl PoolParams {
    /// `bytes` below `2^dma_bits`, default segments, no growth.
    pub const fn new(bytes: usize, dma_bits: u32) -> Self {
        Self {
            bytes,
            dma_bits,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_bytes: bytes,
        }
    }

    /// The segment size as a page order; `EINVAL` unless a power of two in 256 KiB..=4 MiB.
    fn segment_order(&self) -> Result<u32> {
        let b = self.segment_bytes;
        if !b.is_power_of_two()
            || !(DEFAULT_SEGMENT_BYTES..=dma_api::PAGE_SIZE << MAX_ORDER).contains(&b)
        {
            return Err(EINVAL);
        }
        Ok(b.trailing_zeros() - kernel::page::PAGE_SHIFT as u32)
    }
}

/// Where the force-bounce switch is read.
enum Force {
    /// The `force_bounce` module parameter (writable at run time).
    Param,
    /// A switch of its own (test pools).
    Own(AtomicBool),
}

/// The pool and its counters, shared by the devices attached to it.
#[pin_data]
pub struct Engine {
    pool: BouncePool,
    map: P2m,
    params: PoolParams,
    seg_order: u32,
    /// The address width the next exchange starts at (only grows, as in swiotlb-xen).
    bits: AtomicU32,
    /// Bytes in the pool plus bytes being added.
    committed: AtomicUsize,
    grow_queued: AtomicBool,
    /// Growth from a mapping is tried until it fails once, and again after the worker grew.
    grow_inline: AtomicBool,
    grows: AtomicU64,
    /// Of which by the worker.
    worker_grows: AtomicU64,
    grow_failures: AtomicU64,
    build_us: AtomicU64,
    force: Force,
    bounces: AtomicU64,
    map_failures: AtomicU64,
    warnings: AtomicU64,
    unknown: AtomicU64,
    warned_unknown: AtomicBool,
    #[pin]
    work: Work<Engine>,
}

impl_has_work! {
    impl HasWork<Self> for Engine { self.work }
}

impl WorkItem for Engine {
    type Pointer = Arc<Engine>;

    fn run(this: Arc<Engine>) {
        let step = (this.params.bytes / 4).max(dma_api::PAGE_SIZE << MAX_ORDER);
        if this.grow(step, Gfp::KERNEL) > 0 {
            this.grow_inline.store(true, Ordering::Relaxed);
        }
        this.grow_queued.store(false, Ordering::Release);
    }
}

/// The allocator flags of a `gfp_t` context.
fn alloc_flags(gfp: Gfp) -> kernel::alloc::Flags {
    if gfp.may_sleep() {
        GFP_KERNEL
    } else {
        GFP_ATOMIC
    }
}

/// `GFP_ATOMIC | __GFP_NOWARN`: growth from a mapping, which may not sleep.
const GFP_GROW_ATOMIC: Gfp =
    Gfp::from_raw(kernel::bindings::GFP_ATOMIC | kernel::bindings::__GFP_NOWARN);

impl Engine {
    /// Builds a pool. `force` gives the pool a force-bounce switch of its own; `None` follows
    /// the `force_bounce` module parameter. Under Xen PV every segment is exchanged for a
    /// machine-contiguous extent below `2^dma_bits`.
    pub fn new(params: PoolParams, force: Option<bool>) -> Result<Arc<Self>> {
        let seg_order = params.segment_order().inspect_err(|_| {
            pr_err!(
                "pool: segment of {} bytes: must be a power of two from 256 KiB to 4 MiB\n",
                params.segment_bytes
            )
        })?;
        if params.dma_bits < 12 || params.bytes > (ffi::ram_end() / 2) as usize {
            pr_err!(
                "pool: {} KiB below 2^{} cannot be had (RAM ends at {:#x})\n",
                params.bytes >> 10,
                params.dma_bits,
                ffi::ram_end()
            );
            return Err(EINVAL);
        }
        let max_bytes = params.max_bytes.max(params.bytes);
        let seg_bytes = dma_api::PAGE_SIZE << seg_order;
        let pool = BouncePool::new(
            max_bytes / seg_bytes + 1,
            ffi::possible_cpus(),
            seg_bytes >> slots::DEFAULT_SLOT_SHIFT,
        )?;
        let map = P2m::current();
        let pv = map.is_pv();
        let first_width = seg_order + kernel::page::PAGE_SHIFT as u32;
        let e = Arc::pin_init(
            pin_init!(Self {
                pool,
                map,
                params: PoolParams { max_bytes, ..params },
                seg_order,
                bits: AtomicU32::new(first_width),
                committed: AtomicUsize::new(0),
                grow_queued: AtomicBool::new(false),
                grow_inline: AtomicBool::new(true),
                grows: AtomicU64::new(0),
                worker_grows: AtomicU64::new(0),
                grow_failures: AtomicU64::new(0),
                build_us: AtomicU64::new(0),
                force: match force {
                    Some(f) => Force::Own(AtomicBool::new(f)),
                    None => Force::Param,
                },
                bounces: AtomicU64::new(0),
                map_failures: AtomicU64::new(0),
                warnings: AtomicU64::new(0),
                unknown: AtomicU64::new(0),
                warned_unknown: AtomicBool::new(false),
                work <- new_work!("xen_swiotlb_rs_grow"),
            }),
            GFP_KERNEL,
        )?;
        let t0 = Ktime::ktime_get();
        let (got, fell_back) = e.fill(params.bytes, Gfp::KERNEL);
        e.committed.store(got, Ordering::Relaxed);
        let us = (Ktime::ktime_get() - t0).to_ns() / 1000;
        if fell_back || got < params.bytes {
            pr_warn!(
                "pool: {} KiB of the {} KiB asked for below 2^{} ({} chunks; {})\n",
                got >> 10,
                params.bytes >> 10,
                params.dma_bits,
                e.pool.chunk_count(),
                if pv {
                    "Xen had no more machine-contiguous memory in reach, or the guest no 4 MiB blocks"
                } else {
                    "4 MiB blocks ran out"
                }
            );
        }
        if got == 0 {
            pr_err!("pool: no memory below 2^{}\n", params.dma_bits);
            return Err(ENOMEM);
        }
        if pv {
            pr_info!(
                "pool: {} MiB exchanged with Xen in {} segments of {} KiB, widths {}..{} bits, in {} us\n",
                got >> 20,
                e.extents().count(),
                seg_bytes >> 10,
                e.extents().map(|x| x.bits).min().unwrap_or(0),
                e.extents().map(|x| x.bits).max().unwrap_or(0),
                us
            );
        }
        e.build_us.store(us as u64, Ordering::Relaxed);
        Ok(e)
    }

    /// True if the p2m maps guest frames `pfn..` of extent `x` to its machine frames, in order,
    /// and the extent lies below `2^bits` and `2^dma_bits`.
    pub fn extent_is_contiguous(&self, pfn: u64, x: &Extent) -> bool {
        let n = 1u64 << x.order;
        let end = (x.mfn + n) << xlate::XEN_PAGE_SHIFT;
        (0..n).all(|i| self.map.pfn_to_bfn(pfn + i) == Some(x.mfn + i))
            && end - 1 <= dma_bit_mask(x.bits)
            && end - 1 <= dma_bit_mask(self.params.dma_bits)
    }

    /// True if bus address `dma` is inside the pool (a bounce buffer).
    pub fn owns_bus(&self, dma: u64) -> bool {
        xlate::bus_to_phys(&self.map, dma).is_some_and(|p| self.pool.contains(p))
    }

    /// The guest-to-machine map the engine translates with.
    pub fn map(&self) -> &P2m {
        &self.map
    }

    /// Every exchanged segment of the pool.
    pub fn extents(&self) -> impl Iterator<Item = Extent> + '_ {
        (0..self.pool.chunk_count())
            .filter_map(|c| self.pool.chunk_extents(c))
            .flat_map(|x| x.iter().copied())
    }

    /// One chunk of `2^order` pages for the pool: exchanged under Xen PV, else taken from the
    /// page allocator below the limit.
    fn chunk(&self, order: u32, gfp: Gfp) -> Result<ChunkMem> {
        let bits = self.params.dma_bits;
        if self.map.is_pv() {
            let pages = Pages::alloc_gfp(order, Zone::Any, gfp)?;
            let mut width = self.bits.load(Ordering::Relaxed);
            let r = ChunkMem::exchanged(pages, self.seg_order, &mut width, bits, gfp);
            self.bits.fetch_max(width, Ordering::Relaxed);
            return r;
        }
        let zone = match bits {
            0..=24 => Zone::Dma,
            25..=32 => Zone::Dma32,
            _ => Zone::Any,
        };
        let limit = if bits >= 64 {
            u64::MAX
        } else {
            dma_bit_mask(bits)
        };
        let pages = Pages::alloc_gfp(order, zone, gfp)?;
        if pages.phys() + (pages.len() as u64 - 1) > limit {
            return Err(ENOMEM);
        }
        Ok(ChunkMem::plain(pages))
    }

    /// Adds about `bytes` to the pool in chunks of at most `2^MAX_ORDER` pages, falling back to
    /// smaller ones (down to a segment) when big ones cannot be had. Returns the bytes added and
    /// whether it had to fall back.
    fn fill(&self, bytes: usize, gfp: Gfp) -> (usize, bool) {
        let mut left = bytes;
        let mut order = MAX_ORDER;
        let mut fell_back = false;
        while left > 0 {
            while order > self.seg_order && (dma_api::PAGE_SIZE << order) > left {
                order -= 1;
            }
            let added = self
                .chunk(order, gfp)
                .and_then(|mem| self.pool.add(mem, &self.map, alloc_flags(gfp)));
            match added {
                Ok(()) => left = left.saturating_sub(dma_api::PAGE_SIZE << order),
                Err(_) if order > self.seg_order => {
                    order -= 1;
                    fell_back = true;
                }
                Err(_) => break,
            }
        }
        (bytes - left.min(bytes), fell_back)
    }

    /// Grows the pool by about `want` bytes (whole segments, within the maximum): the bytes
    /// added.
    fn grow(&self, want: usize, gfp: Gfp) -> usize {
        let seg = dma_api::PAGE_SIZE << self.seg_order;
        let max = self.params.max_bytes;
        // Whole segments: `want` rounded up, the room left rounded down (no panicking arithmetic).
        let segs = |bytes: usize| bytes.checked_div(seg).unwrap_or(0);
        let mut claimed = 0;
        let claim = self
            .committed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                let n = segs(want.saturating_add(seg.saturating_sub(1)))
                    .min(segs(max.saturating_sub(c)));
                claimed = n.saturating_mul(seg);
                (claimed > 0).then_some(c.saturating_add(claimed))
            });
        if claim.is_err() {
            return 0;
        }
        let (added, _) = self.fill(claimed, gfp);
        if added < claimed {
            self.committed.fetch_sub(claimed - added, Ordering::AcqRel);
        }
        if added > 0 {
            self.grows.fetch_add(1, Ordering::Relaxed);
            if gfp.may_sleep() {
                self.worker_grows.fetch_add(1, Ordering::Relaxed);
            }
            if !ffi::warn_ratelimit() {
                return added;
            }
            pr_info!(
                "pool: grew by {} KiB to {} KiB ({} context)\n",
                added >> 10,
                self.pool.bytes() >> 10,
                if gfp.may_sleep() { "worker" } else { "mapping" }
            );
        } else {
            self.grow_failures.fetch_add(1, Ordering::Relaxed);
        }
        added
    }

    /// True if the pool may still grow.
    fn can_grow(&self) -> bool {
        self.committed.load(Ordering::Relaxed) < self.params.max_bytes
    }

    /// After a mapping: once three quarters of the slots are in use, asks the worker to grow
    /// the pool ahead of need.
    fn maybe_grow_ahead(this: &Arc<Self>) {
        if !this.can_grow() {
            return;
        }
        let used = this.pool.stats().snapshot().used_slots;
        if used * 4 < this.pool.nslabs() * 3 || this.grow_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if workqueue::system_long().enqueue(this.clone()).is_err() {
            this.grow_queued.store(false, Ordering::Release);
        }
    }

    /// Waits for a queued or running growth to finish (before the module goes away).
    pub fn quiesce(&self) {
        ffi::flush_work(&self.work);
    }

    /// Growth so far: (times grown, of which by the worker, attempts that added nothing).
    pub fn growth(&self) -> (u64, u64, u64) {
        (
            self.grows.load(Ordering::Relaxed),
            self.worker_grows.load(Ordering::Relaxed),
            self.grow_failures.load(Ordering::Relaxed),
        )
    }

    /// Microseconds the initial pool took to build.
    pub fn build_us(&self) -> u64 {
        self.build_us.load(Ordering::Relaxed)
    }

    fn forced(&self) -> bool {
        match &self.force {
            Force::Param => ffi::params::force_bounce(),
            Force::Own(f) => f.load(Ordering::Relaxed),
        }
    }

    /// Sets the pool's own force-bounce switch (no effect on a pool following the parameter).
    pub fn set_forced(&self, on: bool) {
        if let Force::Own(f) = &self.force {
            f.store(on, Ordering::Relaxed);
        }
    }

    /// The pool.
    pub fn pool(&self) -> &BouncePool {
        &self.pool
    }

    /// Counters: (bounces, map failures, exhaustion warnings printed, unknown unmaps/syncs).
    pub fn counters(&self) -> (u64, u64, u64, u64) {
        (
            self.bounces.load(Ordering::Relaxed),
            self.map_failures.load(Ordering::Relaxed),
            self.warnings.load(Ordering::Relaxed),
            self.unknown.load(Ordering::Relaxed),
        )
    }

    /// A mapping failed: count it and, unless `quiet`, say why (rate-limited).
    fn fail(&self, dev: &Device, size: usize, why: &dyn core::fmt::Display, quiet: bool) {
        self.map_failures.fetch_add(1, Ordering::Relaxed);
        if quiet || !ffi::warn_ratelimit() {
            return;
        }
        self.warnings.fetch_add(1, Ordering::Relaxed);
        pr_warn!(
            "{}: cannot map {} bytes: {} ({} of {} slots in use)\n",
            dma_ops::device_name(dev),
            size,
            why,
            self.pool.stats().snapshot().used_slots,
            self.pool.nslabs()
        );
    }

    /// An unmap or sync named an address we did not hand out: warn once, change nothing.
    fn unknown(&self, dev: &Device, what: &str, dma: u64, size: usize) {
        self.unknown.fetch_add(1, Ordering::Relaxed);
        if !self.warned_unknown.swap(true, Ordering::Relaxed) {
            pr_warn!(
                "{}: {} of {} bytes at {:#x}, which was not mapped by us: ignored\n",
                dma_ops::device_name(dev),
                what,
                size,
                dma
            );
        }
    }
}

/// A device on our ops: its pool and its own counters.
pub struct Attached {
    engine: Arc<Engine>,
    mappings: AtomicUsize,
    bounces: AtomicU64,
    /// Coherent buffers exchanged with Xen and not yet freed.
    exchanged: AtomicUsize,
    _module: Option<ffi::ModuleRef>,
}

impl Attached {
    /// Mappings and coherent allocations not yet undone.
    pub fn mappings(&self) -> usize {
        self.mappings.load(Ordering::Relaxed)
    }

    /// Mappings that were bounced.
    pub fn bounces(&self) -> u64 {
        self.bounces.load(Ordering::Relaxed)
    }

    /// Coherent buffers exchanged with Xen and not yet freed.
    pub fn exchanged(&self) -> usize {
        self.exchanged.load(Ordering::Relaxed)
    }

    /// Counts one mapping undone; false if there was none to undo (a bogus unmap).
    fn put_mapping(&self) -> bool {
        self.mappings
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl DmaOps for Attached {
    fn map_page(&self, dev: &Device, buf: CallerBuf, _dir: Direction, attrs: Attrs) -> Option<u64> {
        let e = &*self.engine;
        let params = dma_ops::dma_params(dev);
        let limits = DmaLimits::new(params.mask).with_bus_limit(params.bus_limit);
        let quiet = attrs.contains(Attrs::NO_WARN);
        match policy::decide_map(&e.map, &limits, buf.phys(), buf.len(), e.forced(), false) {
            MapDecision::Direct(bus) => {
                self.mappings.fetch_add(1, Ordering::Relaxed);
                Some(bus)
            }
            MapDecision::Bounce(_) => {
                let (min_align, boundary) = (params.min_align_mask, params.seg_boundary);
                let mut result = e.pool.map(&buf, min_align, boundary);
                // Full: grow by a segment right here (no sleeping), then try once more.
                if result == Err(MapError::NoSpace) && e.can_grow() {
                    if e.grow_inline.load(Ordering::Relaxed)
                        && e.grow(buf.len(), GFP_GROW_ATOMIC) > 0
                    {
                        result = e.pool.map(&buf, min_align, boundary);
                    } else {
                        e.grow_inline.store(false, Ordering::Relaxed);
                    }
                    Engine::maybe_grow_ahead(&self.engine);
                }
                let phys = match result {
                    Ok(phys) => phys,
                    Err(err) => {
                        e.fail(dev, buf.len(), &err, quiet);
                        return None;
                    }
                };
                let Some(bus) = policy::check_bounced(&e.map, &limits, phys, buf.len()) else {
                    // The pool is beyond this device's mask (dma_supported should have refused).
                    let _ = e.pool.unmap(phys, buf.len(), false);
                    e.fail(dev, buf.len(), &"bounce buffer beyond the DMA mask", quiet);
                    return None;
                };
                self.mappings.fetch_add(1, Ordering::Relaxed);
                self.bounces.fetch_add(1, Ordering::Relaxed);
                e.bounces.fetch_add(1, Ordering::Relaxed);
                Engine::maybe_grow_ahead(&self.engine);
                Some(bus)
            }
        }
    }

    fn unmap_page(&self, dev: &Device, dma: u64, size: usize, dir: Direction, attrs: Attrs) {
        let e = &*self.engine;
        let copy = dir.copy_on_unmap(attrs.contains(Attrs::SKIP_CPU_SYNC));
        // The pool finds the address itself: one lookup, whether it is a bounce buffer or not.
        let known = match xlate::bus_to_phys(&e.map, dma).map(|p| e.pool.unmap(p, size, copy)) {
            Some(Ok(_)) | Some(Err(UnmapError::NotBounceAddress)) | None => self.put_mapping(),
            Some(Err(_)) => false,
        };
        if !known {
            e.unknown(dev, "unmap", dma, size);
        }
    }

    fn sync_for_cpu(&self, dev: &Device, dma: u64, size: usize, dir: Direction) {
        self.sync(dev, dma, size, dir.copy_for_cpu(), true);
    }

    fn sync_for_device(&self, dev: &Device, dma: u64, size: usize, dir: Direction) {
        self.sync(dev, dma, size, dir.copy_for_device(), false);
    }

    fn alloc(&self, dev: &Device, order: u32, gfp: Gfp, _attrs: Attrs) -> Option<(Pages, u64)> {
        let e = &*self.engine;
        let mask = dma_ops::coherent_mask(dev);
        // Under Xen PV the guest's zones say nothing about machine addresses: take any pages
        // and exchange them if they do not fit.
        let zones: &[Zone] = if e.map.is_pv() || mask >= dma_bit_mask(32) {
            &[Zone::Any, Zone::Dma32, Zone::Dma]
        } else if mask >= dma_bit_mask(24) {
            &[Zone::Dma32, Zone::Dma]
        } else {
            &[Zone::Dma]
        };
        for &zone in zones {
            let Ok(pages) = Pages::alloc_gfp(order, zone, gfp) else {
                continue;
            };
            let decision = policy::decide_coherent(
                &e.map,
                mask,
                pages.phys(),
                pages.len(),
                kernel::page::PAGE_SHIFT as u32,
            );
            match decision {
                Some(policy::CoherentDecision::Direct { dma }) => {
                    self.mappings.fetch_add(1, Ordering::Relaxed);
                    return Some((pages, dma));
                }
                Some(policy::CoherentDecision::MakeContiguous { address_bits, .. })
                    if e.map.is_pv() =>
                {
                    let order = pages.order();
                    return match xen_frames::make_contiguous(pages, 0, order, address_bits, gfp) {
                        Ok((pages, mfn)) => {
                            xen_frames::set_remapped(&pages);
                            self.mappings.fetch_add(1, Ordering::Relaxed);
                            self.exchanged.fetch_add(1, Ordering::Relaxed);
                            Some((pages, mfn << xlate::XEN_PAGE_SHIFT))
                        }
                        Err(_) => None,
                    };
                }
                _ => {}
            }
        }
        None
    }

    fn free(&self, dev: &Device, pages: Pages, dma: u64) {
        if !self.put_mapping() {
            self.engine.unknown(dev, "free", dma, pages.len());
        }
        if self.engine.map.is_pv() && xen_frames::test_clear_remapped(&pages) {
            self.exchanged.fetch_sub(1, Ordering::Relaxed);
            let order = pages.order();
            // On failure the contiguous frames stay with the pages (or the pages are leaked
            // after an inconsistent exchange): the domain loses no frames either way.
            if let Err(f) = xen_frames::undo_contiguous(pages, 0, order, GFP_GROW_ATOMIC) {
                drop(f.pages);
            }
        }
    }

    fn dma_supported(&self, _dev: &Device, mask: u64) -> bool {
        let e = &*self.engine;
        // A pool that may grow may grow up to its limit: judge the mask against that.
        let last = if e.params.max_bytes > e.params.bytes {
            e.pool.last_bus().max(dma_bit_mask(e.params.dma_bits))
        } else {
            e.pool.last_bus()
        };
        policy::dma_supported(&IdentityMap, last, mask)
    }

    fn max_mapping_size(&self, dev: &Device) -> usize {
        self.engine
            .pool
            .max_mapping_size(dma_ops::dma_params(dev).min_align_mask)
    }

    fn required_mask(&self, _dev: &Device) -> u64 {
        // Under Xen PV a guest frame may be backed by any machine frame of the host.
        let end = match xen_frames::max_ram_page() {
            Some(mfn) if self.engine.map.is_pv() => ((mfn + 1) << xlate::XEN_PAGE_SHIFT) - 1,
            _ => ffi::ram_end(),
        };
        dma_bit_mask(fls64(end))
    }
}

impl Attached {
    fn sync(&self, dev: &Device, dma: u64, size: usize, copy: bool, to_cpu: bool) {
        let e = &*self.engine;
        if !copy {
            return;
        }
        // Not a bounce address: a direct mapping, and x86 is cache-coherent, nothing to do.
        match xlate::bus_to_phys(&e.map, dma).map(|p| e.pool.sync(p, size, to_cpu)) {
            Some(Ok(_)) | Some(Err(UnmapError::NotBounceAddress)) | None => {}
            Some(Err(_)) => e.unknown(dev, "sync", dma, size),
        }
    }
}

/// The devices on one pool's ops, and how to attach and detach them.
#[pin_data(PinnedDrop)]
pub struct Swiotlb {
    engine: Arc<Engine>,
    #[pin]
    devices: Mutex<KVec<Option<Pin<KBox<Installed<Attached>>>>>>,
    module: Option<&'static ThisModule>,
}

#[pinned_drop]
impl PinnedDrop for Swiotlb {
    fn drop(self: Pin<&mut Self>) {
        // No growth may run once the module's code is gone.
        self.engine.quiesce();
    }
}

/// Turns a user's device name into the device.
fn find_device(name: &[u8]) -> Result<(PciName, ARef<Device>)> {
    let n = PciName::parse(name).map_err(|_| EINVAL)?;
    let bytes = n.to_cstr_bytes();
    let cname = CStr::from_bytes_with_nul(&bytes).map_err(|_| EINVAL)?;
    let dev = dma_ops::pci_device(cname).ok_or(ENODEV)?;
    Ok((n, dev))
}

use kernel::types::ARef;

impl Swiotlb {
    /// Devices attached to `engine`; each pins `module` (if any) while attached.
    pub fn new(engine: Arc<Engine>, module: Option<&'static ThisModule>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                engine,
                devices <- new_mutex!(KVec::new(), "xen_swiotlb_rs_devices"),
                module,
            }),
            GFP_KERNEL,
        )
    }

    /// The pool and counters.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Puts the PCI device named `name` on our ops: unbinds its driver, installs the table,
    /// re-probes. `EINVAL` malformed name, `ENODEV` no such device, `EEXIST` already attached,
    /// `EBUSY` if a driver bound itself in between.
    pub fn attach(&self, name: &[u8]) -> Result {
        let (n, dev) = find_device(name)?;
        let module = match self.module {
            Some(m) => Some(ffi::ModuleRef::get(m).ok_or(ENODEV)?),
            None => None,
        };
        {
            let mut devices = self.devices.lock();
            if devices
                .iter()
                .flatten()
                .any(|i| core::ptr::eq(i.device(), &*dev))
            {
                return Err(EEXIST);
            }
            let had_driver = dma_ops::has_driver(&dev);
            dma_ops::release_driver(&dev);
            let data = Attached {
                engine: self.engine.clone(),
                mappings: AtomicUsize::new(0),
                bounces: AtomicU64::new(0),
                exchanged: AtomicUsize::new(0),
                _module: module,
            };
            let inst = match Installed::new(&dev, data) {
                Ok(inst) => inst,
                Err(e) => {
                    drop(devices);
                    if had_driver {
                        let _ = dma_ops::reprobe(&dev);
                    }
                    return Err(e);
                }
            };
            match devices.iter_mut().find(|s| s.is_none()) {
                Some(slot) => *slot = Some(inst),
                None => devices.push(Some(inst), GFP_KERNEL)?,
            }
        }
        let bound = dma_ops::reprobe(&dev);
        pr_info!(
            "{}: attached ({})\n",
            n,
            match bound {
                Ok(true) => "driver re-probed",
                Ok(false) => "no driver",
                Err(_) => "re-probe failed",
            }
        );
        Ok(())
    }

    /// Takes the PCI device named `name` off our ops: unbinds its driver, restores the previous
    /// ops, re-probes. `ENOENT` if not attached; `EBUSY` (and still attached, driver re-probed)
    /// if mappings remain once the driver is gone.
    pub fn detach(&self, name: &[u8]) -> Result {
        let (n, dev) = find_device(name)?;
        let result = {
            let mut devices = self.devices.lock();
            let slot = devices
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|i| core::ptr::eq(i.device(), &*dev)))
                .ok_or(ENOENT)?;
            dma_ops::release_driver(&dev);
            let Some(inst) = slot.take() else {
                return Err(ENOENT);
            };
            let left = inst.data().mappings();
            if left != 0 {
                pr_warn!("{}: not detached: {} mappings still outstanding\n", n, left);
                *slot = Some(inst);
                Err(EBUSY)
            } else {
                match inst.uninstall() {
                    Ok(()) => Ok(()),
                    Err((inst, e)) => {
                        *slot = Some(inst);
                        Err(e)
                    }
                }
            }
        };
        let _ = dma_ops::reprobe(&dev);
        if result.is_ok() {
            pr_info!("{}: detached\n", n);
        }
        result
    }

    /// Runs `f` on each attached device.
    pub fn for_each(&self, mut f: impl FnMut(&Installed<Attached>)) {
        for inst in self.devices.lock().iter().flatten() {
            f(inst);
        }
    }

    /// Runs `f` on the attached device `dev`, if it is attached.
    pub fn with_attached<R>(&self, dev: &Device, f: impl FnOnce(&Attached) -> R) -> Option<R> {
        let devices = self.devices.lock();
        let inst = devices
            .iter()
            .flatten()
            .find(|i| core::ptr::eq(i.device(), dev))?;
        Some(f(inst.data()))
    }

    /// Number of attached devices.
    pub fn attached(&self) -> usize {
        self.devices.lock().iter().flatten().count()
    }
}

/// The debugfs files, by id.
const FILES: &[(&CStr, u16, u32)] = &[
    (c_str!("pool_bytes"), 0o444, 0),
    (c_str!("nslabs"), 0o444, 1),
    (c_str!("used_slots"), 0o444, 2),
    (c_str!("used_hiwater"), 0o644, 3),
    (c_str!("bounces"), 0o444, 4),
    (c_str!("bounced_bytes"), 0o444, 5),
    (c_str!("map_failures"), 0o444, 6),
    (c_str!("attached"), 0o444, 7),
    (c_str!("devices"), 0o444, 8),
    (c_str!("attach"), 0o200, 9),
    (c_str!("detach"), 0o200, 10),
    (c_str!("chunks"), 0o444, 11),
    (c_str!("segments"), 0o444, 12),
    (c_str!("domain_pages"), 0o444, 13),
    (c_str!("build_us"), 0o444, 14),
    (c_str!("grows"), 0o444, 15),
    (c_str!("pool_max_bytes"), 0o444, 16),
];

impl Source for Swiotlb {
    fn show(&self, id: u32, out: &mut Out<'_>) -> core::fmt::Result {
        let e = &*self.engine;
        let st = e.pool.stats().snapshot();
        match id {
            0 => writeln!(out, "{}", e.pool.bytes()),
            1 => writeln!(out, "{}", e.pool.nslabs()),
            2 => writeln!(out, "{}", st.used_slots),
            3 => writeln!(out, "{}", st.high_water),
            4 => writeln!(out, "{}", e.bounces.load(Ordering::Relaxed)),
            5 => writeln!(out, "{}", st.bounced_bytes),
            6 => writeln!(out, "{}", e.map_failures.load(Ordering::Relaxed)),
            7 => writeln!(out, "{}", self.attached()),
            8 => {
                let mut r = Ok(());
                self.for_each(|i| {
                    r = r.and(writeln!(
                        out,
                        "{} mappings={} bounces={} exchanged={}",
                        dma_ops::device_name(i.device()),
                        i.data().mappings(),
                        i.data().bounces(),
                        i.data().exchanged()
                    ));
                });
                r
            }
            11 => {
                for c in 0..e.pool.chunk_count() {
                    if let Some((first, last)) = e.pool.chunk_range(c) {
                        writeln!(out, "{:#x}-{:#x}", first, last)?;
                    }
                }
                Ok(())
            }
            12 => {
                for c in 0..e.pool.chunk_count() {
                    let (Some((first, _)), Some(xs)) =
                        (e.pool.chunk_range(c), e.pool.chunk_extents(c))
                    else {
                        continue;
                    };
                    for x in xs {
                        let pfn = (first >> kernel::page::PAGE_SHIFT) + x.first as u64;
                        writeln!(
                            out,
                            "pfn {:#x} mfn {:#x} pages {} bits {} contiguous {}",
                            pfn,
                            x.mfn,
                            1u64 << x.order,
                            x.bits,
                            if e.extent_is_contiguous(pfn, x) {
                                "yes"
                            } else {
                                "NO"
                            }
                        )?;
                    }
                }
                Ok(())
            }
            13 => match ffi::xen_frames::reservation() {
                Some(n) => writeln!(out, "{}", n),
                None => writeln!(out, "-"),
            },
            14 => writeln!(out, "{}", e.build_us()),
            15 => {
                let (grows, worker, failures) = e.growth();
                writeln!(out, "{} {} {}", grows, worker, failures)
            }
            16 => writeln!(out, "{}", e.params.max_bytes),
            _ => Ok(()),
        }
    }

    fn store(&self, id: u32, input: &[u8]) -> Result {
        match id {
            3 => {
                self.engine.pool.stats().reset_high_water();
                Ok(())
            }
            9 => self.attach(input),
            10 => self.detach(input),
            _ => Err(EINVAL),
        }
    }
}

struct XenSwiotlbRs {
    domain: Domain,
    _debugfs: Debugfs<Swiotlb>,
    /// Test builds: `/dev/xendma_edu` for the user-space tests.
    #[cfg(xendma_kunit)]
    _edu: ffi::misc::MiscRegistration<edu::EduMisc>,
}

impl kernel::Module for XenSwiotlbRs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let domain = Domain::current();
        match ffi::xen::version() {
            Some((major, minor)) => {
                pr_info!("loaded: domain {:?}, Xen {}.{}\n", domain, major, minor)
            }
            None => pr_info!(
                "loaded: domain {:?} (not under Xen: identity frames)\n",
                domain
            ),
        }
        let params = PoolParams {
            bytes: (ffi::params::pool_mb() as usize) << 20,
            dma_bits: ffi::params::dma_bits(),
            segment_bytes: (ffi::params::segment_kb() as usize) << 10,
            max_bytes: (ffi::params::pool_max_mb() as usize) << 20,
        };
        let engine = Engine::new(params, None)?;
        pr_info!(
            "pool: {} MiB in {} chunks, {} slots, highest byte {:#x} (bus {:#x}), grows to {} MiB\n",
            engine.pool.bytes() >> 20,
            engine.pool.chunk_count(),
            engine.pool.nslabs(),
            engine.pool.last_phys(),
            engine.pool.last_bus(),
            engine.params.max_bytes >> 20
        );
        let sw = Swiotlb::new(engine, Some(module))?;
        let mut debugfs = Debugfs::new(c_str!("xen_swiotlb_rs"), sw.clone())?;
        for &(name, mode, id) in FILES {
            debugfs.add(name, mode, id)?;
        }
        for name in pciname::list(ffi::params::attach().as_bytes()) {
            if let Err(e) = sw.attach(name) {
                pr_err!("attach at load failed ({:?})\n", e);
            }
        }
        Ok(Self {
            domain,
            _debugfs: debugfs,
            #[cfg(xendma_kunit)]
            _edu: ffi::misc::MiscRegistration::new(edu::EduMisc, module)?,
        })
    }
}

impl Drop for XenSwiotlbRs {
    fn drop(&mut self) {
        pr_info!("unloaded (domain {:?})\n", self.domain);
    }
}
