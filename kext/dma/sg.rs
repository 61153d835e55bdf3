// SPDX-License-Identifier: GPL-2.0

//! Scatter-gather tables over owned pages, and their DMA mappings.

use crate::kext::bindings as ffi;
use crate::kext::dma::{
    check_range, copy_from_dma, Attrs, DeviceReadable, DeviceReads, DeviceWritable, DeviceWrites,
    Direction, DmaAddr, DmaDevice, DmaRegion, MapFailed, PAGE_SIZE,
};
use crate::kext::page::Pages;
use core::{marker::PhantomData, mem::ManuallyDrop};
use kernel::{
    alloc::{flags, KVec},
    error::{code::EINVAL, to_result, Error, Result},
};

/// A scatter-gather table over owned pages (`sg_alloc_table_from_pages_segment`): `len` bytes
/// starting `offset` bytes into the first page, in entries of at most `max_segment` bytes;
/// physically adjacent pages share an entry.
///
/// # Invariants
///
/// `table` was filled by `sg_alloc_table_from_pages_segment` over the pages of `pages` for
/// `offset..offset + len`, and is freed only on drop.
pub struct SgTable {
    table: ffi::sg_table,
    pages: KVec<Pages>,
    offset: usize,
    len: usize,
}

// SAFETY: the table's entries are kmalloc memory owned by the table; the pages are owned.
unsafe impl Send for SgTable {}
// SAFETY: shared access only reads.
unsafe impl Sync for SgTable {}

impl SgTable {
    /// Builds the table. `EINVAL` when the range is empty or does not fit in the pages, or
    /// `max_segment` is below a page; `ENOMEM` on allocation failure.
    pub fn new(pages: KVec<Pages>, offset: usize, len: usize, max_segment: u32) -> Result<Self> {
        let total = pages
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(EINVAL)?;
        check_range(offset, len, total)?;
        if len == 0 || (max_segment as usize) < PAGE_SIZE {
            return Err(EINVAL);
        }
        // The C function takes the pages the range touches, as order-0 pages.
        let first = offset >> kernel::page::PAGE_SHIFT;
        let last = (offset + len - 1) >> kernel::page::PAGE_SHIFT;
        let mut list = KVec::with_capacity(last - first + 1, flags::GFP_KERNEL)?;
        let mut index = 0usize;
        for p in pages.iter() {
            for n in 0..(1usize << p.order()) {
                if index >= first && index <= last {
                    let page = p.nth_page(n).ok_or(EINVAL)?;
                    list.push(page.as_ptr(), flags::GFP_KERNEL)?;
                }
                index += 1;
            }
        }
        let mut table = ffi::sg_table::default();
        let n = u32::try_from(list.len()).map_err(|_| EINVAL)?;
        // SAFETY: `list` holds `n` valid pages; the offset is inside the first of them and the
        // length inside the list (checked above); `table` is an out parameter.
        to_result(unsafe {
            ffi::sg_alloc_table_from_pages_segment(
                &mut table,
                list.as_mut_ptr(),
                n,
                (offset & (PAGE_SIZE - 1)) as kernel::ffi::c_uint,
                len,
                max_segment,
                ffi::GFP_KERNEL,
            )
        })?;
        // INVARIANT: filled just above over these pages and range.
        Ok(Self {
            table,
            pages,
            offset,
            len,
        })
    }

    /// The number of entries (`orig_nents`).
    pub fn entries(&self) -> usize {
        self.table.orig_nents as usize
    }

