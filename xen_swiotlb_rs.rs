// SPDX-License-Identifier: GPL-2.0

//! xen_swiotlb_rs: DMA bounce buffering through machine-contiguous memory for Xen PV guests.
//!
//! A `dma_map_ops` table, attachable to chosen devices at run time, that bounces DMA through a
//! pool of machine-contiguous frames obtained from Xen with `XENMEM_exchange` (identity frames
//! when not under Xen). This skeleton reports the environment it finds; the ops table follows.

use kernel::prelude::*;

pub mod dma_api;
pub mod ffi;

/// The bounce pool's kernel-independent core, the same files the host crate tests.
pub mod logic {
    #[path = "bounce.rs"]
    pub mod bounce;
    #[path = "slots.rs"]
    pub mod slots;
    #[path = "xlate.rs"]
    pub mod xlate;
}

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/xen_swiotlb_rs_kunit.rs"]
mod kunit_tests;

/// The `edu` test device driver (test builds only).
#[cfg(xendma_kunit)]
#[path = "selftests/edu/edu.rs"]
pub mod edu;

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/dma_api_kunit.rs"]
mod dma_api_kunit;

use ffi::xen::Domain;

module! {
    type: XenSwiotlbRs,
    name: "xen_swiotlb_rs",
    author: "The xendma authors",
    description: "Xen swiotlb DMA bouncing through machine-contiguous frames",
    license: "GPL",
}

struct XenSwiotlbRs {
    domain: Domain,
    /// Test builds: `/dev/xendma_edu` for the user-space tests.
    #[cfg(xendma_kunit)]
    _edu: ffi::misc::MiscRegistration<edu::EduMisc>,
}

impl kernel::Module for XenSwiotlbRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let domain = Domain::current();
        match ffi::xen::version() {
            Some((major, minor)) => {
                pr_info!("loaded: domain {:?}, Xen {}.{}\n", domain, major, minor)
            }
            None => pr_info!(
                "loaded: domain {:?} (not under Xen: identity frames)\n",
                domain
            ),
        }
        Ok(Self {
            domain,
            #[cfg(xendma_kunit)]
            _edu: ffi::misc::MiscRegistration::new(edu::EduMisc, _module)?,
        })
    }
}

impl Drop for XenSwiotlbRs {
    fn drop(&mut self) {
        pr_info!("unloaded (domain {:?})\n", self.domain);
    }
}
