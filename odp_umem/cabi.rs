// SPDX-License-Identifier: GPL-2.0

//! The C API of `include/odp_umem.h` for RDMA drivers: the umem behind `kext::odp_abi`'s
//! exported functions.

use crate::kext::dma::DmaDevice;
use crate::kext::odp_abi::{CInvalidate, UmemApi};
use crate::logic::odp::{Access, PageSize, Region};
use crate::{arg_errno, Client, MappedRange, Umem};
use kernel::{device::Device, error::code::EINVAL, prelude::*, sync::Arc};

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
        if page_shift >= 64 {
            return Err(EINVAL);
        }
        let page = PageSize::from_bytes(1u64 << page_shift).map_err(arg_errno)?;
        let access = Access::from_user(access).map_err(arg_errno)?;
        let region = Region::new(start, len, page, access).map_err(arg_errno)?;
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
