// SPDX-License-Identifier: GPL-2.0

//! Streaming DMA mappings of linear buffers and of single pages, with CPU/device ownership.

use crate::kext::bindings as ffi;
use crate::kext::dma::{
    check_range, copy_from_dma, Attrs, DeviceReadable, DeviceReads, DeviceWritable, DeviceWrites,
    Direction, DmaAddr, DmaDevice, DmaRegion,
};
#[cfg(xendma_odp)]
use crate::kext::dma::{Bidirectional, ToDevice, PAGE_SIZE};
#[cfg(xendma_odp)]
use crate::kext::page::PageRef;
use crate::kext::page::Pages;
use core::{
    marker::PhantomData,
    mem::ManuallyDrop,
    ops::{Deref, DerefMut},
};
#[cfg(xendma_odp)]
use kernel::error::code::EBUSY;
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

/// The streaming mappings (`dma_map_page_attrs`) of base pages that someone else owns, for one
/// device, by index: for example a range of a process's memory as a device sees it. A page is
/// mapped `DMA_TO_DEVICE` (the device reads it) or `DMA_BIDIRECTIONAL` (it may also write it), and
/// referenced for as long as it is mapped. The device is referenced once for all of them, not per
/// page. Dropping the set unmaps what is still mapped.
///
/// The CPU side is not borrowed (other CPUs may write the pages through their own mappings at any
/// time), so the syncs of a [`PageView`] are plain calls that the device's user orders against its
/// transfers: `sync_for_device` before the device reads, `sync_for_cpu` after it wrote. Unmapping
/// does not sync (`DMA_ATTR_SKIP_CPU_SYNC`): a bounce buffer copied back at unmap time would
/// overwrite what the CPU wrote since the device's last transfer, so every device write must be
/// followed by `sync_for_cpu` of the bytes it wrote.
///
/// # Invariants
///
/// Every `Some(e)` of `entries` is `e.page` mapped for `dev` at `e.dma`, `PAGE_SIZE` bytes,
/// `DMA_BIDIRECTIONAL` if `e.writable` and `DMA_TO_DEVICE` otherwise, until [`PageMappings::unmap`]
/// takes it out or the set is dropped.
#[cfg(xendma_odp)]
pub struct PageMappings {
    dev: DmaDevice,
    entries: kernel::alloc::KVVec<Option<PageEntry>>,
}

// The set holds the device through a reference-counted pointer, never the device itself: moving
// the set moves the pointer (`ARef` is not `Unpin` only because `Device` is not).
#[cfg(xendma_odp)]
impl Unpin for PageMappings {}

#[cfg(xendma_odp)]
struct PageEntry {
    page: PageRef,
    dma: DmaAddr,
    writable: bool,
}

#[cfg(xendma_odp)]
impl PageMappings {
    /// An empty set of `len` places for pages mapped for `dev`.
    pub fn new(dev: &DmaDevice, len: usize, flags: kernel::alloc::Flags) -> Result<Self> {
        let mut entries = kernel::alloc::KVVec::with_capacity(len, flags)?;
        for _ in 0..len {
            entries.push(None, flags)?;
        }
        // INVARIANT: nothing is mapped.
        Ok(Self {
            dev: dev.clone(),
            entries,
        })
    }

    /// The number of places.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the set has no places.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The mapping at place `i`, if any.
    pub fn get(&self, i: usize) -> Option<MappedPage<'_>> {
        let e = self.entries.get(i)?.as_ref()?;
        // INVARIANT: `e` stays mapped in its direction while the set is borrowed: only `unmap`
        // (which needs `&mut self`) and drop end it.
        Some(if e.writable {
            MappedPage::Write(PageView {
                dev: &self.dev,
                page: &e.page,
                dma: e.dma,
                _d: PhantomData,
            })
        } else {
            MappedPage::Read(PageView {
                dev: &self.dev,
                page: &e.page,
                dma: e.dma,
                _d: PhantomData,
            })
        })
    }

    /// Maps `page` at place `i`, `DMA_BIDIRECTIONAL` if `writable` and `DMA_TO_DEVICE` otherwise,
    /// and returns its bus address. The page comes back with the error: `EINVAL` for a place
    /// outside the set, `EBUSY` for one already mapped (unmap it first), `ENOMEM` when the DMA
    /// path cannot map it.
    pub fn map(
        &mut self,
        i: usize,
        page: PageRef,
        writable: bool,
    ) -> Result<DmaAddr, MapFailed<PageRef>> {
        let slot = match self.entries.get_mut(i) {
            None => {
                return Err(MapFailed {
                    error: EINVAL,
                    buf: page,
                })
            }
            Some(Some(_)) => {
                return Err(MapFailed {
                    error: EBUSY,
                    buf: page,
                })
            }
            Some(slot) => slot,
        };
        let dir = Self::dir(writable);
        // SAFETY: a valid, referenced page (`PageRef` invariant) and a valid device.
        let dma = unsafe {
            ffi::dma_map_page_attrs(
                self.dev.as_raw(),
                page.as_raw(),
                0,
                PAGE_SIZE,
                dir,
                Attrs::NO_WARN.bits() as kernel::ffi::c_ulong,
            )
        };
        // SAFETY: the device is valid.
        if unsafe { ffi::xendma_dma_mapping_error(self.dev.as_raw(), dma) } != 0 {
            return Err(MapFailed {
                error: ENOMEM,
                buf: page,
            });
        }
        // INVARIANT: mapped just above, in the direction `writable` says, into an empty place.
        *slot = Some(PageEntry {
            page,
            dma,
            writable,
        });
        Ok(dma)
    }

    /// Unmaps place `i` and gives its page back (with what the device wrote, if the mapping
    /// bounced) and whether it was mapped writable; `None` if nothing was mapped there.
    pub fn unmap(&mut self, i: usize) -> Option<(PageRef, bool)> {
        let e = self.entries.get_mut(i)?.take()?;
        // SAFETY: `e` was mapped with these parameters (type invariant) and is taken out of the
        // set, so it is unmapped once.
        unsafe {
            ffi::dma_unmap_page_attrs(
                self.dev.as_raw(),
                e.dma,
                PAGE_SIZE,
                Self::dir(e.writable),
                (Attrs::NO_WARN | Attrs::SKIP_CPU_SYNC).bits() as kernel::ffi::c_ulong,
            )
        };
        Some((e.page, e.writable))
    }

    fn dir(writable: bool) -> ffi::dma_data_direction {
        if writable {
            Bidirectional::RAW
        } else {
            ToDevice::RAW
        }
    }
}