    /// The length the table describes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Tables are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reads `out.len()` bytes at `offset` into the table's range.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), self.len)?;
        let mut base = 0usize;
        for p in self.pages.iter() {
            if let Some((range, at)) = overlap(base, p.len(), self.offset + offset, out.len()) {
                out[at..at + range.len()].copy_from_slice(&p[range]);
            }
            base += p.len();
        }
        Ok(())
    }

    /// Writes `data` at `offset` into the table's range.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        check_range(offset, data.len(), self.len)?;
        let mut base = 0usize;
        for p in self.pages.iter_mut() {
            let plen = p.len();
            if let Some((range, at)) = overlap(base, plen, self.offset + offset, data.len()) {
                let n = range.len();
                p[range].copy_from_slice(&data[at..at + n]);
            }
            base += plen;
        }
        Ok(())
    }

    /// Maps the table for direction `D` (`dma_map_sgtable`). The kernel's error is returned with
    /// the table: `ENOMEM` when mapping space ran out, `EIO` or `EINVAL` for segments the device
    /// cannot take.
    pub fn map<D: Direction>(
        mut self,
        dev: &DmaDevice,
        attrs: Attrs,
    ) -> Result<SgMapping<D>, MapFailed<SgTable>> {
        // SAFETY: the table is valid (type invariant) and the device is valid.
        let rc = unsafe {
            ffi::dma_map_sgtable(
                dev.as_raw(),
                &mut self.table,
                D::RAW,
                attrs.bits() as kernel::ffi::c_ulong,
            )
        };
        if rc != 0 {
            return Err(MapFailed {
                error: Error::from_errno(rc),
                buf: self,
            });
        }
        // INVARIANT: mapped just above.
        Ok(SgMapping {
            dev: dev.clone(),
            table: ManuallyDrop::new(self),
            attrs,
            _d: PhantomData,
        })
    }

    /// Frees the table and returns the pages.
    pub fn into_pages(self) -> KVec<Pages> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: allocated by `sg_alloc_table_from_pages_segment` (type invariant); `this` is
        // not used or dropped again, so the pages are moved out once.
        unsafe {
            ffi::sg_free_table(&mut this.table);
            core::ptr::read(&this.pages)
        }
    }
}

impl Drop for SgTable {
    fn drop(&mut self) {
        // SAFETY: allocated by `sg_alloc_table_from_pages_segment` (type invariant).
        unsafe { ffi::sg_free_table(&mut self.table) };
    }
}

/// The part of `start..start + len` inside a block of `block_len` bytes at `base`: the range
/// within the block and where it begins in `start..`.
fn overlap(
    base: usize,
    block_len: usize,
    start: usize,
    len: usize,
) -> Option<(core::ops::Range<usize>, usize)> {
    let (lo, hi) = (start.max(base), (start + len).min(base + block_len));
    (lo < hi).then(|| (lo - base..hi - base, lo - start))
}

/// A mapped scatter-gather table; the device owns its pages until [`SgMapping::sync_for_cpu`]
/// or [`SgMapping::unmap`]. Dropping it unmaps and frees everything.
///
/// # Invariants
///
/// `table` is mapped for `dev` in direction `D` with `attrs`.
pub struct SgMapping<D: Direction> {
    dev: DmaDevice,
    table: ManuallyDrop<SgTable>,
    attrs: Attrs,
    _d: PhantomData<D>,
}

impl<D: Direction> SgMapping<D> {
    /// The number of DMA segments the mapping produced (`nents`; may be fewer than the entries).
    pub fn segment_count(&self) -> usize {
        self.table.table.nents as usize
    }

    /// The number of entries of the table.
    pub fn entries(&self) -> usize {
        self.table.entries()
    }

