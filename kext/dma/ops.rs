// SPDX-License-Identifier: GPL-2.0

//! A `struct dma_map_ops` table backed by a Rust [`DmaOps`] implementation, installed on one
//! device at a time.
//!
//! [`Installed::install`] builds a table for one device, with the implementation's data next to it,
//! and points the device's `dma_ops` at it; the trampolines find the data again from the device
//! alone (`container_of` on `dev->dma_ops`), so the hot path needs no lookup and no lock.
//! [`Installation::uninstall`] restores the previous table. Both refuse while a driver is bound to
//! the device: the DMA API must not change under a driver's feet, so the caller unbinds first
//! and re-probes afterwards.
//!
//! The scatter-gather entries, `mmap` and `get_sgtable` are generic C code
//! (`kext/helpers/dma_ops.c`) over the implementation's single-buffer operations.

use crate::kext::bindings as ffi;
use crate::kext::compat::ARef;
#[cfg(xendma_kernel_7)]
use crate::kext::compat::CStrExt as _;
use crate::kext::dma::Attrs;
use crate::kext::page::{Gfp, Pages};
use crate::logic::dma::DataDirection;
use crate::logic::dma::DMA_MAPPING_ERROR;
use core::marker::PhantomPinned;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::device::Device;
use kernel::prelude::*;
use kernel::types::Opaque;

/// Memory that a DMA API caller lent for a streaming mapping: `len` bytes at physical address
/// `phys`, in the kernel's linear map, which the caller leaves alone (except through the sync
/// operations) until the mapping is unmapped.
///
/// Only the ops trampolines create one, from the `page`, `offset` and `size` of `map_page`; the
/// DMA API contract is what makes it valid.
///
/// # Invariants
///
/// `phys .. phys + len` is memory of the linear map lent by a DMA API caller for the duration of
/// a streaming mapping.
#[derive(Clone, Copy, Debug)]
pub struct CallerBuf {
    phys: u64,
    len: usize,
}

impl CallerBuf {
    /// Physical address of the first byte.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The operations of a `dma_map_ops` table, for the devices it is installed on.
///
/// Every method may be called concurrently, from any context the DMA API allows, including hard
/// interrupt context for the streaming operations: they must not sleep, and locks they take must
/// disable interrupts.
pub trait DmaOps: Send + Sync + Sized + 'static {
    /// Maps `buf` for `dev`: the bus address to give the device, `None` for a mapping error.
    fn map_page(
        &self,
        dev: &Device,
        buf: CallerBuf,
        dir: DataDirection,
        attrs: Attrs,
    ) -> Option<u64>;
    /// Undoes [`DmaOps::map_page`]; `dma` and `size` are what the caller mapped, unless the
    /// caller is buggy, which the implementation must survive.
    fn unmap_page(&self, dev: &Device, dma: u64, size: usize, dir: DataDirection, attrs: Attrs);
    /// Maps `size` bytes of a physical range that is not RAM (a peer device's MMIO, as
    /// `dma_map_resource` asks): nothing to bounce or sync. The bus address, or `None` if the
    /// device cannot reach it. Unmapping it needs nothing.
    fn map_mmio(&self, dev: &Device, phys: u64, size: usize) -> Option<u64>;
    /// Makes the device's writes to `size` bytes at `dma` visible to the CPU.
    fn sync_for_cpu(&self, dev: &Device, dma: u64, size: usize, dir: DataDirection);
    /// Makes the CPU's writes to `size` bytes at `dma` visible to the device.
    fn sync_for_device(&self, dev: &Device, dma: u64, size: usize, dir: DataDirection);
    /// Allocates coherent memory of `order` (the order of the caller's size), returning the
    /// pages and their bus address. `gfp` is the caller's allocation context.
    fn alloc(&self, dev: &Device, order: u32, gfp: Gfp, attrs: Attrs) -> Option<(Pages, u64)>;
    /// Frees what [`DmaOps::alloc`] returned.
    fn free(&self, dev: &Device, pages: Pages, dma: u64);
    /// Whether the device can use this table with DMA mask `mask`.
    fn dma_supported(&self, dev: &Device, mask: u64) -> bool;
    /// The largest streaming mapping the table can make for the device.
    fn max_mapping_size(&self, dev: &Device) -> usize;
    /// The smallest mask with which the device would never need a bounce buffer.
    fn required_mask(&self, dev: &Device) -> u64;
}