#[cfg(xendma_odp)]
impl Drop for PageMappings {
    fn drop(&mut self) {
        for i in 0..self.entries.len() {
            drop(self.unmap(i));
        }
    }
}

/// A page of a [`PageMappings`], as the device sees it, in the direction it was mapped.
#[cfg(xendma_odp)]
pub enum MappedPage<'a> {
    /// Mapped `DMA_TO_DEVICE`: the device only reads it.
    Read(PageView<'a, ToDevice>),
    /// Mapped `DMA_BIDIRECTIONAL`: the device may also write it.
    Write(PageView<'a, Bidirectional>),
}

#[cfg(xendma_odp)]
impl MappedPage<'_> {
    /// The page.
    pub fn page(&self) -> &PageRef {
        match self {
            Self::Read(v) => v.page,
            Self::Write(v) => v.page,
        }
    }

    /// The bus address.
    pub fn bus(&self) -> DmaAddr {
        match self {
            Self::Read(v) => v.dma,
            Self::Write(v) => v.dma,
        }
    }

    /// Syncs `len` bytes at `off` for the device, before it reads them.
    pub fn sync_for_device(&self, off: usize, len: usize) -> Result {
        match self {
            Self::Read(v) => v.sync_for_device(off, len),
            Self::Write(v) => v.sync_for_device(off, len),
        }
    }

    /// Syncs `len` bytes at `off` for the CPU, after the device wrote them.
    pub fn sync_for_cpu(&self, off: usize, len: usize) -> Result {
        match self {
            Self::Read(v) => v.sync_for_cpu(off, len),
            Self::Write(v) => v.sync_for_cpu(off, len),
        }
    }
}

/// One mapped page of a [`PageMappings`] in direction `D`, borrowed from it.
///
/// # Invariants
///
/// `page` is mapped for `dev` at `dma` in direction `D`, `PAGE_SIZE` bytes, for as long as `'a`.
#[cfg(xendma_odp)]
pub struct PageView<'a, D: Direction> {
    dev: &'a DmaDevice,
    page: &'a PageRef,
    dma: DmaAddr,
    _d: PhantomData<D>,
}

#[cfg(xendma_odp)]
impl<D: Direction> PageView<'_, D> {
    /// The mapped page.
    pub fn page(&self) -> &PageRef {
        self.page
    }

    /// Makes what the CPU wrote to `len` bytes at `offset` visible to the device
    /// (`dma_sync_single_range_for_device`); `EINVAL` outside the page.
    pub fn sync_for_device(&self, offset: usize, len: usize) -> Result {
        check_range(offset, len, PAGE_SIZE)?;
        // SAFETY: a part of a live mapping made with these parameters (type invariant).
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
        // SAFETY: a part of a live mapping made with these parameters (type invariant).
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
}

#[cfg(xendma_odp)]
impl<D: Direction> DmaRegion for PageView<'_, D> {
    fn dma_handle(&self) -> DmaAddr {
        self.dma
    }
    fn dma_len(&self) -> usize {
        PAGE_SIZE
    }
}
#[cfg(xendma_odp)]
impl<D: DeviceReads> DeviceReadable for PageView<'_, D> {}
#[cfg(xendma_odp)]
impl<D: DeviceWrites> DeviceWritable for PageView<'_, D> {}
