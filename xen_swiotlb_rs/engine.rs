// SPDX-License-Identifier: GPL-2.0

//! The engine: a bounce pool, its growth, its counters, and the map/unmap/sync paths.

use crate::kext;
use crate::kext::dma::ops as dma_ops;
use crate::kext::page::{Gfp, Pages, Zone, MAX_ORDER, PAGE_SIZE};
use crate::kext::trace::MapFailure;
use crate::kext::xen_frames::{ChunkMem, Extent};
use crate::logic::dma::dma_bit_mask;
use crate::logic::params;
use crate::logic::slots::{self, UnmapError};
use crate::logic::xlate::{self, FrameMap};
use crate::p2m::P2m;
use crate::pool::BouncePool;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::device::Device;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::workqueue::{self, impl_has_work, new_work, Work, WorkItem};

/// The worker grows the pool ahead of need once this share of its slots (in percent) is in use
/// after a mapping.
const GROW_AHEAD_PERCENT: usize = 75;

/// Each growth by the worker adds this share (in percent) of the pool size asked for at load,
/// and at least the largest block the page allocator hands out.
const WORKER_STEP_PERCENT: usize = 25;

/// The default segment: 128 slots of 2 KiB (upstream's `IO_TLB_SEGSIZE << IO_TLB_SHIFT`).
pub(crate) const DEFAULT_SEGMENT_BYTES: usize = (params::MIN_SEGMENT_KB as usize) << 10;

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
    pub(crate) fn segment_order(&self) -> Result<u32> {
        let b = self.segment_bytes;
        if !params::segment_ok(b as u64) || b > PAGE_SIZE << MAX_ORDER {
            return Err(EINVAL);
        }
        Ok(b.trailing_zeros() - kernel::page::PAGE_SHIFT as u32)
    }
}

/// Where the force-bounce switch is read.
pub(crate) enum Force {
    /// The `force_bounce` module parameter (writable at run time).
    Param,
    /// A switch of its own (test pools).
    Own(AtomicBool),
}

/// The state of the pool's growth (`pool_max_mb`) and its counters.
pub(crate) struct Growth {
    /// The address width the next exchange starts at (only grows, as in swiotlb-xen).
    pub(crate) bits: AtomicU32,
    /// Bytes in the pool plus bytes being added.
    pub(crate) committed: AtomicUsize,
    /// The worker is queued.
    pub(crate) grow_queued: AtomicBool,
    /// Growth from a mapping is tried until it fails once, and again after the worker grew.
    pub(crate) grow_inline: AtomicBool,
    /// Chunks added after the pool was built.
    pub(crate) grows: AtomicU64,
    /// Of which by the worker.
    pub(crate) worker_grows: AtomicU64,
    /// Growth attempts that added nothing.
    pub(crate) grow_failures: AtomicU64,
    /// Microseconds it took to build the pool.
    pub(crate) build_us: AtomicU64,
}

/// The engine's counters of failures, over all its devices (the mappings bounced are counted by
/// the pool's areas, under their locks).
#[derive(Default)]
pub(crate) struct Counters {
    /// Mappings that failed.
    pub(crate) map_failures: AtomicU64,
    /// Warnings printed (ratelimited ones included).
    pub(crate) warnings: AtomicU64,
    /// Unmaps, frees and syncs of addresses that are not ours.
    pub(crate) unknown: AtomicU64,
}

/// The pool and its counters, shared by the devices attached to it.
#[pin_data]
pub struct Engine {
    pub(crate) pool: BouncePool,
    pub(crate) map: P2m,
    pub(crate) params: PoolParams,
    pub(crate) seg_order: u32,
    pub(crate) growth: Growth,
    pub(crate) force: Force,
    pub(crate) counters: Counters,
    #[pin]
    pub(crate) work: Work<Engine>,
}

impl_has_work! {
    impl HasWork<Self> for Engine { self.work }
}