/// The C object of `dev`.
pub(crate) fn raw(dev: &Device) -> *mut ffi::device {
    // `Device` is a transparent wrapper of `struct device`.
    core::ptr::from_ref(dev).cast_mut().cast()
}

/// What a streaming mapping needs to know of a device.
pub struct DmaParams {
    /// The streaming DMA mask (0 if the device has none).
    pub mask: u64,
    /// The bus's limit (0: none).
    pub bus_limit: u64,
    /// `dma_get_min_align_mask`.
    pub min_align_mask: u64,
    /// `dma_get_seg_boundary`.
    pub seg_boundary: u64,
}

/// The device's streaming DMA parameters, read from the device itself (the map path): what
/// `dma_get_min_align_mask` and `dma_get_seg_boundary` (linux/dma-mapping.h) return, without a
/// call per field.
#[inline]
pub fn dma_params(dev: &Device) -> DmaParams {
    let d = raw(dev);
    // SAFETY: `dev` is a live device (a reference). Its DMA mask pointer, bus limit and DMA
    // parameters pointer are read without a lock, as the DMA API's own inline helpers read them on
    // every mapping; the pointers are either null or point to memory that lives as long as the
    // device (the driver's mask, the bus's parameters).
    let fields = unsafe { ((*d).dma_mask, (*d).bus_dma_limit, (*d).dma_parms) };
    let (mask_ptr, bus_limit, parms) = fields;
    let mask = if mask_ptr.is_null() {
        0
    } else {
        // SAFETY: a non-null `dma_mask` points to the device's mask (see above).
        unsafe { *mask_ptr }
    };
    let (min_align_mask, seg_boundary) = if parms.is_null() {
        (0, u64::MAX)
    } else {
        // SAFETY: a non-null `dma_parms` points to the device's parameters (see above).
        let (align, boundary) =
            unsafe { ((*parms).min_align_mask, (*parms).segment_boundary_mask) };
        let boundary = if boundary == 0 {
            u64::MAX
        } else {
            boundary as u64
        };
        (u64::from(align), boundary)
    };
    DmaParams {
        mask,
        bus_limit,
        min_align_mask,
        seg_boundary,
    }
}

/// The device's coherent DMA mask.
pub fn coherent_mask(dev: &Device) -> u64 {
    // SAFETY: `dev` is a valid device.
    unsafe { ffi::xendma_dma_get_coherent_mask(raw(dev)) }
}

/// The allocation order of `size` bytes in kernel pages (`get_order`).
fn order_of(size: usize) -> Option<u32> {
    let pages = size.checked_add(crate::kext::dma::PAGE_SIZE - 1)? >> kernel::page::PAGE_SHIFT;
    Some(pages.max(1).next_power_of_two().trailing_zeros())
}

