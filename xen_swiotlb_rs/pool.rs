// SPDX-License-Identifier: GPL-2.0

//! The bounce pool's memory: chunks of contiguous pages, the slot allocator of `logic/slots.rs`
//! over them (one irq-saving lock per area), and the copies between a caller's buffer and its
//! bounce slots.
//!
//! The two raw operations, publishing chunks while mappings read them and copying between a
//! chunk and a caller's buffer, are `kext`'s ([`PublishList`], [`ChunkMem::copy`]). The pool
//! records a mapping's original address only from a [`CallerBuf`], and copies to it only while
//! the slot allocator says the mapping is live (an unmap or sync of an unknown address is refused
//! by the allocator before any copy).

use crate::kext::dma::ops::CallerBuf;
use crate::kext::irqlock::IrqSpinLock;
use crate::kext::percpu::CpuId;
use crate::kext::publish::PublishList;
use crate::kext::xen_frames::{ChunkMem, Extent};
use crate::logic::slots::{
    self, Area, MapError, MapRequest, Pool, PoolConfig, PoolSet, Released, Slot, Stats, UnmapError,
};
use crate::logic::xlate::{self, FrameMap};
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::alloc::Flags;
use kernel::page::PAGE_SHIFT;
use kernel::prelude::*;

/// Slot metadata of one area, behind its lock.
type AreaLock = Pin<KBox<IrqSpinLock<Area<KVec<Slot>>>>>;

/// Copies back of at most this many bytes are made with the area still locked, in the same
/// critical section as the free (one lock instead of two); longer ones between a lookup and the
/// free, so that no area stays locked (interrupts off) for a long copy.
const COPY_UNDER_LOCK: usize = kernel::page::PAGE_SIZE;

/// One contiguous chunk of the pool and its slot geometry.
///
/// # Invariants
///
/// `phys` and `len` are the physical address and the length of `mem`'s pages.
struct Chunk {
    mem: ChunkMem,
    pool: Pool,
    areas: KVec<AreaLock>,
    /// Bus address of the chunk's highest byte.
    last_bus: u64,
    phys: u64,
    len: u64,
}

/// A bounce pool made of chunks of contiguous pages, to which chunks can be added while it is
/// in use (they are never removed before the pool is dropped).
///
/// # Invariants
///
/// - Chunk `i` is pool `i` of the slot allocator; the pool's slots cover exactly the chunk's
///   pages (`base` = the chunk's physical address).
/// - The original address of every live mapping is that of a [`CallerBuf`] lent until the
///   mapping is unmapped, and the mapping is no longer than the buffer.
pub struct BouncePool {
    chunks: PublishList<Chunk>,
    /// Bytes in the published chunks.
    total: AtomicUsize,
    cpus: usize,
    /// The running CPU's number, which picks the area a mapping is tried in first.
    cpu: CpuId,
    segment_slots: usize,
    stats: Stats,
}

impl PoolSet for BouncePool {
    type Storage = KVec<Slot>;

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn pool_count(&self) -> usize {
        self.chunks.len()
    }

    fn pool(&self, index: usize) -> Option<&Pool> {
        self.chunk(index).map(|c| &c.pool)
    }

    fn with_area<R, F>(&self, pool: usize, area: usize, f: F) -> Option<R>
    where
        F: FnOnce(&mut Area<KVec<Slot>>) -> R,
    {
        let lock = self.chunk(pool)?.areas.get(area)?;
        let mut guard = lock.lock();
        Some(f(&mut guard))
    }
}

impl BouncePool {
    /// An empty pool that can hold up to `capacity` chunks, with areas for `cpus` CPUs and
    /// segments of `segment_slots` slots (no mapping crosses a segment).
    pub fn new(capacity: usize, cpus: usize, segment_slots: usize) -> Result<Self> {
        Ok(Self {
            chunks: PublishList::new(capacity)?,
            total: AtomicUsize::new(0),
            cpus,
            cpu: CpuId::new()?,
            segment_slots,
            stats: Stats::new(),
        })
    }

