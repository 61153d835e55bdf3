// SPDX-License-Identifier: GPL-2.0

//! odp_umem: On-Demand-Paging user memory for devices.
//!
//! Ranges of a process's memory mirrored for a device, faulted in on demand and invalidated
//! through mmu interval notifier callbacks without racing the faults. This skeleton only
//! announces itself; the mirror follows.

use kernel::prelude::*;

pub mod dma_api;
pub mod ffi;

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/odp_umem_kunit.rs"]
mod kunit_tests;

module! {
    type: OdpUmem,
    name: "odp_umem",
    author: "The xendma authors",
    description: "On-Demand-Paging user memory over mmu interval notifiers",
    license: "GPL",
}

struct OdpUmem;

impl kernel::Module for OdpUmem {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded: page size {} bytes\n", kernel::page::PAGE_SIZE);
        Ok(Self)
    }
}

impl Drop for OdpUmem {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