/// A `dma_map_ops` table for one device, with the [`DmaOps`] data behind it.
///
/// # Invariants
///
/// - While the device's `dma_ops` points at `table`, this object is alive and pinned: only an
///   [`Installation`] owns it, and frees it only after the pointer was restored with no driver
///   bound ([`Installation::uninstall`]); otherwise it is never freed.
/// - `table`'s entries are the trampolines of `T`, or the generic C entries.
#[pin_data]
pub struct Installed<T: DmaOps> {
    #[pin]
    table: Opaque<ffi::dma_map_ops>,
    dev: ARef<Device>,
    prev: AtomicPtr<ffi::dma_map_ops>,
    data: T,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: the table is only read (by the DMA API); `T` is `Send + Sync`; the device reference is
// refcounted.
unsafe impl<T: DmaOps> Send for Installed<T> {}
// SAFETY: as above.
unsafe impl<T: DmaOps> Sync for Installed<T> {}

/// Runs `f` with the device lock held.
fn with_device_lock<R>(dev: &Device, f: impl FnOnce() -> R) -> R {
    // SAFETY: a valid device; the lock is released below.
    unsafe { ffi::xendma_device_lock(raw(dev)) };
    let r = f();
    // SAFETY: locked above.
    unsafe { ffi::xendma_device_unlock(raw(dev)) };
    r
}

impl<T: DmaOps> Installed<T> {
    const TABLE: ffi::dma_map_ops = ffi::dma_map_ops {
        alloc: Some(Self::alloc_tramp),
        free: Some(Self::free_tramp),
        alloc_pages_op: Some(Self::alloc_pages_tramp),
        free_pages: Some(Self::free_pages_tramp),
        mmap: Some(ffi::xendma_ops_mmap),
        get_sgtable: Some(ffi::xendma_ops_get_sgtable),
        #[cfg(not(xendma_map_phys))]
        map_page: Some(Self::map_page_tramp),
        #[cfg(not(xendma_map_phys))]
        unmap_page: Some(Self::unmap_tramp),
        #[cfg(xendma_map_phys)]
        map_phys: Some(Self::map_phys_tramp),
        #[cfg(xendma_map_phys)]
        unmap_phys: Some(Self::unmap_phys_tramp),
        map_sg: Some(ffi::xendma_ops_map_sg),
        unmap_sg: Some(ffi::xendma_ops_unmap_sg),
        // 7.x maps MMIO through `map_phys` with `DMA_ATTR_MMIO` instead.
        #[cfg(not(xendma_map_phys))]
        map_resource: Some(Self::map_resource_tramp),
        #[cfg(not(xendma_map_phys))]
        unmap_resource: None,
        sync_single_for_cpu: Some(Self::sync_tramp::<true>),
        sync_single_for_device: Some(Self::sync_tramp::<false>),
        sync_sg_for_cpu: Some(ffi::xendma_ops_sync_sg_for_cpu),
        sync_sg_for_device: Some(ffi::xendma_ops_sync_sg_for_device),
        cache_sync: None,
        dma_supported: Some(Self::dma_supported_tramp),
        get_required_mask: Some(Self::required_mask_tramp),
        max_mapping_size: Some(Self::max_mapping_size_tramp),
        opt_mapping_size: None,
        get_merge_boundary: None,
    };

    /// Builds a table for `dev` and installs it. `EBUSY` if a driver is bound to the device,
    /// `EOPNOTSUPP` if the DMA API would ignore the table (see [`uses_iommu_dma`]).
    pub fn install(dev: &Device, data: T) -> Result<Installation<T>> {
        if uses_iommu_dma(dev) {
            return Err(eopnotsupp());
        }
        let this = KBox::pin_init(
            pin_init!(Self {
                table: Opaque::new(Self::TABLE),
                dev: dev.into(),
                prev: AtomicPtr::new(core::ptr::null_mut()),
                data,
                _pin: PhantomPinned,
            }),
            GFP_KERNEL,
        )?;
        with_device_lock(dev, || {
            // SAFETY: a valid device, locked: no probe can run meanwhile.
            if unsafe { ffi::xendma_dev_has_driver(raw(dev)) } {
                return Err(EBUSY);
            }
            // SAFETY: as above.
            let prev = unsafe { ffi::xendma_dev_dma_ops(raw(dev)) };
            this.prev.store(prev.cast_mut(), Ordering::Relaxed);
            // SAFETY: as above; INVARIANT: `this` is pinned and outlives the pointer (drop
            // restores the previous table first).
            unsafe { ffi::xendma_dev_set_dma_ops(raw(dev), this.table.get()) };
            Ok(())
        })?;
        Ok(Installation(ManuallyDrop::new(this)))
    }

    /// The implementation's data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The device the table is for.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// Whether the device uses this table now.
    fn is_current(&self) -> bool {
        // SAFETY: a valid device.
        let cur = unsafe { ffi::xendma_dev_dma_ops(raw(&self.dev)) };
        core::ptr::eq(cur, self.table.get())
    }

