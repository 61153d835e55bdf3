// SPDX-License-Identifier: GPL-2.0

//! A safe Rust layer over the kernel's DMA API, shared by the project's modules.
//!
//! Linux 6.12's `kernel` crate has no DMA support. This layer covers what a driver needs, with
//! the ownership rules of `Documentation/core-api/dma-api-howto.rst` expressed in types:
//!
//! - [`DmaDevice`]: a device's DMA view: streaming and coherent masks, what the platform
//!   supports, the required mask, segment and mapping size limits.
//! - [`CoherentAllocation`]: a typed `dma_alloc_attrs` buffer, freed on drop, mappable to user
//!   space.
//! - [`DmaPool`] and [`PoolBlock`]: small coherent blocks with alignment and boundary guarantees;
//!   the pool lives as long as its last block (reference counted).
//! - [`Mapping`]: a streaming mapping that owns its buffer while the device does, hands it to the
//!   CPU with [`Mapping::sync_for_cpu`] and back with [`CpuOwned::sync_for_device`], and returns
//!   it on [`Mapping::unmap`]. The direction is a type parameter, so that the CPU cannot write a
//!   buffer the device only writes, and a device can only be pointed at memory it may access
//!   ([`DeviceReadable`], [`DeviceWritable`]).
//! - [`SgTable`] and [`SgMapping`]: scatter-gather tables built from pages, mapped and iterated
//!   by DMA segment.
//! - [`PageMappings`]: streaming mappings of single pages that someone else owns, for one device.
//! - [`DmaPages`]: non-coherent pages the device can reach (`dma_alloc_pages`), synced by hand;
//!   [`BufferPages`]: the pages behind a coherent buffer (`dma_get_sgtable_attrs`).
//! - [`ops`] (xen_swiotlb_rs): a `dma_map_ops` table built from a Rust trait.
//!
//! One file per concept: `device.rs`, `coherent.rs`, `pool.rs`, `streaming.rs`, `sg.rs`,
//! `pages.rs`, `ops.rs`. Pages themselves are [`crate::kext::page`]'s.
//!
//! All errors are the kernel's: `EIO` for masks the platform refuses, `ENOMEM` for allocation
//! and mapping failures (`dma_mapping_error`), `EINVAL` for requests that are malformed before
//! they reach the kernel (zero lengths, sizes that overflow, ranges outside a buffer, alignments
//! that are not powers of two).
//!
//! Every object that holds DMA memory holds a reference on its device; memory and mappings must
//! still be released before the device's driver is unbound, as the C API requires.

use crate::kext::bindings as ffi;
use core::ops::BitOr;
#[cfg(xendma_testdev)]
use kernel::alloc::{flags, Flags};
use kernel::error::{code::EINVAL, Result};

/// A bus address as the device sees it (`dma_addr_t`).
pub type DmaAddr = u64;

pub use crate::kext::page::{MAX_ALLOC, MAX_ORDER, PAGE_SIZE};

#[cfg(xendma_testdev)]
mod coherent;
mod device;
#[cfg(xendma_swiotlb)]
pub mod ops;
#[cfg(xendma_testdev)]
mod pages;
#[cfg(xendma_testdev)]
mod pool;
#[cfg(xendma_testdev)]
mod sg;
mod streaming;

#[cfg(xendma_testdev)]
pub use coherent::CoherentAllocation;
pub use device::DmaDevice;
#[cfg(xendma_testdev)]
pub use pages::{BufferPages, DmaPages};
#[cfg(xendma_testdev)]
pub use pool::{DmaPool, PoolBlock};
#[cfg(xendma_testdev)]
pub use sg::{DmaSegment, Segments, SgCpuOwned, SgMapping, SgTable};
pub use streaming::{CpuOwned, LinearBuf, MapFailed, Mapping};
#[cfg(xendma_odp)]
pub use streaming::{MappedPage, PageMappings, PageView};

#[cfg(xendma_testdev)]
pub(crate) fn raw_gfp(flags: Flags) -> ffi::gfp_t {
    let base = if flags.contains(flags::GFP_KERNEL) {
        ffi::GFP_KERNEL
    } else if flags.contains(flags::GFP_ATOMIC) {
        ffi::GFP_ATOMIC
    } else {
        ffi::GFP_NOWAIT
    };
    if flags.contains(flags::__GFP_NOWARN) {
        base | ffi::__GFP_NOWARN
    } else {
        base
    }
}

/// DMA attributes (`DMA_ATTR_*`), combined with `|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attrs(u64);

