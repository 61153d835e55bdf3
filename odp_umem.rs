// SPDX-License-Identifier: GPL-2.0

//! odp_umem: On-Demand-Paging user memory for devices.
//!
//! A [`Umem`] mirrors a range of a process's memory for a device: pages are faulted in
//! (`hmm_range_fault`) and DMA-mapped when the device needs them, and taken away again when an
//! mmu interval notifier reports that the process's mapping changed. The sequence protocol of
//! `linux/mmu_notifier.h` (in `kext/mmu_notifier.rs`) guarantees that a fault never installs a page that an
//! invalidation has just removed: a fault that collides with an invalidation starts over.
//!
//! The module holds no raw kernel access: the notifier, HMM and mm references live in
//! `kext/mmu_notifier.rs` and `kext/mm.rs`, the DMA mappings of pages in `kext/dma/`, the range
//! arithmetic in `logic/odp.rs`.

use kernel::c_str;
use kernel::prelude::*;

/// What the kernel crate lacks (see `Documentation/layout.rst`).
pub mod kext;

/// The core-only range arithmetic and per-page state, shared with the host tests. (The paths
/// are relative to `logic/`, the directory of this inline module, and written so that rustfmt,
/// which resolves them from `odp_umem/`, finds the same files.)
pub mod logic {
    #[path = "../logic/dma.rs"]
    pub mod dma;
    #[path = "../logic/odp.rs"]
    pub mod odp;
}

#[path = "odp_umem/cabi.rs"]
mod cabi;
#[path = "odp_umem/umem.rs"]
mod umem;

pub use umem::*;

/// The `edu` test device driver (test builds only).
#[cfg(xendma_testdev)]
#[path = "selftests/edu/edu.rs"]
pub mod edu;

/// `/dev/odp_umem`, the test device (test builds only).
#[cfg(xendma_testdev)]
#[path = "selftests/kunit/odp_umem_testdev.rs"]
pub mod testdev;

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/odp_umem_kunit.rs"]
mod kunit_tests;

crate::xendma_module! {
    type: OdpUmem,
    name: "odp_umem",
    author: "The xendma authors",
    description: "On-Demand-Paging user memory over mmu interval notifiers",
    license: "GPL",
}

struct OdpUmem {
    #[cfg(xendma_testdev)]
    _dev: kext::miscdev::MiscRegistration<testdev::OdpMisc>,
    _debugfs: kext::debugfs::Counters,
    _abi: kext::odp_abi::Registration<Umem>,
}

impl kernel::Module for OdpUmem {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        #[cfg(xendma_kunit)]
        kext::kunit::note_init();
        pr_info!("loaded: page size {} bytes\n", kernel::page::PAGE_SIZE);
        let debugfs = kext::debugfs::Counters::new(
            c_str!("odp_umem"),
            &[
                (c_str!("faults"), &TOTALS.faults),
                (c_str!("invalidations"), &TOTALS.invalidations),
                (c_str!("retries"), &TOTALS.retries),
                (c_str!("pages_mapped"), &TOTALS.pages_mapped),
                (c_str!("maps"), &TOTALS.maps),
                (c_str!("unmaps"), &TOTALS.unmaps),
            ],
        );
        let abi = kext::odp_abi::Registration::new()?;
        #[cfg(xendma_testdev)]
        let dev = kext::miscdev::MiscRegistration::new(testdev::OdpMisc::new(), _module)?;
        // The KUnit cases, which run after init in kernel threads, borrow insmod's address space.
        #[cfg(xendma_kunit)]
        kext::mm::TestMm::capture();
        Ok(Self {
            #[cfg(xendma_testdev)]
            _dev: dev,
            _debugfs: debugfs,
            _abi: abi,
        })
    }
}

impl Drop for OdpUmem {
    fn drop(&mut self) {
        #[cfg(xendma_kunit)]
        kext::mm::TestMm::release();
        pr_info!("unloaded\n");
    }
}