    /// Under the device lock: unless a driver is bound, points the device back at the previous
    /// table. False if a driver is bound (nothing changed).
    fn restore_if_unbound(&self) -> bool {
        with_device_lock(&self.dev, || {
            // SAFETY: a valid device, locked.
            if unsafe { ffi::xendma_dev_has_driver(raw(&self.dev)) } {
                return false;
            }
            self.restore();
            true
        })
    }

    /// Points the device back at the previous table if it uses ours (device lock held or no
    /// user of the device left).
    fn restore(&self) {
        if self.is_current() {
            // SAFETY: a valid device; the previous pointer was read from it.
            unsafe {
                ffi::xendma_dev_set_dma_ops(raw(&self.dev), self.prev.load(Ordering::Relaxed))
            };
        }
    }

    /// The data behind the table `dev` uses.
    ///
    /// # Safety
    ///
    /// `dev` must be a valid device whose `dma_ops` is the table of an `Installed<T>` (true in
    /// the trampolines, which the DMA API reaches only through that table).
    unsafe fn of<'a>(dev: *mut ffi::device) -> (&'a Device, &'a T) {
        // SAFETY: the caller guarantees a valid device; its `dma_ops` is read as the C helper
        // `xendma_dev_dma_ops` reads it, without the call (this is every operation's first step).
        let table = unsafe { (*dev).dma_ops };
        // SAFETY: `table` is the `table` field of a live, pinned `Installed<T>` (type
        // invariant and the caller's guarantee); `Opaque` has the layout of what it wraps.
        let this = unsafe {
            &*kernel::container_of!(table.cast::<Opaque<ffi::dma_map_ops>>(), Self, table)
        };
        // SAFETY: the caller guarantees a valid device, alive during the call.
        (unsafe { crate::kext::compat::device(dev) }, &this.data)
    }

    /// `map_page` (6.x).
    ///
    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    #[cfg(not(xendma_map_phys))]
    unsafe extern "C" fn map_page_tramp(
        dev: *mut ffi::device,
        page: *mut ffi::page,
        offset: kernel::ffi::c_ulong,
        size: usize,
        dir: ffi::dma_data_direction,
        attrs: kernel::ffi::c_ulong,
    ) -> ffi::dma_addr_t {
        // SAFETY: the DMA API passes a valid page, one of the memmap.
        let Some(phys) =
            (unsafe { crate::kext::page::page_to_phys(page) }).checked_add(offset as u64)
        else {
            return DMA_MAPPING_ERROR;
        };
        // SAFETY: called through our table (see `of`), with the rest of `map_page`'s arguments.
        unsafe { Self::map(dev, phys, size, dir, attrs) }
    }

    /// `map_phys` (7.x), which also carries MMIO mappings (`DMA_ATTR_MMIO`).
    ///
    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    #[cfg(xendma_map_phys)]
    unsafe extern "C" fn map_phys_tramp(
        dev: *mut ffi::device,
        phys: ffi::phys_addr_t,
        size: usize,
        dir: ffi::dma_data_direction,
        attrs: kernel::ffi::c_ulong,
    ) -> ffi::dma_addr_t {
        if attrs as u64 & Attrs::MMIO.bits() != 0 {
            // SAFETY: called through our table (see `of`).
            let (dev, data) = unsafe { Self::of(dev) };
            return data.map_mmio(dev, phys, size).unwrap_or(DMA_MAPPING_ERROR);
        }
        // SAFETY: called through our table (see `of`), with `map_phys`'s arguments.
        unsafe { Self::map(dev, phys, size, dir, attrs) }
    }

    /// `map_resource` (6.x).
    ///
    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    #[cfg(not(xendma_map_phys))]
    unsafe extern "C" fn map_resource_tramp(
        dev: *mut ffi::device,
        phys: ffi::phys_addr_t,
        size: usize,
        _dir: ffi::dma_data_direction,
        _attrs: kernel::ffi::c_ulong,
    ) -> ffi::dma_addr_t {
        // SAFETY: called through our table (see `of`).
        let (dev, data) = unsafe { Self::of(dev) };
        data.map_mmio(dev, phys, size).unwrap_or(DMA_MAPPING_ERROR)
    }

