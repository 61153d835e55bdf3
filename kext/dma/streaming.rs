// SPDX-License-Identifier: GPL-2.0

//! Streaming DMA mappings of linear buffers and of single pages, with CPU/device ownership.

use crate::kext::bindings as ffi;
#[cfg(xendma_odp)]
use crate::kext::dma::PAGE_SIZE;
use crate::kext::dma::{
    check_range, copy_from_dma, Attrs, DeviceReadable, DeviceReads, DeviceWritable, DeviceWrites,
    Direction, DmaAddr, DmaDevice, DmaRegion,
};
#[cfg(xendma_odp)]
use crate::kext::page::PageRef;
use crate::kext::page::Pages;
use core::{
    marker::PhantomData,
    mem::ManuallyDrop,
    ops::{Deref, DerefMut},
};
use kernel::{
    alloc::KVec,
    error::{
        code::{EINVAL, ENOMEM},
        Error, Result,
    },
};

/// Buffers that streaming mappings accept: memory in the kernel's linear map (not vmalloc, not
/// the stack, not inline in the owner) that stays in place while its owner is moved.
///
/// # Safety
///
/// `Deref` and `DerefMut` must return the same memory every time, and that memory must be in the
/// linear map (so `virt_to_page` is valid on it) and stay allocated until the owner is dropped.
pub unsafe trait LinearBuf: DerefMut<Target = [u8]> + Send {}

// SAFETY: a `KVec`'s elements are kmalloc memory that moves only when the vector grows, which
// needs `&mut` access a mapping never gives.
unsafe impl LinearBuf for KVec<u8> {}
// SAFETY: pages from the page allocator, in the linear map (`Pages` invariant).
unsafe impl LinearBuf for Pages {}

/// A failed mapping: the error and the buffer, given back.
pub struct MapFailed<B> {
    /// Why the mapping failed.
    pub error: Error,
    /// The buffer, unchanged.
    pub buf: B,
}

impl<B> From<MapFailed<B>> for Error {
    fn from(e: MapFailed<B>) -> Error {
        e.error
    }
}

impl<B> core::fmt::Debug for MapFailed<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MapFailed({:?})", self.error)
    }
}

/// A streaming DMA mapping of a buffer for direction `D` (`dma_map_single_attrs`).
///
/// While the mapping exists the device owns the buffer. [`Mapping::sync_for_cpu`] hands it to the
/// CPU until the returned [`CpuOwned`] is dropped or [`CpuOwned::sync_for_device`] is called;
/// [`Mapping::unmap`] ends the mapping and returns the buffer with the device's data in it.
/// Dropping the mapping unmaps it and frees the buffer.
///
/// # Invariants
///
/// `buf`'s first `len` bytes (`len > 0`) are mapped for `dev` in direction `D` with `attrs` at
/// bus address `dma`, and `buf` is not dropped while the mapping lives.
pub struct Mapping<B: LinearBuf, D: Direction> {
    dev: DmaDevice,
    buf: ManuallyDrop<B>,
    dma: DmaAddr,
    len: usize,
    attrs: Attrs,
    _d: PhantomData<D>,
}

impl<B: LinearBuf, D: Direction> Mapping<B, D> {
    /// Maps all of `buf`. `EINVAL` for an empty buffer; `ENOMEM` when the DMA path cannot map it
    /// (`dma_mapping_error`: no bounce space, or no address under the mask). The buffer comes
    /// back in the error.
    pub fn new(dev: &DmaDevice, mut buf: B, attrs: Attrs) -> Result<Self, MapFailed<B>> {
        let len = buf.len();
        if len == 0 {
            return Err(MapFailed { error: EINVAL, buf });
        }
        let ptr = buf.as_mut_ptr();
        // SAFETY: `ptr` is `len` bytes of linear-map memory (`LinearBuf`) that `buf` keeps in
        // place; the device is valid.
        let dma = unsafe {
            ffi::xendma_dma_map_single_attrs(
                dev.as_raw(),
                ptr.cast(),
                len,
                D::RAW as kernel::ffi::c_int,
                attrs.bits() as kernel::ffi::c_ulong,
            )
        };
        // SAFETY: the device is valid.
        if unsafe { ffi::xendma_dma_mapping_error(dev.as_raw(), dma) } != 0 {
            return Err(MapFailed { error: ENOMEM, buf });
        }
        // INVARIANT: mapped just above.
        Ok(Self {
            dev: dev.clone(),
            buf: ManuallyDrop::new(buf),
            dma,
            len,
            attrs,
            _d: PhantomData,
        })
    }

    /// The bus address the device uses.
    pub fn dma_handle(&self) -> DmaAddr {
        self.dma
    }

    /// The mapped length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Mappings are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The attributes the mapping was made with.
    pub fn attrs(&self) -> Attrs {
        self.attrs
    }

