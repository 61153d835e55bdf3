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

#[cfg(xendma_kunit)]
pub mod ktest;
pub mod misc;
pub mod pci;
pub mod xen;

/// Sleeps for at least `ms` milliseconds (process context only).
pub fn msleep(ms: u32) {
    // SAFETY: `msleep` has no memory-safety requirements; calling it in atomic context is a bug
    // that CONFIG_DEBUG_ATOMIC_SLEEP reports.
    unsafe { generated::msleep(ms) };
}
