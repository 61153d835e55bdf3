// SPDX-License-Identifier: GPL-2.0

//! The modules' trace events (`kext/helpers/trace_swiotlb.h`, system `xen_swiotlb_rs`;
//! `kext/helpers/trace_odp.h`, system `odp_umem`), emitted through the C wrappers of
//! `kext/helpers/trace_*.c`. Each call costs a function call and, while the event is disabled,
//! the tracepoint's static branch (a no-op); the per-mapping `bounced` event is not even called
//! while disabled (its static key count is read first).

use crate::kext::bindings as ffi;

#[cfg(xendma_swiotlb)]
pub use swiotlb::*;

#[cfg(xendma_swiotlb)]
mod swiotlb {
    use super::ffi;
    use crate::logic::bounce_policy::BounceReason;
    use crate::logic::dma::DataDirection;
    use kernel::device::Device;

    /// Why a mapping failed (the `reason` of the `map_failed` event; the values are the event's).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum MapFailure {
        /// No free slots in the pool (and it could not grow).
        PoolExhausted = 1,
        /// Larger than the device's `max_mapping_size` (one segment).
        TooLarge = 2,
        /// The pool, or the MMIO range, lies beyond the device's DMA mask.
        OutOfReach = 3,
        /// Anything else (a size of 0, a bad alignment request).
        Invalid = 4,
    }

    /// `xen_swiotlb_rs:bounced`: `size` bytes at guest-physical `phys` bounced to bus address
    /// `bounce` for `dev`. Costs one read while the event is disabled.
    #[inline]
    pub fn bounced(
        dev: &Device,
        phys: u64,
        bounce: u64,
        size: usize,
        dir: DataDirection,
        reason: BounceReason,
    ) {
        // SAFETY: the key pointer is a constant of the module's C part, to the event's static key
        // count (or to a zero when the kernel has no tracepoints), which lives as long as the
        // module; it is read as `static_key_enabled` reads it.
        let on = unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!(
                (*ffi::xendma_trace_bounced_key).counter
            ))
        } > 0;
        if !on {
            return;
        }
        // SAFETY: `dev` is a live device (a reference); the event copies its name and the values.
        unsafe {
            ffi::xendma_trace_bounced(
                crate::kext::dma::ops::raw(dev),
                phys,
                bounce,
                size,
                dir.to_raw() as i32,
                reason as u32,
            )
        }
    }

    /// `xen_swiotlb_rs:map_failed`: a mapping of `size` bytes for `dev` failed; the pool had
    /// `used_slots` of `slots` in use.
    pub fn map_failed(dev: &Device, size: usize, reason: MapFailure, used_slots: u64, slots: u64) {
        // SAFETY: `dev` is a live device (a reference); the event copies its name and the values.
        unsafe {
            ffi::xendma_trace_map_failed(
                crate::kext::dma::ops::raw(dev),
                size,
                reason as u32,
                used_slots,
                slots,
            )
        }
    }

    /// `xen_swiotlb_rs:pool_grow`: the pool grew by `bytes` (by a mapping, or by the worker), in
    /// extents of `min_bits` to `max_bits` address bits, taking `duration_us`.
    pub fn pool_grow(
        bytes: u64,
        worker: bool,
        min_bits: u32,
        max_bits: u32,
        duration_us: u64,
        pool_bytes: u64,
    ) {
        // SAFETY: only values are passed.
        unsafe {
            ffi::xendma_trace_pool_grow(bytes, worker, min_bits, max_bits, duration_us, pool_bytes)
        }
    }

    /// `xen_swiotlb_rs:attach`: an attach of the device the user named `name` (any bytes; the
    /// event records at most 63, up to a NUL) ended with `ret` (0 or -errno).
    pub fn attach(name: &[u8], ret: i32) {
        let buf = c_name(name);
        // SAFETY: `buf` is NUL-terminated (`c_name`) and outlives the call.
        unsafe { ffi::xendma_trace_attach(buf.as_ptr().cast(), ret) }
    }

    /// `xen_swiotlb_rs:detach`: as [`attach`], for a detach.
    pub fn detach(name: &[u8], ret: i32) {
        let buf = c_name(name);
        // SAFETY: `buf` is NUL-terminated (`c_name`) and outlives the call.
        unsafe { ffi::xendma_trace_detach(buf.as_ptr().cast(), ret) }
    }

    /// The first 63 bytes of `name` up to a NUL, NUL-terminated.
    fn c_name(name: &[u8]) -> [u8; 64] {
        let mut buf = [0u8; 64];
        let n = name
            .iter()
            .take(buf.len() - 1)
            .position(|&c| c == 0)
            .unwrap_or(name.len().min(buf.len() - 1));
        buf[..n].copy_from_slice(&name[..n]);
        buf
    }
}

/// `odp_umem:fault`: a fault-in of `pages` pages of `[start, end)` ended with `ret` (0 or
/// -errno) after `retries` retries, mapping `mapped` pages anew.
#[cfg(xendma_odp)]
pub fn odp_fault(start: u64, end: u64, pages: u64, retries: u32, mapped: u64, ret: i32) {
    // SAFETY: only values are passed.
    unsafe { ffi::xendma_trace_odp_fault(start, end, pages, retries, mapped, ret) }
}

/// `odp_umem:invalidate`: an invalidation of `[start, end)` (an `enum mmu_notifier_event`)
/// reached a umem and unmapped `unmapped` pages.
#[cfg(xendma_odp)]
pub fn odp_invalidate(start: u64, end: u64, event: i32, unmapped: u64) {
    // SAFETY: only values are passed.
    unsafe { ffi::xendma_trace_odp_invalidate(start, end, event, unmapped) }
}

/// `odp_umem:map_page`: the page at user address `addr` was DMA-mapped at `dma`.
#[cfg(xendma_odp)]
pub fn odp_map_page(addr: u64, dma: u64, writable: bool) {
    // SAFETY: only values are passed.
    unsafe { ffi::xendma_trace_odp_map_page(addr, dma, writable) }
}