    /// Adds `mem` to the pool, usable at once by mappings on any CPU. `flags` is the context
    /// for the slot metadata; `map` gives the bus addresses. `EINVAL` if the memory does not
    /// make a valid slot pool, `ENOSPC` if the pool already holds as many chunks as it can.
    pub fn add<F: FrameMap>(&self, mem: ChunkMem, map: &F, flags: Flags) -> Result {
        let pages = mem.pages();
        let bytes = pages.len();
        let nslabs = pages.len() >> slots::DEFAULT_SLOT_SHIFT;
        let cfg = PoolConfig::new(pages.phys(), nslabs)
            .with_cpus(self.cpus)
            .with_segment_slots(self.segment_slots);
        let pool = Pool::new(&cfg).map_err(|_| EINVAL)?;
        let mut areas = KVec::with_capacity(pool.area_count(), flags)?;
        for a in 0..pool.area_count() {
            let len = pool.area_slots(a).ok_or(EINVAL)?;
            let mut storage = KVec::with_capacity(len, flags)?;
            for _ in 0..len {
                storage.push(Slot::new(), flags)?;
            }
            let area = pool.new_area(a, storage).map_err(|_| EINVAL)?;
            areas.push(
                KBox::pin_init(crate::new_irq_spinlock!(area, "xen_swiotlb_rs_area"), flags)?,
                flags,
            )?;
        }
        let last_bus = (0..pages.len() >> PAGE_SHIFT)
            .filter_map(|i| {
                xlate::phys_to_bus(map, pages.phys() + ((i as u64 + 1) << PAGE_SHIFT) - 1)
            })
            .max()
            .unwrap_or(u64::MAX);
        let (phys, len) = (pages.phys(), pages.len() as u64);
        // INVARIANT: the pool's slots are the chunk's bytes, from its first one; `phys` and `len`
        // were read from its pages.
        let chunk = KBox::new(
            Chunk {
                mem,
                pool,
                areas,
                last_bus,
                phys,
                len,
            },
            flags,
        )?;
        // The slot allocator numbers pools in the order they are published.
        self.chunks.push(chunk)?;
        self.total.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Chunk `i`, if published.
    fn chunk(&self, i: usize) -> Option<&Chunk> {
        self.chunks.get(i)
    }

    fn iter(&self) -> impl Iterator<Item = &Chunk> {
        (0..self.pool_count()).filter_map(|i| self.chunk(i))
    }

    /// The allocator's counters that span the areas (slots in use, high water, failures).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// All of the allocator's counters, the areas' included (each area locked in turn).
    pub fn snapshot(&self) -> slots::StatsSnapshot {
        slots::snapshot(self)
    }

    /// Bytes in the pool.
    pub fn bytes(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Slots in the pool.
    pub fn nslabs(&self) -> usize {
        self.bytes() >> slots::DEFAULT_SLOT_SHIFT
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.pool_count()
    }

    /// Physical address range of chunk `i`: first and last byte.
    pub fn chunk_range(&self, i: usize) -> Option<(u64, u64)> {
        let c = self.chunk(i)?;
        Some((c.phys, c.phys + c.len - 1))
    }

    /// The segments of chunk `i` that were exchanged with Xen (empty outside a PV domain).
    pub fn chunk_extents(&self, i: usize) -> Option<&[Extent]> {
        Some(self.chunk(i)?.mem.extents())
    }

    /// The highest physical address of the pool.
    pub fn last_phys(&self) -> u64 {
        (0..self.chunk_count())
            .filter_map(|i| self.chunk_range(i))
            .map(|(_, last)| last)
            .max()
            .unwrap_or(0)
    }

    /// The highest bus address of the pool.
    pub fn last_bus(&self) -> u64 {
        self.iter().map(|c| c.last_bus).max().unwrap_or(0)
    }

    /// The largest mapping with `min_align_mask` the pool can hold.
    pub fn max_mapping_size(&self, min_align_mask: u64) -> usize {
        self.iter()
            .map(|c| c.pool.max_mapping_size(min_align_mask))
            .max()
            .unwrap_or(0)
    }

    /// True if `addr` is a physical address inside the pool.
    pub fn contains(&self, addr: u64) -> bool {
        slots::is_bounce_addr(self, addr)
    }

    /// Copies `len` bytes between a mapping's bounce slots at `bounce` and its original memory
    /// at `orig`, in the direction `to_orig` says. `orig` is the address of a live mapping's
    /// [`CallerBuf`] (type invariant).
    #[inline(always)]
    fn copy(&self, bounce: u64, orig: u64, len: usize, to_orig: bool) {
        let Some(c) = self.iter().find(|c| {
            bounce
                .checked_sub(c.phys)
                .and_then(|off| off.checked_add(len as u64))
                .is_some_and(|end| end <= c.len)
        }) else {
            return;
        };
        let Ok(off) = usize::try_from(bounce - c.phys) else {
            return;
        };
        c.mem.copy(off, orig, len, to_orig);
    }

    /// Allocates bounce slots for `buf` (aligned as `min_align_mask` and the segment boundary
    /// ask) and copies the buffer into them: the bounce buffer's physical address.
    #[inline(always)]
    pub fn map(
        &self,
        buf: &CallerBuf,
        min_align_mask: u64,
        seg_boundary: u64,
    ) -> Result<u64, MapError> {
        let req = MapRequest::new(buf.phys(), buf.len())
            .with_min_align_mask(min_align_mask)
            .with_seg_boundary_mask(seg_boundary);
        // INVARIANT: the mapping's original range is `buf`, lent until the unmap.
        let m = slots::map(self, self.cpu.get(), &req)?;
        // Always copied in, even for a device-to-memory mapping: a device that writes less than
        // the whole buffer must not expose what an earlier user left in the slots.
        // (The allocator counted these bytes as bounced, under the area lock.)
        self.copy(m.addr(), buf.phys(), buf.len(), false);
        Ok(m.addr())
    }

    /// Takes back a mapping [`BouncePool::map`] made that the caller cannot hand out: freed
    /// without a copy, and no longer counted as a bounce.
    pub fn withdraw(&self, addr: u64, size: usize) -> Result<Released, UnmapError> {
        slots::withdraw(self, addr, size)
    }

    /// Frees the mapping at bounce address `addr` of `size` bytes, first copying the bounce
    /// buffer back if `copy_back`. The allocator refuses (and nothing is copied) unless `addr`
    /// and `size` are exactly a live mapping's.
    #[inline(always)]
    pub fn unmap(&self, addr: u64, size: usize, copy_back: bool) -> Result<Released, UnmapError> {
        if !copy_back {
            return slots::unmap(self, addr, size);
        }
        if size <= COPY_UNDER_LOCK {
            // One critical section: the allocator calls back only for an exact live mapping,
            // and counts the bytes.
            return slots::unmap_with(self, addr, size, |r| {
                self.copy(r.bounce, r.orig, r.len, true);
            });
        }
        let r = slots::lookup(self, addr, size)?;
        // The allocator frees only an exact mapping (start and size); copy only for such one.
        let exact = r.bounce == addr && r.len == size && !r.truncated && r.offset_in_mapping == 0;
        if exact && copy_back {
            self.copy(r.bounce, r.orig, r.len, true);
            self.stats.add_bounced(r.len as u64);
        }
        slots::unmap(self, addr, size)
    }

    /// Copies `size` bytes at bounce address `addr` (anywhere in a live mapping) back to the
    /// caller's memory (`to_cpu`) or from it (`!to_cpu`): the bytes copied.
    pub fn sync(&self, addr: u64, size: usize, to_cpu: bool) -> Result<usize, UnmapError> {
        let r = slots::lookup(self, addr, size)?;
        self.copy(r.bounce, r.orig, r.len, to_cpu);
        self.stats.add_bounced(r.len as u64);
        Ok(r.len)
    }

    /// Slots in use (sum over the areas).
    pub fn used_slots(&self) -> usize {
        (0..self.chunk_count())
            .filter_map(|p| slots::pool_slots_in_use(self, p))
            .sum()
    }
}
