// SPDX-License-Identifier: GPL-2.0

//! xen_swiotlb_rs: DMA bounce buffering through machine-contiguous memory for Xen PV guests.
//!
//! A `dma_map_ops` table, attachable to chosen devices at run time, that bounces DMA through a
//! pool of machine-contiguous frames obtained from Xen with `XENMEM_exchange` (identity frames
//! when not under Xen).
//!
//! The pool comes from the page allocator below `2^dma_bits`, in chunks of up to 4 MiB; each
//! chunk is a pool of the slot allocator in `logic/slots.rs`, with one irq-saving lock per
//! area. Devices are put on the ops table at load (`attach=`) or at run time (the `attach` and
//! `detach` files in `/sys/module/xen_swiotlb_rs/`, which work under lockdown, or in debugfs);
//! their driver is unbound first and re-probed afterwards. See
//! `Documentation/xen-swiotlb-rs.rst`.

use kernel::prelude::*;

/// What the kernel crate lacks, as safe abstractions (see `Documentation/layout.rst`).
pub mod kext;

/// The bounce pool's kernel-independent core, the same files the host crate tests. (The paths
/// are relative to `logic/`, the directory of this inline module, and written so that rustfmt,
/// which resolves them from `xen_swiotlb_rs/`, finds the same files.)
pub mod logic {
    #[path = "../logic/bounce_policy.rs"]
    pub mod bounce_policy;
    #[path = "../logic/dma.rs"]
    pub mod dma;
    #[path = "../logic/params.rs"]
    pub mod params;
    #[path = "../logic/pciname.rs"]
    pub mod pciname;
    #[path = "../logic/slots.rs"]
    pub mod slots;
    #[path = "../logic/xlate.rs"]
    pub mod xlate;
}

#[path = "xen_swiotlb_rs/attach.rs"]
mod attach;
#[path = "xen_swiotlb_rs/engine.rs"]
mod engine;
#[path = "xen_swiotlb_rs/ops.rs"]
mod ops;
#[path = "xen_swiotlb_rs/p2m.rs"]
mod p2m;
#[path = "xen_swiotlb_rs/pool.rs"]
mod pool;
#[path = "xen_swiotlb_rs/stats.rs"]
mod stats;

pub use attach::Swiotlb;
pub use engine::{Engine, PoolParams};

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/xen_swiotlb_rs_kunit.rs"]
mod kunit_tests;

/// The `edu` test device driver (test builds only).
#[cfg(xendma_testdev)]
#[path = "selftests/edu/edu.rs"]
pub mod edu;

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/dma_api_kunit.rs"]
mod dma_api_kunit;

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/swiotlb_ops_kunit.rs"]
mod swiotlb_ops_kunit;

use kernel::c_str;
use kext::debugfs::Debugfs;
use kext::sysfs::ModuleAttrs;
use kext::xen::Domain;
use logic::params::LoadParams;
use logic::pciname;
use stats::{FILES, SYSFS_FILES};

crate::xendma_module! {
    type: XenSwiotlbRs,
    name: "xen_swiotlb_rs",
    author: "The xendma authors",
    description: "Xen swiotlb DMA bouncing through machine-contiguous frames",
    license: "GPL",
}

struct XenSwiotlbRs {
    domain: Domain,
    /// `None` where debugfs is off (`debugfs=off`, no `CONFIG_DEBUG_FS`): the module works
    /// without it, as the kernel's swiotlb does.
    _debugfs: Option<Debugfs<Swiotlb>>,
    _sysfs: ModuleAttrs<Swiotlb>,
    /// Test builds: `/dev/xendma_edu` for the user-space tests.
    #[cfg(xendma_testdev)]
    _edu: kext::miscdev::MiscRegistration<edu::EduMisc>,
}

impl kernel::Module for XenSwiotlbRs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        #[cfg(xendma_kunit)]
        kext::kunit::note_init();
        let domain = Domain::current();
        match kext::xen::version() {
            Some((major, minor)) => {
                pr_info!("loaded: domain {:?}, Xen {}.{}\n", domain, major, minor)
            }
            None => pr_info!(
                "loaded: domain {:?} (not under Xen: identity frames)\n",
                domain
            ),
        }
        let load = LoadParams {
            pool_mb: kext::params::pool_mb(),
            dma_bits: kext::params::dma_bits(),
            pool_max_mb: kext::params::pool_max_mb(),
            segment_kb: kext::params::segment_kb(),
        };
        if let Err(e) = load.check(kext::page::ram_end()) {
            // Through `format_args!`: 7.x's `pr_err!` takes its own `Display`, which
            // `Arguments` has.
            pr_err!("{}\n", format_args!("{}", e));
            return Err(EINVAL);
        }
        let params = PoolParams {
            bytes: (load.pool_mb as usize) << 20,
            dma_bits: load.dma_bits,
            segment_bytes: (load.segment_kb as usize) << 10,
            max_bytes: (load.pool_max_mb as usize) << 20,
        };
        let engine = Engine::new(params, None)?;
        pr_info!(
            "pool: {} MiB in {} chunks, {} slots, highest byte {:#x} (bus {:#x}), grows to {} MiB\n",
            engine.pool.bytes() >> 20,
            engine.pool.chunk_count(),
            engine.pool.nslabs(),
            engine.pool.last_phys(),
            engine.pool.last_bus(),
            engine.params.max_bytes >> 20
        );
        let sw = Swiotlb::new(engine, Some(module))?;
        let debugfs = Debugfs::new(c_str!("xen_swiotlb_rs"), sw.clone()).and_then(|mut d| {
            for &(name, mode, id) in FILES {
                d.add(name, mode, id)?;
            }
            Ok(d)
        });
        let debugfs = match debugfs {
            Ok(d) => Some(d),
            Err(e) => {
                pr_warn!(
                    "no debugfs directory ({:?}): the statistics are not shown, the rest works\n",
                    e
                );
                None
            }
        };
        let mut sysfs = ModuleAttrs::new(sw.clone());
        for &(name, mode, id) in SYSFS_FILES {
            sysfs.add(name, mode, id)?;
        }
        for name in pciname::list(kext::params::attach()) {
            if let Err(e) = sw.attach(name) {
                pr_err!(
                    "attach={}: attach at load failed ({:?})\n",
                    format_args!("{}", pciname::Shown(name)),
                    e
                );
            }
        }
        Ok(Self {
            domain,
            _debugfs: debugfs,
            _sysfs: sysfs,
            #[cfg(xendma_testdev)]
            _edu: kext::miscdev::MiscRegistration::new(edu::EduMisc, module)?,
        })
    }
}

impl Drop for XenSwiotlbRs {
    fn drop(&mut self) {
        pr_info!("unloaded (domain {:?})\n", self.domain);
    }
}