    /// The DMA segments, in order.
    pub fn segments(&self) -> Segments<'_, D> {
        Segments {
            next: self.table.table.sgl,
            left: self.segment_count(),
            _p: PhantomData,
        }
    }

    /// The length the table describes.
    pub fn len(&self) -> usize {
        self.table.len
    }

    /// Mappings are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reads the CPU's copy of the table's range without taking ownership (volatile). As with
    /// a single mapping's `peek_unsynced`, the contents are unspecified before `sync_for_cpu`:
    /// a bounced table shows what its pages held at map time.
    pub fn peek_unsynced(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), self.table.len)?;
        let mut base = 0usize;
        for p in self.table.pages.iter() {
            let plen = PAGE_SIZE << p.order();
            if let Some((range, at)) = overlap(base, plen, self.table.offset + offset, out.len()) {
                let n = range.len();
                // SAFETY: `range` lies within the block's `plen` bytes (`overlap`), which the
                // table owns while `self` lives; volatile reads of memory a device may write are
                // well defined, and the CPU does not write it while `&self` lives.
                unsafe { copy_from_dma(&mut out[at..at + n], p.virt().add(range.start)) };
            }
            base += plen;
        }
        Ok(())
    }

    fn sync(&mut self, for_cpu: bool) {
        // SAFETY: mapped with this direction (type invariant).
        unsafe {
            if for_cpu {
                ffi::xendma_dma_sync_sgtable_for_cpu(
                    self.dev.as_raw(),
                    &mut self.table.table,
                    D::RAW as kernel::ffi::c_int,
                );
            } else {
                ffi::xendma_dma_sync_sgtable_for_device(
                    self.dev.as_raw(),
                    &mut self.table.table,
                    D::RAW as kernel::ffi::c_int,
                );
            }
        }
    }

    /// Hands the pages to the CPU until the returned view is dropped.
    pub fn sync_for_cpu(&mut self) -> SgCpuOwned<'_, D> {
        self.sync(true);
        SgCpuOwned { map: self }
    }

    fn do_unmap(&mut self) {
        // SAFETY: mapped with these parameters (type invariant); called once, on the way out.
        unsafe {
            ffi::xendma_dma_unmap_sgtable(
                self.dev.as_raw(),
                &mut self.table.table,
                D::RAW as kernel::ffi::c_int,
                self.attrs.bits() as kernel::ffi::c_ulong,
            )
        };
    }

    /// Ends the mapping and returns the table, holding what the device wrote.
    pub fn unmap(self) -> SgTable {
        let mut this = ManuallyDrop::new(self);
        this.do_unmap();
        // SAFETY: `this` is not used or dropped again, so the table and the device reference
        // are moved out once.
        let (table, dev) = unsafe {
            (
                ManuallyDrop::take(&mut this.table),
                core::ptr::read(&this.dev),
            )
        };
        drop(dev);
        table
    }
}

impl<D: Direction> Drop for SgMapping<D> {
    fn drop(&mut self) {
        self.do_unmap();
        // SAFETY: unmapped just above; dropped once.
        unsafe { ManuallyDrop::drop(&mut self.table) };
    }
}

/// The CPU's ownership of a mapped table's pages (see [`CpuOwned`]).
pub struct SgCpuOwned<'a, D: Direction> {
    map: &'a mut SgMapping<D>,
}

impl<D: Direction> SgCpuOwned<'_, D> {
    /// Reads from the table's range.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        self.map.table.read(offset, out)
    }

    /// Gives the pages back to the device; the same as dropping.
    pub fn sync_for_device(self) {}
}

impl<D: DeviceReads> SgCpuOwned<'_, D> {
    /// Writes into the table's range; the device sees it after `sync_for_device`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        self.map.table.write(offset, data)
    }
}

impl<D: Direction> Drop for SgCpuOwned<'_, D> {
    fn drop(&mut self) {
        self.map.sync(false);
    }
}

/// Iterator over the DMA segments of an [`SgMapping`].
///
/// # Invariants
///
/// `next` is NULL or an entry of a mapped table borrowed for `'a`, with `left` mapped segments
/// from it on.
pub struct Segments<'a, D: Direction> {
    next: *mut ffi::scatterlist,
    left: usize,
    _p: PhantomData<&'a SgMapping<D>>,
}

/// One DMA segment of a mapped table, valid while the mapping is borrowed.
pub struct DmaSegment<'a, D: Direction> {
    addr: DmaAddr,
    len: usize,
    _p: PhantomData<&'a D>,
}

impl<D: Direction> Clone for DmaSegment<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<D: Direction> Copy for DmaSegment<'_, D> {}

impl<'a, D: Direction> Iterator for Segments<'a, D> {
    type Item = DmaSegment<'a, D>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.next.is_null() {
            return None;
        }
        let sg = self.next;
        // SAFETY: `sg` is an entry of the borrowed, mapped table (type invariant).
        let (addr, len, next) = unsafe {
            (
                ffi::xendma_sg_dma_address(sg),
                ffi::xendma_sg_dma_len(sg),
                ffi::sg_next(sg),
            )
        };
        // INVARIANT: one segment consumed; `next` is the following entry or NULL.
        self.left -= 1;
        self.next = next;
        Some(DmaSegment {
            addr,
            len: len as usize,
            _p: PhantomData,
        })
    }
}

impl<D: Direction> DmaRegion for DmaSegment<'_, D> {
    fn dma_handle(&self) -> DmaAddr {
        self.addr
    }
    fn dma_len(&self) -> usize {
        self.len
    }
}
impl<D: DeviceReads> DeviceReadable for DmaSegment<'_, D> {}
impl<D: DeviceWrites> DeviceWritable for DmaSegment<'_, D> {}
