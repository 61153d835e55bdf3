// SPDX-License-Identifier: GPL-2.0

//! The bounce pool's memory: chunks of contiguous pages, the slot allocator of `logic/slots.rs`
//! over them (one irq-saving lock per area), and the copies between a caller's buffer and its
//! bounce slots.
//!
//! The copies are the unsafe part: they write to memory that a DMA API caller lent. The pool
//! records a mapping's original address only from a [`CallerBuf`], and copies to it only while
//! the slot allocator says the mapping is live, so a copy never reaches memory that was not lent
//! or whose loan ended (an unmap or sync of an unknown address is refused by the allocator
//! before any copy).

use crate::dma_api::Pages;
use crate::ffi;
use crate::ffi::dma_ops::CallerBuf;
use crate::ffi::irqlock::IrqSpinLock;
use crate::logic::slots::{
    self, Area, MapError, MapRequest, Pool, PoolConfig, PoolSet, Released, Slot, Stats, UnmapError,
};
use kernel::prelude::*;

/// Slot metadata of one area, behind its lock.
type AreaLock = Pin<KBox<IrqSpinLock<Area<KVec<Slot>>>>>;

/// One contiguous chunk of the pool and its slot geometry.
struct Chunk {
    mem: Pages,
    pool: Pool,
    areas: KVec<AreaLock>,
}

/// A bounce pool made of chunks of contiguous pages.
///
/// # Invariants
///
/// - Chunk `i` is pool `i` of the slot allocator; the pool's slots cover exactly the chunk's
///   pages (`base` = the chunk's physical address).
/// - The original address of every live mapping is that of a [`CallerBuf`] lent until the
///   mapping is unmapped, and the mapping is no longer than the buffer.
pub struct BouncePool {
    chunks: KVec<Chunk>,
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
        self.chunks.get(index).map(|c| &c.pool)
    }

    fn with_area<R, F>(&self, pool: usize, area: usize, f: F) -> Option<R>
    where
        F: FnOnce(&mut Area<KVec<Slot>>) -> R,
    {
        let lock = self.chunks.get(pool)?.areas.get(area)?;
        let mut guard = lock.lock();
        Some(f(&mut guard))
    }
}

/// The CPU this runs on (a hint for the area to try first).
fn this_cpu() -> usize {
    // SAFETY: no requirements.
    unsafe { ffi::xendma_this_cpu() as usize }
}

impl BouncePool {
    /// Builds a pool over `chunks` with areas for `cpus` CPUs. `EINVAL` if a chunk does not make
    /// a valid slot pool (see [`PoolConfig`]).
    pub fn new(chunks: KVec<Pages>, cpus: usize) -> Result<Self> {
        let mut out = KVec::with_capacity(chunks.len(), GFP_KERNEL)?;
        for mem in chunks {
            let nslabs = mem.len() >> slots::DEFAULT_SLOT_SHIFT;
            let cfg = PoolConfig::new(mem.phys(), nslabs).with_cpus(cpus);
            let pool = Pool::new(&cfg).map_err(|_| EINVAL)?;
            let mut areas = KVec::with_capacity(pool.area_count(), GFP_KERNEL)?;
            for a in 0..pool.area_count() {
                let len = pool.area_slots(a).ok_or(EINVAL)?;
                let mut storage = KVec::with_capacity(len, GFP_KERNEL)?;
                for _ in 0..len {
                    storage.push(Slot::new(), GFP_KERNEL)?;
                }
                let area = pool.new_area(a, storage).map_err(|_| EINVAL)?;
                areas.push(
                    KBox::pin_init(
                        crate::new_irq_spinlock!(area, "xen_swiotlb_rs_area"),
                        GFP_KERNEL,
                    )?,
                    GFP_KERNEL,
                )?;
            }
            // INVARIANT: the pool's slots are the chunk's bytes, from its first one.
            out.push(Chunk { mem, pool, areas }, GFP_KERNEL)?;
        }
        Ok(Self {
            chunks: out,
            stats: Stats::new(),
        })
    }