    /// The common part of `map_page` and `map_phys` for RAM.
    ///
    /// # Safety
    ///
    /// As for the trampolines: `dev` is a device with our table, and the caller lends `size`
    /// bytes of RAM at `phys` until the unmap.
    unsafe fn map(
        dev: *mut ffi::device,
        phys: u64,
        size: usize,
        dir: ffi::dma_data_direction,
        attrs: kernel::ffi::c_ulong,
    ) -> ffi::dma_addr_t {
        // SAFETY: called through our table (the caller's guarantee).
        let (dev, data) = unsafe { Self::of(dev) };
        let Some(dir) = DataDirection::from_raw(dir) else {
            return DMA_MAPPING_ERROR;
        };
        // INVARIANT: the mapping contract: the caller lends `size` bytes at `phys` until the
        // unmap.
        let buf = CallerBuf { phys, len: size };
        data.map_page(dev, buf, dir, Attrs::from_bits(attrs as u64))
            .unwrap_or(DMA_MAPPING_ERROR)
    }

    /// `unmap_page` (6.x), and `unmap_phys` (7.x) for RAM.
    ///
    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    unsafe extern "C" fn unmap_tramp(
        dev: *mut ffi::device,
        dma: ffi::dma_addr_t,
        size: usize,
        dir: ffi::dma_data_direction,
        attrs: kernel::ffi::c_ulong,
    ) {
        // SAFETY: called through our table (see `of`).
        let (dev, data) = unsafe { Self::of(dev) };
        let dir = DataDirection::from_raw(dir).unwrap_or(DataDirection::Bidirectional);
        data.unmap_page(dev, dma, size, dir, Attrs::from_bits(attrs as u64));
    }

    /// `unmap_phys` (7.x); an MMIO mapping has nothing to undo.
    ///
    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    #[cfg(xendma_map_phys)]
    unsafe extern "C" fn unmap_phys_tramp(
        dev: *mut ffi::device,
        dma: ffi::dma_addr_t,
        size: usize,
        dir: ffi::dma_data_direction,
        attrs: kernel::ffi::c_ulong,
    ) {
        if attrs as u64 & Attrs::MMIO.bits() != 0 {
            return;
        }
        // SAFETY: called through our table (see `of`), with `unmap_phys`'s arguments.
        unsafe { Self::unmap_tramp(dev, dma, size, dir, attrs) }
    }

    /// `sync_single_for_cpu` (`FOR_CPU`) and `sync_single_for_device`.
    ///
    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    unsafe extern "C" fn sync_tramp<const FOR_CPU: bool>(
        dev: *mut ffi::device,
        dma: ffi::dma_addr_t,
        size: usize,
        dir: ffi::dma_data_direction,
    ) {
        // SAFETY: called through our table (see `of`).
        let (dev, data) = unsafe { Self::of(dev) };
        match DataDirection::from_raw(dir) {
            Some(dir) if FOR_CPU => data.sync_for_cpu(dev, dma, size, dir),
            Some(dir) => data.sync_for_device(dev, dma, size, dir),
            None => {}
        }
    }

    /// Allocates for `alloc` and `alloc_pages_op`: the first page and the bus address.
    ///
    /// # Safety
    ///
    /// As for [`Self::of`].
    unsafe fn alloc_common(
        dev: *mut ffi::device,
        size: usize,
        gfp: ffi::gfp_t,
        attrs: u64,
    ) -> Option<(NonNull<ffi::page>, u64)> {
        // SAFETY: the caller's guarantee.
        let (dev, data) = unsafe { Self::of(dev) };
        let order = order_of(size)?;
        let (pages, dma) = data.alloc(dev, order, Gfp::from_raw(gfp), Attrs::from_bits(attrs))?;
        if pages.order() != order {
            // Not what the free path will expect: refuse rather than free the wrong size later.
            return None;
        }
        Some((pages.into_raw(), dma))
    }