    fn sync(&self, for_cpu: bool) {
        // SAFETY: mapped with these parameters (type invariant).
        unsafe {
            if for_cpu {
                ffi::xendma_dma_sync_single_for_cpu(
                    self.dev.as_raw(),
                    self.dma,
                    self.len,
                    D::RAW as kernel::ffi::c_int,
                );
            } else {
                ffi::xendma_dma_sync_single_for_device(
                    self.dev.as_raw(),
                    self.dma,
                    self.len,
                    D::RAW as kernel::ffi::c_int,
                );
            }
        }
    }

    /// Hands the buffer to the CPU (`dma_sync_single_for_cpu`): what the device wrote is visible
    /// through the returned view. The device must be idle on the buffer; it gets the buffer back
    /// when the view is dropped.
    pub fn sync_for_cpu(&mut self) -> CpuOwned<'_, B, D> {
        self.sync(true);
        CpuOwned { map: self }
    }

    /// Reads the CPU's copy of the buffer without taking ownership (volatile). Before a
    /// `sync_for_cpu` the contents are unspecified: with a direct mapping they may already hold
    /// the device's data, with a bounced one they hold what was there at map time.
    pub fn peek_unsynced(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), self.len)?;
        let base: *const u8 = self.buf.as_ptr();
        // SAFETY: inside the buffer, which lives as long as `self`; volatile reads of memory a
        // device may write are well defined, and the CPU side is not written while `&self` lives.
        unsafe { copy_from_dma(out, base.add(offset)) };
        Ok(())
    }

    fn do_unmap(&mut self) {
        // SAFETY: mapped with these parameters (type invariant); called once, on the way out.
        unsafe {
            ffi::dma_unmap_page_attrs(
                self.dev.as_raw(),
                self.dma,
                self.len,
                D::RAW,
                self.attrs.bits() as kernel::ffi::c_ulong,
            )
        };
    }

    /// Ends the mapping and returns the buffer, holding what the device wrote.
    pub fn unmap(self) -> B {
        let mut this = ManuallyDrop::new(self);
        this.do_unmap();
        // SAFETY: `this` is never used or dropped again, so its buffer and device reference are
        // moved out exactly once.
        let (buf, dev) = unsafe {
            (
                ManuallyDrop::take(&mut this.buf),
                core::ptr::read(&this.dev),
            )
        };
        drop(dev);
        buf
    }
}

impl<B: LinearBuf, D: Direction> DmaRegion for Mapping<B, D> {
    fn dma_handle(&self) -> DmaAddr {
        self.dma
    }
    fn dma_len(&self) -> usize {
        self.len
    }
}
impl<B: LinearBuf, D: DeviceReads> DeviceReadable for Mapping<B, D> {}
impl<B: LinearBuf, D: DeviceWrites> DeviceWritable for Mapping<B, D> {}

impl<B: LinearBuf, D: Direction> Drop for Mapping<B, D> {
    fn drop(&mut self) {
        self.do_unmap();
        // SAFETY: unmapped just above; the buffer is dropped once.
        unsafe { ManuallyDrop::drop(&mut self.buf) };
    }
}

/// The CPU's ownership of a mapped buffer, from [`Mapping::sync_for_cpu`] until drop or
/// [`CpuOwned::sync_for_device`]. It reads the buffer in every direction and writes it only in
/// directions where the device reads ([`DeviceReads`]): a CPU write to a `FromDevice` buffer
/// would never reach the device.
pub struct CpuOwned<'a, B: LinearBuf, D: Direction> {
    map: &'a mut Mapping<B, D>,
}

impl<B: LinearBuf, D: Direction> CpuOwned<'_, B, D> {
    /// Gives the buffer back to the device (`dma_sync_single_for_device`); the same as dropping.
    pub fn sync_for_device(self) {}
}

impl<B: LinearBuf, D: Direction> Deref for CpuOwned<'_, B, D> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map.buf[..self.map.len]
    }
}

impl<B: LinearBuf, D: DeviceReads> DerefMut for CpuOwned<'_, B, D> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.map.len;
        &mut self.map.buf[..len]
    }
}

impl<B: LinearBuf, D: Direction> Drop for CpuOwned<'_, B, D> {
    fn drop(&mut self) {
        self.map.sync(false);
    }
}