    /// The allocator's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Bytes in the pool.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.mem.len()).sum()
    }

    /// Slots in the pool.
    pub fn nslabs(&self) -> usize {
        self.bytes() >> slots::DEFAULT_SLOT_SHIFT
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Physical address range of chunk `i`: first and last byte.
    pub fn chunk_range(&self, i: usize) -> Option<(u64, u64)> {
        let c = self.chunks.get(i)?;
        Some((c.mem.phys(), c.mem.phys() + c.mem.len() as u64 - 1))
    }

    /// The highest physical address of the pool.
    pub fn last_phys(&self) -> u64 {
        (0..self.chunks.len())
            .filter_map(|i| self.chunk_range(i))
            .map(|(_, last)| last)
            .max()
            .unwrap_or(0)
    }

    /// The largest mapping with `min_align_mask` the pool can hold.
    pub fn max_mapping_size(&self, min_align_mask: u64) -> usize {
        self.chunks
            .iter()
            .map(|c| c.pool.max_mapping_size(min_align_mask))
            .max()
            .unwrap_or(0)
    }

    /// True if `addr` is a physical address inside the pool.
    pub fn contains(&self, addr: u64) -> bool {
        slots::is_bounce_addr(self, addr)
    }

    /// Kernel virtual address of pool byte `addr` (`len` bytes from it must be in the same
    /// chunk).
    fn pool_ptr(&self, addr: u64, len: usize) -> Option<*mut u8> {
        let c = self.chunks.iter().find(|c| {
            addr >= c.mem.phys() && addr - c.mem.phys() + len as u64 <= c.mem.len() as u64
        })?;
        let off = usize::try_from(addr - c.mem.phys()).ok()?;
        // The offset is inside the chunk (checked above).
        Some(c.mem.virt().wrapping_add(off))
    }

    /// Copies `len` bytes between a mapping's bounce slots at `bounce` and its original memory
    /// at `orig`, in the direction `to_orig` says.
    fn copy(&self, bounce: u64, orig: u64, len: usize, to_orig: bool) {
        let Some(pool) = self.pool_ptr(bounce, len) else {
            return;
        };
        // SAFETY: `orig` is a lent buffer's address (type invariant), in the linear map.
        let orig = unsafe { ffi::xendma_phys_to_virt(orig) }.cast::<u8>();
        let (src, dst) = if to_orig {
            (pool.cast_const(), orig)
        } else {
            (orig.cast_const(), pool)
        };
        // SAFETY: `pool` is `len` bytes of a chunk we own (`pool_ptr` checked the range); the
        // original bytes are lent to the live mapping and cover `len` bytes (type invariant: the
        // allocator returned a range inside the mapping). The two never overlap: the pool's
        // pages are never lent by a caller.
        unsafe { core::ptr::copy_nonoverlapping(src, dst, len) };
    }

    /// Allocates bounce slots for `buf` (aligned as `min_align_mask` and the segment boundary
    /// ask) and copies the buffer into them: the bounce buffer's physical address.
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
        let m = slots::map(self, this_cpu(), &req)?;
        // Always copied in, even for a device-to-memory mapping: a device that writes less than
        // the whole buffer must not expose what an earlier user left in the slots.
        self.copy(m.addr(), buf.phys(), buf.len(), false);
        self.stats.add_bounced(buf.len() as u64);
        Ok(m.addr())
    }

    /// Frees the mapping at bounce address `addr` of `size` bytes, first copying the bounce
    /// buffer back if `copy_back`. The allocator refuses (and nothing is copied) unless `addr`
    /// and `size` are exactly a live mapping's.
    pub fn unmap(&self, addr: u64, size: usize, copy_back: bool) -> Result<Released, UnmapError> {
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
        (0..self.chunks.len())
            .filter_map(|p| slots::pool_slots_in_use(self, p))
            .sum()
    }
}