    /// Frees for `free` and `free_pages`.
    ///
    /// # Safety
    ///
    /// As for [`Self::of`], and `page`/`size` must be what `alloc_common` handed out.
    unsafe fn free_common(dev: *mut ffi::device, size: usize, page: *mut ffi::page, dma: u64) {
        // SAFETY: the caller's guarantee.
        let (dev, data) = unsafe { Self::of(dev) };
        let (Some(order), Some(page)) = (order_of(size), NonNull::new(page)) else {
            return;
        };
        // SAFETY: the DMA API frees what our `alloc_common` gave out, with the same size, so
        // the order is the same and nothing else owns the pages.
        let pages = unsafe { Pages::from_raw(page, order) };
        data.free(dev, pages, dma);
    }

    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    unsafe extern "C" fn alloc_tramp(
        dev: *mut ffi::device,
        size: usize,
        dma_handle: *mut ffi::dma_addr_t,
        gfp: ffi::gfp_t,
        attrs: kernel::ffi::c_ulong,
    ) -> *mut core::ffi::c_void {
        // SAFETY: called through our table.
        match unsafe { Self::alloc_common(dev, size, gfp, attrs as u64) } {
            Some((page, dma)) => {
                // SAFETY: the DMA API passes a valid handle pointer.
                unsafe { *dma_handle = dma };
                // SAFETY: pages we allocated, in the linear map.
                unsafe { ffi::xendma_page_address(page.as_ptr()) }
            }
            None => core::ptr::null_mut(),
        }
    }

    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    unsafe extern "C" fn free_tramp(
        dev: *mut ffi::device,
        size: usize,
        vaddr: *mut core::ffi::c_void,
        dma: ffi::dma_addr_t,
        _attrs: kernel::ffi::c_ulong,
    ) {
        if vaddr.is_null() {
            return;
        }
        // SAFETY: `vaddr` is what `alloc_tramp` returned: linear-map memory.
        let page = unsafe { ffi::xendma_virt_to_page(vaddr) };
        // SAFETY: called through our table, with what `alloc_tramp` handed out.
        unsafe { Self::free_common(dev, size, page, dma) };
    }

    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    unsafe extern "C" fn alloc_pages_tramp(
        dev: *mut ffi::device,
        size: usize,
        dma_handle: *mut ffi::dma_addr_t,
        _dir: ffi::dma_data_direction,
        gfp: ffi::gfp_t,
    ) -> *mut ffi::page {
        // SAFETY: called through our table.
        match unsafe { Self::alloc_common(dev, size, gfp, 0) } {
            Some((page, dma)) => {
                // SAFETY: the DMA API passes a valid handle pointer.
                unsafe { *dma_handle = dma };
                page.as_ptr()
            }
            None => core::ptr::null_mut(),
        }
    }

    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    unsafe extern "C" fn free_pages_tramp(
        dev: *mut ffi::device,
        size: usize,
        page: *mut ffi::page,
        dma: ffi::dma_addr_t,
        _dir: ffi::dma_data_direction,
    ) {
        // SAFETY: called through our table, with what `alloc_pages_tramp` handed out.
        unsafe { Self::free_common(dev, size, page, dma) };
    }

    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    unsafe extern "C" fn dma_supported_tramp(
        dev: *mut ffi::device,
        mask: u64,
    ) -> kernel::ffi::c_int {
        // SAFETY: called through our table.
        let (dev, data) = unsafe { Self::of(dev) };
        data.dma_supported(dev, mask).into()
    }

    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    unsafe extern "C" fn required_mask_tramp(dev: *mut ffi::device) -> u64 {
        // SAFETY: called through our table.
        let (dev, data) = unsafe { Self::of(dev) };
        data.required_mask(dev)
    }

    /// # Safety
    ///
    /// Called by the DMA API through the table of an `Installed<T>` (see [`Self::of`]), with
    /// the arguments its contract requires.
    unsafe extern "C" fn max_mapping_size_tramp(dev: *mut ffi::device) -> usize {
        // SAFETY: called through our table.
        let (dev, data) = unsafe { Self::of(dev) };
        data.max_mapping_size(dev)
    }
}

