// SPDX-License-Identifier: GPL-2.0

//! Non-coherent DMA pages (`dma_alloc_pages`), and the pages behind a coherent buffer as a
//! scatter-gather table (`dma_get_sgtable_attrs`).

use crate::kext::bindings as ffi;
use crate::kext::dma::{
    check_range, copy_from_dma, copy_to_dma, raw_gfp, DeviceReadable, DeviceWritable, DmaAddr,
    DmaDevice, DmaRegion, MAX_ALLOC,
};
use core::ptr::NonNull;
use kernel::{
    alloc::Flags,
    error::{
        code::{EINVAL, ENOMEM},
        to_result, Result,
    },
};

const BIDIRECTIONAL: ffi::dma_data_direction = ffi::dma_data_direction_DMA_BIDIRECTIONAL;

/// `size` bytes of pages that the device can reach (`dma_alloc_pages`, bidirectional), freed on
/// drop. They are not coherent: the CPU sees what the device wrote only after
/// [`DmaPages::sync_for_cpu`], the device what the CPU wrote only after
/// [`DmaPages::sync_for_device`]. The CPU's accessors are volatile, so a missing sync gives stale
/// bytes, never undefined behaviour.
///
/// # Invariants
///
/// `page` is the first page of a `dma_alloc_pages` allocation of `size > 0` bytes for `dev`,
/// bidirectional, at bus address `dma`, in the kernel's linear map.
pub struct DmaPages {
    dev: DmaDevice,
    page: NonNull<ffi::page>,
    dma: DmaAddr,
    size: usize,
}

// SAFETY: owned memory; the device reference may move between threads.
unsafe impl Send for DmaPages {}
// SAFETY: shared access only reads (`&mut self` is needed to write).
unsafe impl Sync for DmaPages {}

impl DmaPages {
    /// Allocates `size` bytes for the device (under its streaming mask). `EINVAL` for zero,
    /// `ENOMEM` when nothing fits (also beyond [`MAX_ALLOC`]).
    pub fn alloc(dev: &DmaDevice, size: usize, gfp: Flags) -> Result<Self> {
        if size == 0 {
            return Err(EINVAL);
        }
        if size > MAX_ALLOC {
            return Err(ENOMEM);
        }
        let mut dma: ffi::dma_addr_t = 0;
        // SAFETY: the device is valid (`DmaDevice`); `dma` is a valid out pointer.
        let page = unsafe {
            ffi::dma_alloc_pages(dev.as_raw(), size, &mut dma, BIDIRECTIONAL, raw_gfp(gfp))
        };
        let page = NonNull::new(page).ok_or(ENOMEM)?;
        // INVARIANT: allocated just above, with these parameters; dma_alloc_pages gives pages
        // in the linear map (it refuses highmem).
        Ok(Self {
            dev: dev.clone(),
            page,
            dma,
            size,
        })
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.size
    }

    /// Allocations are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The physical address of the first byte.
    pub fn phys(&self) -> u64 {
        // SAFETY: a page we own (type invariant).
        unsafe { ffi::xendma_page_to_phys(self.page.as_ptr()) }
    }

    fn addr(&self) -> *mut u8 {
        // SAFETY: a page we own, in the linear map (type invariant).
        unsafe { ffi::xendma_page_address(self.page.as_ptr()) }.cast()
    }

    /// Hands the pages to the CPU: what the device wrote becomes visible.
    pub fn sync_for_cpu(&self) {
        self.sync(true);
    }

    /// Hands the pages to the device: what the CPU wrote becomes visible to it.
    pub fn sync_for_device(&self) {
        self.sync(false);
    }

    fn sync(&self, for_cpu: bool) {
        let sync = if for_cpu {
            ffi::xendma_dma_sync_single_for_cpu
        } else {
            ffi::xendma_dma_sync_single_for_device
        };
        // SAFETY: the whole allocation, bidirectional, as allocated (type invariant).
        unsafe {
            sync(
                self.dev.as_raw(),
                self.dma,
                self.size,
                BIDIRECTIONAL as kernel::ffi::c_int,
            )
        };
    }

    /// Reads `out.len()` bytes at `offset` (volatile).
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), self.size)?;
        // SAFETY: inside the allocation (checked), which lives as long as `self`.
        unsafe { copy_from_dma(out, self.addr().add(offset)) };
        Ok(())
    }

    /// Writes `data` at `offset` (volatile).
    pub fn write_bytes(&mut self, offset: usize, data: &[u8]) -> Result {
        check_range(offset, data.len(), self.size)?;
        // SAFETY: inside the allocation (checked), exclusively borrowed.
        unsafe { copy_to_dma(self.addr().add(offset), data) };
        Ok(())
    }
}

impl DmaRegion for DmaPages {
    fn dma_handle(&self) -> DmaAddr {
        self.dma
    }
    fn dma_len(&self) -> usize {
        self.size
    }
}
impl DeviceReadable for DmaPages {}
impl DeviceWritable for DmaPages {}

impl Drop for DmaPages {
    fn drop(&mut self) {
        // SAFETY: allocated by `dma_alloc_pages` with exactly these arguments (type invariant);
        // freed once.
        unsafe {
            ffi::dma_free_pages(
                self.dev.as_raw(),
                self.size,
                self.page.as_ptr(),
                self.dma,
                BIDIRECTIONAL,
            )
        };
    }
}

/// The pages behind a buffer as a scatter-gather table, as `dma_get_sgtable_attrs` describes
/// them (for sharing the buffer with another device); freed on drop.
///
/// # Invariants
///
/// `table` was filled by a successful `dma_get_sgtable_attrs` and is freed only on drop.
pub struct BufferPages {
    table: ffi::sg_table,
}

impl BufferPages {
    /// Asks the buffer's device for the table of the `size` bytes at `cpu`/`dma`.
    ///
    /// # Safety
    ///
    /// `cpu` and `dma` must be the addresses of a live `dma_alloc_attrs` buffer of at least
    /// `size` bytes for `dev`, allocated with `attrs`.
    pub(crate) unsafe fn get(
        dev: &DmaDevice,
        cpu: *mut u8,
        dma: DmaAddr,
        size: usize,
        attrs: kernel::ffi::c_ulong,
    ) -> Result<Self> {
        let mut table = ffi::sg_table::default();
        // SAFETY: the caller's guarantee; `table` is a valid, empty table to fill.
        to_result(unsafe {
            ffi::dma_get_sgtable_attrs(dev.as_raw(), &mut table, cpu.cast(), dma, size, attrs)
        })?;
        // INVARIANT: filled just above.
        Ok(Self { table })
    }

    /// The number of entries.
    pub fn entries(&self) -> usize {
        self.table.orig_nents as usize
    }

    /// The physical address of each entry's first byte and its length, in order (up to
    /// `out.len()` entries); returns how many were written.
    pub fn ranges(&self, out: &mut [(u64, usize)]) -> usize {
        let mut sg = self.table.sgl;
        let mut n = 0;
        while n < out.len() && n < self.entries() && !sg.is_null() {
            // SAFETY: `sg` is one of the table's `orig_nents` entries (type invariant).
            out[n] = unsafe { (ffi::xendma_sg_phys(sg), ffi::xendma_sg_length(sg) as usize) };
            // SAFETY: as above; `sg_next` returns NULL after the last entry.
            sg = unsafe { ffi::sg_next(sg) };
            n += 1;
        }
        n
    }
}

impl Drop for BufferPages {
    fn drop(&mut self) {
        // SAFETY: filled by `dma_get_sgtable_attrs` (type invariant); freed once.
        unsafe { ffi::sg_free_table(&mut self.table) };
    }
}
