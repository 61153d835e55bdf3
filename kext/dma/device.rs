// SPDX-License-Identifier: GPL-2.0

//! A device's DMA view: masks, limits, what the platform supports.

use crate::kext::bindings as ffi;
use crate::kext::compat::ARef;
use kernel::{
    device::Device,
    error::{code::EINVAL, to_result, Result},
};

/// The DMA view of a device; holds a reference on it.
#[derive(Clone)]
pub struct DmaDevice {
    dev: ARef<Device>,
}

impl DmaDevice {
    /// The DMA view of `dev`.
    pub fn new(dev: &Device) -> Self {
        Self { dev: dev.into() }
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    pub(crate) fn as_raw(&self) -> *mut ffi::device {
        // `Device` is a transparent wrapper of `struct device`.
        core::ptr::from_ref::<Device>(&self.dev).cast_mut().cast()
    }

    /// Sets the streaming DMA mask; fails with `EIO` when the platform cannot honour it.
    ///
    /// # Safety
    ///
    /// No mapping or allocation for the device may be in progress, or start, until this
    /// returns: the DMA API reads the mask while it maps (mainline's `dma_set_mask` is unsafe
    /// for the same reason). A driver's probe, before it starts DMA, is such a place
    /// ([`PciDevice::dma_set_mask_and_coherent`](crate::kext::pci::PciDevice)).
    pub unsafe fn set_mask(&self, mask: u64) -> Result {
        // SAFETY: `as_raw` is a valid, referenced `struct device` for the lifetime of `self`; no
        // mapping races with the write (the caller's guarantee).
        to_result(unsafe { ffi::dma_set_mask(self.as_raw(), mask) })
    }

    /// Sets the coherent DMA mask; fails with `EIO` when the mask is not supported.
    ///
    /// # Safety
    ///
    /// As for [`DmaDevice::set_mask`], for allocations of coherent memory.
    pub unsafe fn set_coherent_mask(&self, mask: u64) -> Result {
        // SAFETY: as in `set_mask`.
        to_result(unsafe { ffi::dma_set_coherent_mask(self.as_raw(), mask) })
    }

    /// Sets both masks, streaming first, like `dma_set_mask_and_coherent`.
    ///
    /// # Safety
    ///
    /// As for [`DmaDevice::set_mask`].
    pub unsafe fn set_mask_and_coherent(&self, mask: u64) -> Result {
        // SAFETY: the caller's guarantee covers both masks.
        unsafe {
            self.set_mask(mask)?;
            self.set_coherent_mask(mask)
        }
    }

    /// The streaming DMA mask in force (32 bits when the device has none).
    pub fn mask(&self) -> u64 {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::xendma_dma_get_mask(self.as_raw()) }
    }

    /// The coherent DMA mask in force.
    pub fn coherent_mask(&self) -> u64 {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::xendma_dma_get_coherent_mask(self.as_raw()) }
    }

    /// Whether the platform (the device's DMA ops, or dma-direct) can serve `mask`: what
    /// `dma_supported()` answers, and so whether [`DmaDevice::set_mask`] would accept it.
    pub fn supports(&self, mask: u64) -> bool {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::xendma_dma_supported(self.as_raw(), mask) }
    }

    /// The smallest mask that reaches all memory (`dma_get_required_mask`).
    pub fn required_mask(&self) -> u64 {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::dma_get_required_mask(self.as_raw()) }
    }

    /// The longest scatter-gather segment the device takes (64 KiB unless set).
    pub fn max_seg_size(&self) -> u32 {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::xendma_dma_get_max_seg_size(self.as_raw()) }
    }

    /// Sets the longest segment; `EIO` if the bus gave the device no DMA parameters, `EINVAL`
    /// for zero.
    ///
    /// # Safety
    ///
    /// As for [`DmaDevice::set_mask`], for scatter-gather mappings (which read the limit).
    pub unsafe fn set_max_seg_size(&self, size: u32) -> Result {
        if size == 0 {
            return Err(EINVAL);
        }
        // SAFETY: a valid device; no mapping races with the write (the caller's guarantee).
        to_result(unsafe { ffi::xendma_dma_set_max_seg_size(self.as_raw(), size) })
    }

    /// The largest streaming mapping the device's DMA path can make (`dma_max_mapping_size`:
    /// bounded by the swiotlb segment when bouncing is possible).
    pub fn max_mapping_size(&self) -> usize {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::dma_max_mapping_size(self.as_raw()) }
    }

    /// The mapping size beyond which mapping becomes expensive (`dma_opt_mapping_size`).
    pub fn opt_mapping_size(&self) -> usize {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::dma_opt_mapping_size(self.as_raw()) }
    }

    /// Whether coherent memory of this device can be mapped to user space.
    pub fn can_mmap(&self) -> bool {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::dma_can_mmap(self.as_raw()) }
    }
}
