// SPDX-License-Identifier: GPL-2.0

//! The C API of `include/odp_umem.h` for RDMA drivers: the umem behind `kext::odp_abi`'s
//! exported functions.

use crate::kext::dma::DmaDevice;
use crate::kext::odp_abi::{CInvalidate, UmemApi};
use crate::logic::odp::{Access, ArgError, PageSize, Region};
use crate::{arg_errno, warn_ratelimited, Client, MappedRange, Umem};
use kernel::{device::Device, prelude::*, sync::Arc};

/// A C driver is told of invalidations through its callback.
impl Client for CInvalidate {
    fn invalidated(&self, start: u64, end: u64) {
        self.call(start, end);
    }
}

impl UmemApi for Umem {
    type Locked<'a> = MappedRange<'a>;

    fn get(
        dev: &Device,
        start: u64,
        len: u64,
        page_shift: u32,
        access: u32,
        invalidate: CInvalidate,
    ) -> Result<Self> {
        let refused = |e: ArgError| {
            warn_ratelimited!(
                "odp_umem_get({:#x}, {:#x}, page_shift {}, access {:#x}) refused: {:?}\n",
                start,
                len,
                page_shift,
                access,
                e
            );
            arg_errno(e)
        };
        let bytes = 1u64.checked_shl(page_shift).ok_or(ArgError::Invalid);
        let page = bytes.and_then(PageSize::from_bytes).map_err(refused)?;
        let access = Access::from_user(access).map_err(refused)?;
        let region = Region::new(start, len, page, access).map_err(refused)?;
        let client: Arc<dyn Client> = Arc::new(invalidate, GFP_KERNEL)?;
        Umem::new(region, &DmaDevice::new(dev), Some(client))
    }

    fn map_and_lock(&self, addr: u64, len: u64, access: u32) -> Result<MappedRange<'_>> {
        let access = Access::from_user(access).map_err(arg_errno)?;
        Umem::map_and_lock(self, addr, len, access)
    }

    fn dma_addr(locked: &MappedRange<'_>, addr: u64) -> Option<u64> {
        let (map, off) = locked.page_at(addr).ok()?;
        Some(map.bus() + off as u64)
    }

    fn unmap(&self, addr: u64, len: u64) -> Result {
        Umem::unmap(self, addr, len)
    }

    fn sync(locked: &MappedRange<'_>, addr: u64, len: u64, for_cpu: bool) -> Result {
        locked.sync(addr, len, for_cpu)
    }
}
