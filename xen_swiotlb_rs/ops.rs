// SPDX-License-Identifier: GPL-2.0

//! A device on our `dma_map_ops`: the table's operations over the engine.

use crate::engine::GFP_GROW_ATOMIC;
use crate::kext;
use crate::kext::dma::ops::{self as dma_ops, CallerBuf, DmaOps};
use crate::kext::dma::Attrs;
use crate::kext::page::{Gfp, Pages, Zone};
use crate::kext::percpu::PerCpuCounters;
use crate::kext::trace::MapFailure;
use crate::kext::xen_frames;
use crate::logic::bounce_policy::{self as policy, DmaLimits, MapDecision};
use crate::logic::dma::DataDirection;
use crate::logic::dma::{dma_bit_mask, fls64};
use crate::logic::slots::{MapError, UnmapError};
use crate::logic::xlate::{self, IdentityMap};
use crate::Engine;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::device::Device;
use kernel::sync::Arc;

/// A device on our ops: its pool and its own counters.
pub struct Attached {
    pub(crate) engine: Arc<Engine>,
    /// Streaming mappings made without a bounce (the device reaches the buffer), not yet undone.
    pub(crate) direct: AtomicUsize,
    /// Streaming mappings into the pool made for this device ([`BOUNCES`]), and of which
    /// unmapped ([`UNBOUNCED`]): one per-CPU add on each side of a bounced mapping, no atomic
    /// operation, and none that can fail (the pool refuses an unmap that is not exactly a live
    /// mapping before it counts).
    pub(crate) bounced: PerCpuCounters<2>,
    /// Coherent allocations not yet freed.
    pub(crate) coherent: AtomicUsize,
    /// Coherent buffers exchanged with Xen and not yet freed.
    pub(crate) exchanged: AtomicUsize,
    pub(crate) _module: Option<kext::sync::ModuleRef>,
}

/// Index of the count of bounced mappings in [`Attached::bounced`].
pub(crate) const BOUNCES: usize = 0;
/// Index of the count of bounced mappings unmapped in [`Attached::bounced`].
pub(crate) const UNBOUNCED: usize = 1;

impl Attached {
    /// Mappings and coherent allocations not yet undone.
    pub fn mappings(&self) -> usize {
        // Unmaps first: a bounce counted between the two reads can only raise the difference.
        // (Exact once the device's driver is gone, which is when detaching asks.)
        let unbounced = self.bounced.sum::<UNBOUNCED>();
        let bounced = self.bounced.sum::<BOUNCES>().saturating_sub(unbounced);
        self.direct.load(Ordering::Relaxed)
            + usize::try_from(bounced).unwrap_or(usize::MAX)
            + self.coherent.load(Ordering::Relaxed)
    }

    /// Mappings that were bounced.
    pub fn bounces(&self) -> u64 {
        self.bounced.sum::<BOUNCES>()
    }

    /// Coherent buffers exchanged with Xen and not yet freed.
    pub fn exchanged(&self) -> usize {
        self.exchanged.load(Ordering::Relaxed)
    }