/// The owner of an [`Installed`] table: uninstalls it when dropped.
///
/// A table is freed only once the device is back on its previous table with no driver bound,
/// when nothing may call the DMA API on the device: a device without a driver has no DMA user,
/// and the driver's `remove` has returned. If a driver is bound when the installation is
/// dropped, the driver may be running one of the table's operations at this very moment, so the
/// table is left in place and never freed (its data, and any module reference in it, stay too).
///
/// # Invariants
///
/// The `ManuallyDrop` holds the installed table until `uninstall` or `drop` takes it, which they
/// do only after the device was pointed back at its previous table with no driver bound.
pub struct Installation<T: DmaOps>(ManuallyDrop<Pin<KBox<Installed<T>>>>);

impl<T: DmaOps> Installation<T> {
    /// Restores the device's previous table and frees this one. `EBUSY` (and the installation
    /// back) if a driver is bound to the device.
    pub fn uninstall(mut self) -> core::result::Result<(), (Self, Error)> {
        let busy = !self.restore_if_unbound();
        if busy {
            return Err((self, EBUSY));
        }
        // SAFETY: taken once; `self` is forgotten right after, so its `drop` does not see it.
        let table = unsafe { ManuallyDrop::take(&mut self.0) };
        core::mem::forget(self);
        // INVARIANT: the device is back on its previous table and has no driver to call ours.
        drop(table);
        Ok(())
    }
}

impl<T: DmaOps> core::ops::Deref for Installation<T> {
    type Target = Installed<T>;

    fn deref(&self) -> &Installed<T> {
        &self.0
    }
}

impl<T: DmaOps> Drop for Installation<T> {
    fn drop(&mut self) {
        let busy = !self.restore_if_unbound();
        if busy {
            pr_err!(
                "{}: dma_map_ops dropped with a driver bound; the table stays in place\n",
                device_name(&self.dev)
            );
            // The table stays allocated and pinned forever (type invariant of `Installed`).
            return;
        }
        // SAFETY: taken once, in `drop`; the device is back on its previous table with no driver
        // to call ours (checked above, under the device lock).
        drop(unsafe { ManuallyDrop::take(&mut self.0) });
    }
}

/// A PCI device found by its name (`0000:00:04.0`), referenced.
pub fn pci_device(name: &CStr) -> Option<ARef<Device>> {
    // SAFETY: a NUL-terminated name.
    let dev = NonNull::new(unsafe { ffi::xendma_pci_find(name.as_char_ptr()) })?;
    // SAFETY: `bus_find_device` returned the device with a reference that we take over.
    Some(unsafe { ARef::from_raw(dev.cast()) })
}

/// `EOPNOTSUPP`, which the `kernel` crate of 6.12 does not name.
pub fn eopnotsupp() -> Error {
    Error::from_errno(-(ffi::EOPNOTSUPP as i32))
}

/// Whether the DMA API ignores `dev`'s `dma_ops`: the device translates through an IOMMU with
/// the kernel's iommu-dma path (an IOMMU domain of type DMA), which the DMA API checks first.
pub fn uses_iommu_dma(dev: &Device) -> bool {
    // SAFETY: a valid device.
    unsafe { ffi::xendma_dev_uses_iommu_dma(raw(dev)) }
}

/// Whether a driver is bound to `dev` (a snapshot).
pub fn has_driver(dev: &Device) -> bool {
    // SAFETY: a valid device.
    unsafe { ffi::xendma_dev_has_driver(raw(dev)) }
}

/// The device's name (`0000:00:04.0` for a PCI device; `?` in the impossible case of a name
/// that is not UTF-8).
pub fn device_name(dev: &Device) -> &str {
    // SAFETY: a valid device; its name lives as long as the device.
    let name = unsafe { CStr::from_char_ptr(ffi::xendma_dev_name(raw(dev))) };
    name.to_str().unwrap_or("?")
}

/// Unbinds the driver of `dev`, if any (waits for its `remove`).
pub fn release_driver(dev: &Device) {
    // SAFETY: a valid device, not locked by us.
    unsafe { ffi::xendma_device_release_driver(raw(dev)) };
}

/// Lets the bus find a driver for `dev` again: `Ok(true)` if one was bound.
pub fn reprobe(dev: &Device) -> Result<bool> {
    // SAFETY: a valid device, not locked by us.
    let r = unsafe { ffi::xendma_device_attach(raw(dev)) };
    kernel::error::to_result(r)?;
    Ok(r > 0)
}
