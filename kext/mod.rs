// SPDX-License-Identifier: GPL-2.0

//! kext: what the 6.12 `kernel` crate lacks for this project, as safe abstractions.
//!
//! This is the only part of the modules with `unsafe` code (the crate roots deny it everywhere
//! else, and `scripts/check-unsafe.sh` fails the build if any appears outside `kext/`). It is
//! also the only part that knows which kernel it is built for. Nothing here imports module code:
//! dependencies run from the module folders (`xen_swiotlb_rs/`, `odp_umem/`) and `selftests/`
//! to `kext/`, and from `kext/` to the `kernel` crate and the C helpers in `kext/helpers/`.
//!
//! - [`compat`]: what differs between the `kernel` crates of 6.12 and 7.x.
//! - [`bindings`]: the module-local bindgen pass (header list `bindings.h`, parameters
//!   `bindgen_parameters`) over `kernel::bindings`.
//! - [`dma`]: the DMA API (devices, coherent buffers, pools, streaming and scatter-gather
//!   mappings) and the `dma_map_ops` builder.
//! - [`page`], [`mm`], [`mmu_notifier`]: pages, address spaces, interval notifiers and HMM.
//! - [`pci`], [`miscdev`], [`debugfs`], [`sysfs`], [`files`]: drivers, character devices,
//!   debugfs files, the module's sysfs attributes, and what the last two share.
//! - [`sync`], `irqlock`, `publish`, `percpu`: small kernel services, an irq-saving spinlock,
//!   a list published to lock-free readers, counters with one copy per CPU.
//! - [`xen`]: the domain, the p2m, `XENMEM_exchange`.
//! - [`trace`]: the modules' trace events.
//! - [`params`] (xen_swiotlb_rs), [`odp_abi`] (odp_umem): module-specific glue to C.
//! - `kunit` (test builds only): KUnit suites and test-only kernel access.
//!
//! Each module compiles the parts it uses (`--cfg xendma_swiotlb` / `--cfg xendma_odp`, set by
//! `Kbuild`), and links only its own C helpers (`kext/xen_swiotlb_rs.c`, `kext/odp_umem.c`).

#![allow(unsafe_code)]

/// Module-local bindings: the items of `bindings.h` allowlisted in `bindgen_parameters`, over
/// `kernel::bindings` (so that there is one `struct device` type shared with the kernel crate).
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
pub mod bindings {
    pub use kernel::bindings::*;
    use kernel::ffi;
    include!("bindings_generated.rs");
}

pub mod compat;
pub mod debugfs;
pub mod dma;
pub mod files;
#[cfg(xendma_swiotlb)]
pub mod irqlock;
#[cfg(xendma_kunit)]
pub mod kunit;
#[cfg(xendma_testdev)]
pub mod miscdev;
pub mod mm;
#[cfg(xendma_odp)]
pub mod mmu_notifier;
#[cfg(xendma_odp)]
pub mod odp_abi;
pub mod page;
#[cfg(xendma_swiotlb)]
pub mod params;
#[cfg(xendma_testdev)]
pub mod pci;
#[cfg(xendma_swiotlb)]
pub mod percpu;
#[cfg(xendma_swiotlb)]
pub mod publish;
pub mod sync;
#[cfg(xendma_swiotlb)]
pub mod sysfs;
#[cfg(any(xendma_swiotlb, xendma_odp))]
pub mod trace;
#[cfg(any(xendma_swiotlb, xendma_testdev))]
pub mod xen;
#[cfg(xendma_swiotlb)]
pub mod xen_frames;
