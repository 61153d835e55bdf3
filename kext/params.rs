// SPDX-License-Identifier: GPL-2.0

//! The module parameters of xen_swiotlb_rs, declared in C (`kext/helpers/params.c`).

use crate::kext::bindings as ffi;
#[cfg(xendma_kernel_7)]
use crate::kext::compat::CStrExt as _;
use kernel::prelude::*;

/// `pool_mb`: the pool size asked for, in MiB.
pub fn pool_mb() -> u32 {
    // SAFETY: reads a module parameter.
    unsafe { ffi::xendma_swiotlb_pool_mb() }
}

/// `dma_bits`: the pool must lie below `2^dma_bits`.
pub fn dma_bits() -> u32 {
    // SAFETY: reads a module parameter.
    unsafe { ffi::xendma_swiotlb_dma_bits() }
}

/// `pool_max_mb`: the pool may grow on demand up to this many MiB (0: no growth).
pub fn pool_max_mb() -> u32 {
    // SAFETY: reads a module parameter.
    unsafe { ffi::xendma_swiotlb_pool_max_mb() }
}

/// `segment_kb`: the machine-contiguous segment size in KiB (and the largest mapping).
pub fn segment_kb() -> u32 {
    // SAFETY: reads a module parameter.
    unsafe { ffi::xendma_swiotlb_segment_kb() }
}

/// `force_bounce`: bounce every mapping (writable at run time through sysfs).
#[inline]
pub fn force_bounce() -> bool {
    // SAFETY: the parameter is a C `bool` (0 or 1) that lives as long as the module; sysfs
    // writes it with a plain store, so it is read once, as `READ_ONCE` would.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(ffi::xendma_param_force_bounce)) }
}

/// `attach`: the devices to attach at load, comma-separated.
pub fn attach() -> &'static [u8] {
    // SAFETY: the parameter is a NUL-terminated string that only changes at load (0444).
    crate::kext::compat::cstr_bytes(unsafe { CStr::from_char_ptr(ffi::xendma_swiotlb_attach()) })
}