impl Attrs {
    /// No attributes.
    pub const NONE: Self = Self(0);
    /// Writes may be reordered with other DMA.
    pub const WEAK_ORDERING: Self = Self(ffi::DMA_ATTR_WEAK_ORDERING as u64);
    /// Write-combined coherent memory.
    pub const WRITE_COMBINE: Self = Self(ffi::DMA_ATTR_WRITE_COMBINE as u64);
    /// No kernel mapping of coherent memory (refused by [`CoherentAllocation`], which is read
    /// and written through the kernel mapping).
    pub const NO_KERNEL_MAPPING: Self = Self(ffi::DMA_ATTR_NO_KERNEL_MAPPING as u64);
    /// Skip the CPU cache synchronisation (and bounce copies) on map and unmap.
    pub const SKIP_CPU_SYNC: Self = Self(ffi::DMA_ATTR_SKIP_CPU_SYNC as u64);
    /// Physically contiguous coherent memory.
    pub const FORCE_CONTIGUOUS: Self = Self(ffi::DMA_ATTR_FORCE_CONTIGUOUS as u64);
    /// Coherent memory may be built from single pages.
    pub const ALLOC_SINGLE_PAGES: Self = Self(ffi::DMA_ATTR_ALLOC_SINGLE_PAGES as u64);
    /// No warning when the mapping fails (the caller handles it).
    pub const NO_WARN: Self = Self(ffi::DMA_ATTR_NO_WARN as u64);
    /// The range is MMIO, not RAM (7.x, where `map_phys` carries what `map_resource` did).
    #[cfg(xendma_map_phys)]
    pub const MMIO: Self = Self(ffi::DMA_ATTR_MMIO as u64);
    /// Privileged-only device access.
    pub const PRIVILEGED: Self = Self(ffi::DMA_ATTR_PRIVILEGED as u64);

    /// Attributes from the raw `unsigned long` of the C API (unknown bits are kept).
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw `unsigned long` the C API takes.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether all of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Attrs {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

mod private {
    pub trait Sealed {}
}

/// The direction of a streaming mapping, a type: [`ToDevice`], [`FromDevice`] or
/// [`Bidirectional`] (`DMA_NONE` is not a direction one can map with).
pub trait Direction: private::Sealed + Send + Sync + 'static {
    /// The C value.
    const RAW: ffi::dma_data_direction;
}

/// The device reads the memory (`DMA_TO_DEVICE`).
pub struct ToDevice;
/// The device writes the memory (`DMA_FROM_DEVICE`).
pub struct FromDevice;
/// The device reads and writes the memory (`DMA_BIDIRECTIONAL`).
pub struct Bidirectional;

impl private::Sealed for ToDevice {}
impl private::Sealed for FromDevice {}
impl private::Sealed for Bidirectional {}

impl Direction for ToDevice {
    const RAW: ffi::dma_data_direction = ffi::dma_data_direction_DMA_TO_DEVICE;
}
impl Direction for FromDevice {
    const RAW: ffi::dma_data_direction = ffi::dma_data_direction_DMA_FROM_DEVICE;
}
impl Direction for Bidirectional {
    const RAW: ffi::dma_data_direction = ffi::dma_data_direction_DMA_BIDIRECTIONAL;
}

/// Directions in which the device reads memory; the CPU may write such a buffer while it owns it
/// and the data reaches the device after `sync_for_device`.
pub trait DeviceReads: Direction {}
/// Directions in which the device writes memory.
pub trait DeviceWrites: Direction {}
impl DeviceReads for ToDevice {}
impl DeviceReads for Bidirectional {}
impl DeviceWrites for FromDevice {}
impl DeviceWrites for Bidirectional {}

/// Memory a device can be pointed at: a bus address and a length.
pub trait DmaRegion {
    /// The bus address of the first byte.
    fn dma_handle(&self) -> DmaAddr;
    /// The length in bytes.
    fn dma_len(&self) -> usize;

    /// The bus address of `len` bytes at `offset`, if that range is non-empty and inside.
    fn dma_range(&self, offset: usize, len: usize) -> Result<DmaAddr> {
        match offset.checked_add(len) {
            Some(end) if len > 0 && end <= self.dma_len() => Ok(self.dma_handle() + offset as u64),
            _ => Err(EINVAL),
        }
    }
}

/// Memory the device may read (it was mapped for it, or it is coherent).
pub trait DeviceReadable: DmaRegion {}
/// Memory the device may write (see [`DeviceReadable`]).
pub trait DeviceWritable: DmaRegion {}

/// Copies `src` to `dst` with volatile byte stores: memory a device may access at any time.
///
/// # Safety
///
/// `dst` must be valid for `src.len()` byte writes.
#[cfg(xendma_testdev)]
pub(crate) unsafe fn copy_to_dma(dst: *mut u8, src: &[u8]) {
    for (i, b) in src.iter().enumerate() {
        // SAFETY: in bounds by the caller's guarantee.
        unsafe { dst.add(i).write_volatile(*b) };
    }
}

/// Copies from `src` into `dst` with volatile byte loads.
///
/// # Safety
///
/// `src` must be valid for `dst.len()` byte reads.
pub(crate) unsafe fn copy_from_dma(dst: &mut [u8], src: *const u8) {
    for (i, b) in dst.iter_mut().enumerate() {
        // SAFETY: in bounds by the caller's guarantee.
        *b = unsafe { src.add(i).read_volatile() };
    }
}

pub(crate) fn check_range(offset: usize, len: usize, size: usize) -> Result {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(EINVAL),
    }
}