/// A streaming mapping of one base page that someone else owns (`dma_map_page_attrs`), for
/// direction `D`: the device's view of, for example, a page of a process's memory. The page is
/// referenced for as long as it is mapped. Unlike [`Mapping`], the CPU side is not borrowed
/// (other CPUs may write the page through their own mappings at any time), so the syncs are
/// plain calls that the device's user orders against its transfers: [`sync_for_device`] before
/// the device reads, [`sync_for_cpu`] after it wrote. Unmapping does not sync
/// (`DMA_ATTR_SKIP_CPU_SYNC`): a bounce buffer copied back at unmap time would overwrite what
/// the CPU wrote since the device's last transfer, so every device write must be followed by
/// [`sync_for_cpu`] of the bytes it wrote.
///
/// [`sync_for_device`]: PageMapping::sync_for_device
/// [`sync_for_cpu`]: PageMapping::sync_for_cpu
///
/// # Invariants
///
/// `page` is mapped for `dev` in direction `D` at `dma`, `PAGE_SIZE` bytes, until drop.
#[cfg(xendma_odp)]
pub struct PageMapping<D: Direction> {
    dev: DmaDevice,
    page: PageRef,
    dma: DmaAddr,
    _d: PhantomData<D>,
}

#[cfg(xendma_odp)]
impl<D: Direction> PageMapping<D> {
    /// Maps `page` for `dev`. `ENOMEM` (and the page back) when the DMA path cannot map it.
    pub fn new(dev: &DmaDevice, page: PageRef) -> Result<Self, MapFailed<PageRef>> {
        // SAFETY: a valid, referenced page (`PageRef` invariant) and a valid device.
        let dma = unsafe {
            ffi::dma_map_page_attrs(
                dev.as_raw(),
                page.as_raw(),
                0,
                PAGE_SIZE,
                D::RAW,
                Attrs::NO_WARN.bits() as kernel::ffi::c_ulong,
            )
        };
        // SAFETY: the device is valid.
        if unsafe { ffi::xendma_dma_mapping_error(dev.as_raw(), dma) } != 0 {
            return Err(MapFailed {
                error: ENOMEM,
                buf: page,
            });
        }
        // INVARIANT: mapped just above.
        Ok(Self {
            dev: dev.clone(),
            page,
            dma,
            _d: PhantomData,
        })
    }

    /// The mapped page.
    pub fn page(&self) -> &PageRef {
        &self.page
    }

    /// Makes what the CPU wrote to `len` bytes at `offset` visible to the device
    /// (`dma_sync_single_range_for_device`); `EINVAL` outside the page.
    pub fn sync_for_device(&self, offset: usize, len: usize) -> Result {
        check_range(offset, len, PAGE_SIZE)?;
        // SAFETY: a part of the mapping made with these parameters (type invariant).
        unsafe {
            ffi::xendma_dma_sync_single_for_device(
                self.dev.as_raw(),
                self.dma + offset as u64,
                len,
                D::RAW as kernel::ffi::c_int,
            )
        };
        Ok(())
    }

    /// Makes what the device wrote to `len` bytes at `offset` visible to the CPU
    /// (`dma_sync_single_range_for_cpu`); `EINVAL` outside the page. Only the synced bytes
    /// are copied back from a bounce buffer, so the CPU's writes elsewhere in the page survive.
    pub fn sync_for_cpu(&self, offset: usize, len: usize) -> Result {
        check_range(offset, len, PAGE_SIZE)?;
        // SAFETY: a part of the mapping made with these parameters (type invariant).
        unsafe {
            ffi::xendma_dma_sync_single_for_cpu(
                self.dev.as_raw(),
                self.dma + offset as u64,
                len,
                D::RAW as kernel::ffi::c_int,
            )
        };
        Ok(())
    }

    /// Unmaps the page and returns it (with what the device wrote, if the mapping bounced).
    pub fn unmap(self) -> PageRef {
        let this = ManuallyDrop::new(self);
        this.do_unmap();
        // SAFETY: `this` is never used or dropped again, so its fields are moved out once.
        let (page, dev) = unsafe { (core::ptr::read(&this.page), core::ptr::read(&this.dev)) };
        drop(dev);
        page
    }

    fn do_unmap(&self) {
        // SAFETY: mapped with these parameters (type invariant); called once, on the way out.
        unsafe {
            ffi::dma_unmap_page_attrs(
                self.dev.as_raw(),
                self.dma,
                PAGE_SIZE,
                D::RAW,
                (Attrs::NO_WARN | Attrs::SKIP_CPU_SYNC).bits() as kernel::ffi::c_ulong,
            )
        };
    }
}

#[cfg(xendma_odp)]
impl<D: Direction> DmaRegion for PageMapping<D> {
    fn dma_handle(&self) -> DmaAddr {
        self.dma
    }
    fn dma_len(&self) -> usize {
        PAGE_SIZE
    }
}
#[cfg(xendma_odp)]
impl<D: DeviceReads> DeviceReadable for PageMapping<D> {}
#[cfg(xendma_odp)]
impl<D: DeviceWrites> DeviceWritable for PageMapping<D> {}

#[cfg(xendma_odp)]
impl<D: Direction> Drop for PageMapping<D> {
    fn drop(&mut self) {
        self.do_unmap();
    }
}
