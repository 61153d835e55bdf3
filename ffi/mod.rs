// SPDX-License-Identifier: GPL-2.0

//! Module-local bindings: what the 6.12 `kernel` crate lacks.
//!
//! `bindings_generated.rs` is produced at build time by bindgen from `ffi/bindings.h`, with the
//! clang flags the kernel itself used (see `Kbuild`). Only the items allowlisted in
//! `ffi/bindgen_parameters` are generated; everything else they refer to is taken from
//! `kernel::bindings`, so that there is a single `struct device` type shared with the kernel crate.

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]
mod generated {
    pub use kernel::bindings::*;
    use kernel::ffi;
    include!("bindings_generated.rs");
}

pub use generated::*;

/// Glue that only xen_swiotlb_rs links (it uses the bounce-pool core of `logic/`).
#[cfg(xendma_swiotlb)]
pub mod bounce;
pub mod debugfs;
#[cfg(xendma_swiotlb)]
pub mod dma_ops;
pub mod irqlock;
#[cfg(xendma_kunit)]
pub mod ktest;
pub mod misc;
#[cfg(xendma_swiotlb)]
pub mod params;
pub mod pci;
pub mod xen;
#[cfg(xendma_swiotlb)]
pub mod xen_frames;

/// Free pages of the page allocator.
#[cfg(xendma_swiotlb)]
pub fn free_pages() -> u64 {
    // SAFETY: reads a global counter.
    unsafe { generated::xendma_nr_free_pages() as u64 }
}

/// Waits until `work` is neither queued nor running.
pub fn flush_work<T: ?Sized, const ID: u64>(work: &kernel::workqueue::Work<T, ID>) {
    // SAFETY: `work` is an initialised work item that lives across the call; `flush_work` only
    // waits for it.
    unsafe { generated::flush_work(kernel::workqueue::Work::raw_get(work)) };
}

/// Sleeps for at least `ms` milliseconds (process context only).
pub fn msleep(ms: u32) {
    // SAFETY: `msleep` has no memory-safety requirements; calling it in atomic context is a bug
    // that CONFIG_DEBUG_ATOMIC_SLEEP reports.
    unsafe { generated::msleep(ms) };
}

/// Number of CPUs the system may ever have.
pub fn possible_cpus() -> usize {
    // SAFETY: no requirements.
    unsafe { generated::xendma_possible_cpus() as usize }
}

/// Whether a rate-limited warning may be printed now (one shared budget, as
/// `pr_warn_ratelimited`'s default: 10 messages per 5 seconds).
pub fn warn_ratelimit() -> bool {
    // SAFETY: no requirements.
    unsafe { generated::xendma_warn_ratelimit() }
}

/// A reference on a module, which keeps it from being unloaded; dropped, it is given back.
///
/// # Invariants
///
/// Holds one reference on `module` taken by `try_module_get`.
pub struct ModuleRef(&'static kernel::ThisModule);

impl ModuleRef {
    /// Takes a reference; `None` if the module is going away.
    pub fn get(module: &'static kernel::ThisModule) -> Option<Self> {
        // SAFETY: a module descriptor of a loaded module.
        // INVARIANT: the reference is taken when this returns true.
        unsafe { generated::xendma_module_get(module.as_ptr()) }.then_some(Self(module))
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: gives back the reference taken by `get` (type invariant).
        unsafe { generated::xendma_module_put(self.0.as_ptr()) };
    }
}

/// The physical address of the last byte of RAM.
pub fn ram_end() -> u64 {
    // SAFETY: no requirements.
    unsafe { generated::xendma_ram_end() }
}
