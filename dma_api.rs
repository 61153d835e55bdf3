// SPDX-License-Identifier: GPL-2.0

//! A safe Rust layer over the kernel's DMA API, shared by the project's modules.
//!
//! Linux 6.12's `kernel` crate has no DMA support. This file grows into the full layer
//! (coherent buffers, pools, streaming and scatter-gather mappings); for now it carries the
//! device's DMA masks, the first thing every driver sets.

use crate::ffi;
use kernel::{
    device::Device,
    error::{to_result, Result},
};

/// The mask of the low `bits` address bits (the kernel's `DMA_BIT_MASK`).
pub const fn bit_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The DMA view of a device.
pub struct DmaDevice<'a> {
    dev: &'a Device,
}

impl<'a> DmaDevice<'a> {
    /// The DMA view of `dev`.
    pub fn new(dev: &'a Device) -> Self {
        Self { dev }
    }

    fn as_raw(&self) -> *mut ffi::device {
        // `Device` is a transparent wrapper of `struct device`.
        (self.dev as *const Device).cast_mut().cast()
    }

    /// Sets the streaming DMA mask. Fails with `EIO`, leaving the mask unchanged, when the device
    /// has no mask storage or the platform cannot serve addresses that low.
    pub fn set_mask(&self, mask: u64) -> Result {
        // SAFETY: `as_raw` is a valid, referenced `struct device` for the lifetime of `self`.
        to_result(unsafe { ffi::dma_set_mask(self.as_raw(), mask) })
    }

    /// Sets the coherent DMA mask; fails with `EIO` when the mask is not supported.
    pub fn set_coherent_mask(&self, mask: u64) -> Result {
        // SAFETY: as in `set_mask`.
        to_result(unsafe { ffi::dma_set_coherent_mask(self.as_raw(), mask) })
    }

    /// Sets both masks, streaming first, like `dma_set_mask_and_coherent`.
    pub fn set_mask_and_coherent(&self, mask: u64) -> Result {
        self.set_mask(mask)?;
        self.set_coherent_mask(mask)
    }

    /// The streaming DMA mask in force (32 bits when the device has none).
    pub fn mask(&self) -> u64 {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::xendma_dma_get_mask(self.as_raw()) }
    }
}