impl WorkItem for Engine {
    type Pointer = Arc<Engine>;

    fn run(this: Arc<Engine>) {
        let step = (this.params.bytes / (100 / WORKER_STEP_PERCENT)).max(PAGE_SIZE << MAX_ORDER);
        if this.grow(step, Gfp::KERNEL) > 0 {
            this.growth.grow_inline.store(true, Ordering::Relaxed);
        }
        this.growth.grow_queued.store(false, Ordering::Release);
    }
}

/// The allocator flags of a `gfp_t` context.
pub(crate) fn alloc_flags(gfp: Gfp) -> kernel::alloc::Flags {
    if gfp.may_sleep() {
        GFP_KERNEL
    } else {
        GFP_ATOMIC
    }
}

/// `GFP_ATOMIC | __GFP_NOWARN`: growth from a mapping, which may not sleep.
pub(crate) const GFP_GROW_ATOMIC: Gfp =
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
        if params.dma_bits < 12 || params.bytes as u64 > params::pool_limit(kext::page::ram_end()) {
            pr_err!(
                "pool: {} KiB below 2^{} cannot be had (RAM ends at {:#x})\n",
                params.bytes >> 10,
                params.dma_bits,
                kext::page::ram_end()
            );
            return Err(EINVAL);
        }
        let max_bytes = params.max_bytes.max(params.bytes);
        let seg_bytes = PAGE_SIZE << seg_order;
        let pool = BouncePool::new(
            max_bytes / seg_bytes + 1,
            kext::sync::possible_cpus(),
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
                growth: Growth {
                    bits: AtomicU32::new(first_width),
                    committed: AtomicUsize::new(0),
                    grow_queued: AtomicBool::new(false),
                    grow_inline: AtomicBool::new(true),
                    grows: AtomicU64::new(0),
                    worker_grows: AtomicU64::new(0),
                    grow_failures: AtomicU64::new(0),
                    build_us: AtomicU64::new(0),
                },
                force: match force {
                    Some(f) => Force::Own(AtomicBool::new(f)),
                    None => Force::Param,
                },
                counters: Counters::default(),
                work <- new_work!("xen_swiotlb_rs_grow"),
            }),
            GFP_KERNEL,
        )?;
        let t0 = kext::compat::monotonic_ns();
        let (got, fell_back, why) = e.fill(params.bytes, Gfp::KERNEL);
        e.growth.committed.store(got, Ordering::Relaxed);
        let us = (kext::compat::monotonic_ns() - t0) / 1000;
        if got == 0 && pv && why == Some(EPERM) {
            // Xen on x86 exchanges extents above 2 MiB only for a domain with I/O memory
            // or port capabilities (dom0, or a domU with a device passed through).
            pr_err!(
                "pool: Xen refused machine-contiguous extents of {} KiB to this domain (EPERM); segment_kb={} needs dom0 or a passed-through device, 2048 is the most otherwise\n",
                seg_bytes >> 10,
                seg_bytes >> 10
            );
            return Err(EPERM);
        }
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
        e.growth.build_us.store(us, Ordering::Relaxed);
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
    pub(crate) fn chunk(&self, order: u32, gfp: Gfp) -> Result<ChunkMem> {
        let bits = self.params.dma_bits;
        if self.map.is_pv() {
            let pages = Pages::alloc_gfp(order, Zone::Any, gfp)?;
            let mut width = self.growth.bits.load(Ordering::Relaxed);
            let r = ChunkMem::exchanged(pages, self.seg_order, &mut width, bits, gfp);
            self.growth.bits.fetch_max(width, Ordering::Relaxed);
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
    /// smaller ones (down to a segment) when big ones cannot be had. Returns the bytes added,
    /// whether it had to fall back, and the error that stopped it short of `bytes`, if one did.
    pub(crate) fn fill(&self, bytes: usize, gfp: Gfp) -> (usize, bool, Option<Error>) {
        let mut left = bytes;
        let mut order = MAX_ORDER;
        let mut fell_back = false;
        let mut last = None;
        while left > 0 {
            while order > self.seg_order && (PAGE_SIZE << order) > left {
                order -= 1;
            }
            let added = self
                .chunk(order, gfp)
                .and_then(|mem| self.pool.add(mem, &self.map, alloc_flags(gfp)));
            match added {
                Ok(()) => left = left.saturating_sub(PAGE_SIZE << order),
                Err(e) if order > self.seg_order => {
                    last = Some(e);
                    order -= 1;
                    fell_back = true;
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        (
            bytes - left.min(bytes),
            fell_back,
            last.filter(|_| left > 0),
        )
    }

    /// Grows the pool by about `want` bytes (whole segments, within the maximum): the bytes
    /// added.
    pub(crate) fn grow(&self, want: usize, gfp: Gfp) -> usize {
        let seg = PAGE_SIZE << self.seg_order;
        let max = self.params.max_bytes;
        // Whole segments: `want` rounded up, the room left rounded down (no panicking arithmetic).
        let segs = |bytes: usize| bytes.checked_div(seg).unwrap_or(0);
        let mut claimed = 0;
        let claim = self
            .growth
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
        let t0 = kext::compat::monotonic_ns();
        let (added, _, _) = self.fill(claimed, gfp);
        if added < claimed {
            self.growth
                .committed
                .fetch_sub(claimed - added, Ordering::AcqRel);
        }
        if added > 0 {
            self.growth.grows.fetch_add(1, Ordering::Relaxed);
            if gfp.may_sleep() {
                self.growth.worker_grows.fetch_add(1, Ordering::Relaxed);
            }
            let us = kext::compat::monotonic_ns().saturating_sub(t0) / 1000;
            // The pool's extent widths (under Xen PV; none elsewhere).
            let (lo, hi) = self.extents().fold((u32::MAX, 0), |(lo, hi), x| {
                (lo.min(x.bits), hi.max(x.bits))
            });
            kext::trace::pool_grow(
                added as u64,
                gfp.may_sleep(),
                lo.min(hi),
                hi,
                us,
                self.pool.bytes() as u64,
            );
            if !kext::sync::warn_ratelimit() {
                return added;
            }
            pr_info!(
                "pool: grew by {} KiB to {} KiB ({} context)\n",
                added >> 10,
                self.pool.bytes() >> 10,
                if gfp.may_sleep() { "worker" } else { "mapping" }
            );
        } else {
            self.growth.grow_failures.fetch_add(1, Ordering::Relaxed);
        }
        added
    }

    /// True if the pool may still grow.
    pub(crate) fn can_grow(&self) -> bool {
        self.growth.committed.load(Ordering::Relaxed) < self.params.max_bytes
    }

    /// After a mapping: once [`GROW_AHEAD_PERCENT`] of the slots are in use, asks the worker to
    /// grow the pool ahead of need. (The check whether the pool may grow at all is inlined into
    /// the mapping path; the rest is a call only for a pool that may.)
    #[inline(always)]
    pub(crate) fn maybe_grow_ahead(this: &Arc<Self>) {
        if this.can_grow() {
            Self::grow_ahead(this);
        }
    }

    #[inline(never)]
    fn grow_ahead(this: &Arc<Self>) {
        let used = this.pool.stats().snapshot().used_slots;
        let ahead =
            used.saturating_mul(100) >= this.pool.nslabs().saturating_mul(GROW_AHEAD_PERCENT);
        if !ahead || this.growth.grow_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if workqueue::system_long().enqueue(this.clone()).is_err() {
            this.growth.grow_queued.store(false, Ordering::Release);
        }
    }

    /// Waits for a queued or running growth to finish (before the module goes away).
    pub fn quiesce(&self) {
        kext::sync::flush_work(&self.work);
    }

    /// Growth so far: (times grown, of which by the worker, attempts that added nothing).
    pub fn growth(&self) -> (u64, u64, u64) {
        (
            self.growth.grows.load(Ordering::Relaxed),
            self.growth.worker_grows.load(Ordering::Relaxed),
            self.growth.grow_failures.load(Ordering::Relaxed),
        )
    }

    /// Microseconds the initial pool took to build.
    pub fn build_us(&self) -> u64 {
        self.growth.build_us.load(Ordering::Relaxed)
    }

    pub(crate) fn forced(&self) -> bool {
        match &self.force {
            Force::Param => kext::params::force_bounce(),
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
            self.pool.snapshot().allocs,
            self.counters.map_failures.load(Ordering::Relaxed),
            self.counters.warnings.load(Ordering::Relaxed),
            self.counters.unknown.load(Ordering::Relaxed),
        )
    }

    /// A mapping failed: count it and, unless `quiet`, say why (rate-limited).
    pub(crate) fn fail(
        &self,
        dev: &Device,
        size: usize,
        reason: MapFailure,
        why: core::fmt::Arguments<'_>,
        quiet: bool,
    ) {
        self.counters.map_failures.fetch_add(1, Ordering::Relaxed);
        let used = self.pool.stats().snapshot().used_slots;
        kext::trace::map_failed(dev, size, reason, used as u64, self.pool.nslabs() as u64);
        if quiet || !self.may_warn() {
            return;
        }
        pr_warn!(
            "{}: cannot map {} bytes: {} ({} of {} slots in use)\n",
            dma_ops::device_name(dev),
            size,
            why,
            used,
            self.pool.nslabs()
        );
    }

    /// Whether a warning may be printed now (the module's shared ratelimit); counted if so.
    fn may_warn(&self) -> bool {
        let ok = kext::sync::warn_ratelimit();
        if ok {
            self.counters.warnings.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// An unmap, sync or free named an address or size we did not hand out: counted, and a
    /// ratelimited warning with the allocator's reason (`why`), changing nothing. A refused
    /// unmap leaves its mapping's slots in use, as the kernel's swiotlb would not: upstream frees
    /// the recorded size whatever the driver says, and would free a wrong block for a wrong
    /// address.
    #[cold]
    pub(crate) fn unknown(
        &self,
        dev: &Device,
        what: &str,
        dma: u64,
        size: usize,
        why: Option<UnmapError>,
    ) {
        self.counters.unknown.fetch_add(1, Ordering::Relaxed);
        if !self.may_warn() {
            return;
        }
        match why {
            Some(why) => pr_warn!(
                "{}: {} of {} bytes at {:#x} refused: {}\n",
                dma_ops::device_name(dev),
                what,
                size,
                dma,
                format_args!("{why}")
            ),
            None => pr_warn!(
                "{}: {} of {} bytes at {:#x}, which was not mapped by us: ignored\n",
                dma_ops::device_name(dev),
                what,
                size,
                dma
            ),
        }
    }

    /// An unmap gave another size than the mapping's, which was freed whole (`copied` bytes
    /// copied back).
    #[cold]
    pub(crate) fn resized(
        &self,
        dev: &Device,
        dma: u64,
        given: usize,
        mapped: usize,
        copied: usize,
    ) {
        if !self.may_warn() {
            return;
        }
        pr_warn!(
            "{}: unmap of {} bytes at {:#x}, which was mapped with {}: freed, {} bytes copied back\n",
            dma_ops::device_name(dev),
            given,
            dma,
            mapped,
            copied
        );
    }

    /// A sync ran past the end of its mapping: only the mapped bytes were copied.
    #[cold]
    pub(crate) fn sync_overflow(&self, dev: &Device, dma: u64, size: usize, synced: usize) {
        if !self.may_warn() {
            return;
        }
        pr_warn!(
            "{}: sync of {} bytes at {:#x} runs past the end of its mapping: {} bytes synced\n",
            dma_ops::device_name(dev),
            size,
            dma,
            synced
        );
    }
}