    /// Counts one mapping of a kind undone; false if there was none of that kind to undo (a
    /// bogus unmap or free: an unmap of an address outside the pool while only bounced mappings
    /// exist is one, not a direct mapping undone).
    pub(crate) fn put(which: &AtomicUsize) -> bool {
        which
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl DmaOps for Attached {
    #[inline(always)]
    fn map_page(
        &self,
        dev: &Device,
        buf: CallerBuf,
        dir: DataDirection,
        attrs: Attrs,
    ) -> Option<u64> {
        let e = &*self.engine;
        let params = dma_ops::dma_params(dev);
        let limits = DmaLimits::new(params.mask).with_bus_limit(params.bus_limit);
        let quiet = attrs.contains(Attrs::NO_WARN);
        match policy::decide_map(&e.map, &limits, buf.phys(), buf.len(), e.forced(), false) {
            MapDecision::Direct(bus) => {
                self.direct.fetch_add(1, Ordering::Relaxed);
                Some(bus)
            }
            MapDecision::Bounce(reason) => {
                let (min_align, boundary) = (params.min_align_mask, params.seg_boundary);
                let mut result = e.pool.map(&buf, min_align, boundary);
                // Full: grow by a segment right here (no sleeping), then try once more.
                if result == Err(MapError::NoSpace) && e.can_grow() {
                    if e.growth.grow_inline.load(Ordering::Relaxed)
                        && e.grow(buf.len(), GFP_GROW_ATOMIC) > 0
                    {
                        result = e.pool.map(&buf, min_align, boundary);
                    } else {
                        e.growth.grow_inline.store(false, Ordering::Relaxed);
                    }
                    Engine::maybe_grow_ahead(&self.engine);
                }
                let phys = match result {
                    Ok(phys) => phys,
                    Err(err) => {
                        let why = match err {
                            MapError::NoSpace => MapFailure::PoolExhausted,
                            MapError::TooLarge => MapFailure::TooLarge,
                            _ => MapFailure::Invalid,
                        };
                        e.fail(dev, buf.len(), why, format_args!("{err}"), quiet);
                        return None;
                    }
                };
                let Some(bus) = policy::check_bounced(&e.map, &limits, phys, buf.len()) else {
                    // The pool is beyond this device's mask (dma_supported should have refused).
                    let _ = e.pool.withdraw(phys, buf.len());
                    e.fail(
                        dev,
                        buf.len(),
                        MapFailure::OutOfReach,
                        format_args!("bounce buffer beyond the DMA mask"),
                        quiet,
                    );
                    return None;
                };
                self.bounced.add::<BOUNCES>(1);
                kext::trace::bounced(dev, buf.phys(), bus, buf.len(), dir, reason);
                Engine::maybe_grow_ahead(&self.engine);
                Some(bus)
            }
        }
    }

    #[inline(always)]
    fn unmap_page(&self, dev: &Device, dma: u64, size: usize, dir: DataDirection, attrs: Attrs) {
        let e = &*self.engine;
        let copy = dir.copy_on_unmap(attrs.contains(Attrs::SKIP_CPU_SYNC));
        // The pool finds the address itself: one lookup, whether it is a bounce buffer or not.
        match xlate::bus_to_phys(&e.map, dma).map(|p| (p, e.pool.unmap(p, size, copy))) {
            Some((_, Ok(_))) => self.bounced.add::<UNBOUNCED>(1),
            Some((_, Err(UnmapError::NotBounceAddress))) | None => {
                if !Self::put(&self.direct) {
                    e.unknown(dev, "unmap", dma, size, None);
                }
            }
            Some((p, Err(UnmapError::SizeMismatch { mapped, .. }))) => {
                self.unmap_resized(dev, dma, p, size, mapped, copy)
            }
            Some((_, Err(why))) => e.unknown(dev, "unmap", dma, size, Some(why)),
        }
    }

    fn map_mmio(&self, dev: &Device, phys: u64, size: usize) -> Option<u64> {
        // MMIO is not translated (a PV domain's MMIO frames are the machine's, as swiotlb-xen
        // assumes) and cannot be bounced: it is reachable or it is not.
        let mask = dma_ops::dma_params(dev).mask;
        let last = size.checked_sub(1).and_then(|n| phys.checked_add(n as u64));
        match last {
            Some(last) if last <= mask => Some(phys),
            _ => {
                self.engine.fail(
                    dev,
                    size,
                    MapFailure::OutOfReach,
                    format_args!("MMIO at {phys:#x} beyond the DMA mask {mask:#x}"),
                    false,
                );
                None
            }
        }
    }

    fn sync_for_cpu(&self, dev: &Device, dma: u64, size: usize, dir: DataDirection) {
        self.sync(dev, dma, size, dir.copy_for_cpu(), true);
    }

    fn sync_for_device(&self, dev: &Device, dma: u64, size: usize, dir: DataDirection) {
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
                    self.coherent.fetch_add(1, Ordering::Relaxed);
                    return Some((pages, dma));
                }
                Some(policy::CoherentDecision::MakeContiguous { address_bits, .. })
                    if e.map.is_pv() =>
                {
                    let order = pages.order();
                    return match xen_frames::make_contiguous(pages, 0, order, address_bits, gfp) {
                        Ok((pages, mfn)) => {
                            xen_frames::set_remapped(&pages);
                            self.coherent.fetch_add(1, Ordering::Relaxed);
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
        if !Self::put(&self.coherent) {
            self.engine.unknown(dev, "free", dma, pages.len(), None);
        }
        if self.engine.map.is_pv() && xen_frames::test_clear_remapped(&pages) {
            self.exchanged.fetch_sub(1, Ordering::Relaxed);
            let order = pages.order();
            // On failure the contiguous frames stay with the pages (or the pages are leaked
            // after an inconsistent exchange): the domain loses no frames either way.
            if let Err(f) = xen_frames::undo_contiguous(pages, 0, order, GFP_GROW_ATOMIC) {
                crate::warn_ratelimited!(
                    "{}: coherent buffer at {:#x} ({} pages): the exchange back failed ({:?}); \
                     its frames stay with it\n",
                    dma_ops::device_name(dev),
                    dma,
                    1usize << order,
                    f.error
                );
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
            _ => kext::page::ram_end(),
        };
        dma_bit_mask(fls64(end))
    }
}

impl Attached {
    /// An unmap at the start of a live mapping with another size than it was mapped with (a
    /// driver bug): as the kernel's swiotlb does, the mapping is freed whole and `given` bytes,
    /// at most the mapped ones, are copied back, so the data the driver expects is not lost and
    /// the slots not leaked; with a ratelimited warning naming both sizes.
    #[cold]
    fn unmap_resized(
        &self,
        dev: &Device,
        dma: u64,
        phys: u64,
        given: usize,
        mapped: usize,
        copy: bool,
    ) {
        let e = &*self.engine;
        let copied = if copy {
            e.pool.sync(phys, given.min(mapped), true).unwrap_or(0)
        } else {
            0
        };
        match e.pool.unmap(phys, mapped, false) {
            Ok(_) => {
                self.bounced.add::<UNBOUNCED>(1);
                e.resized(dev, dma, given, mapped, copied);
            }
            Err(why) => e.unknown(dev, "unmap", dma, given, Some(why)),
        }
    }

    pub(crate) fn sync(&self, dev: &Device, dma: u64, size: usize, copy: bool, to_cpu: bool) {
        let e = &*self.engine;
        if !copy {
            return;
        }
        // Not a bounce address: a direct mapping, and x86 is cache-coherent, nothing to do.
        match xlate::bus_to_phys(&e.map, dma).map(|p| e.pool.sync(p, size, to_cpu)) {
            Some(Ok(synced)) if synced < size => e.sync_overflow(dev, dma, size, synced),
            Some(Ok(_)) | Some(Err(UnmapError::NotBounceAddress)) | None => {}
            Some(Err(why)) => e.unknown(dev, "sync", dma, size, Some(why)),
        }
    }
}
