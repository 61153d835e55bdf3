// SPDX-License-Identifier: GPL-2.0

//! The C API of `include/odp_umem.h`, for RDMA drivers.
//!
//! Rust modules of 6.12 cannot export symbols, so `ffi/odp_umem_helpers.c` exports thin C
//! functions (`odp_umem_get`, ...) that call the `xendma_odp_abi_*` functions here. A C umem is
//! a boxed [`CUmem`]: the [`Umem`] and, while the driver holds the lock, the [`MappedRange`]
//! guard that keeps it.

use crate::dma_api::DmaDevice;
use crate::odp::{Access, PageSize, Region};
use crate::{arg_errno, Client, MappedRange, Umem};
use core::{cell::UnsafeCell, ffi::c_void, ptr::NonNull};
use kernel::{
    device::Device,
    error::{code::EINVAL, Error, Result},
    ffi::{c_int, c_uint, c_ulong},
    prelude::*,
    sync::Arc,
};

/// `odp_umem_invalidate_t`.
pub type InvalidateFn = Option<unsafe extern "C" fn(*mut c_void, c_ulong, c_ulong)>;

/// `DMA_MAPPING_ERROR`.
const DMA_MAPPING_ERROR: u64 = u64::MAX;

/// A C driver's invalidate callback.
struct CClient {
    cb: InvalidateFn,
    data: *mut c_void,
}

// SAFETY: the driver promises (include/odp_umem.h) that its callback may run on any CPU with
// its private pointer.
unsafe impl Send for CClient {}
// SAFETY: as above.
unsafe impl Sync for CClient {}

impl Client for CClient {
    fn invalidated(&self, start: u64, end: u64) {
        if let Some(cb) = self.cb {
            // SAFETY: the driver's callback with its private pointer, as registered; the
            // addresses are user addresses (`unsigned long`).
            unsafe { cb(self.data, start as c_ulong, end as c_ulong) };
        }
    }
}

/// A umem handed to C.
///
/// # Invariants
///
/// `locked` is written only by the task holding the umem's lock, and holds that task's guard
/// while it holds the lock; it borrows `umem`, which is boxed together with it and never moves,
/// and is emptied before `umem` is dropped (field order).
pub struct CUmem {
    locked: UnsafeCell<Option<MappedRange<'static>>>,
    umem: Umem,
}

fn access(bits: c_uint) -> Result<Access> {
    Access::from_user(bits).map_err(arg_errno)
}

fn get(
    dev: *mut kernel::bindings::device,
    start: c_ulong,
    len: usize,
    page_shift: c_uint,
    access_bits: c_uint,
    cb: InvalidateFn,
    data: *mut c_void,
) -> Result<KBox<CUmem>> {
    if dev.is_null() || page_shift >= 64 {
        return Err(EINVAL);
    }
    let page = PageSize::from_bytes(1u64 << page_shift).map_err(arg_errno)?;
    let region =
        Region::new(start as u64, len as u64, page, access(access_bits)?).map_err(arg_errno)?;
    // SAFETY: the caller of `odp_umem_get` passes a valid device that outlives the umem.
    let dev = DmaDevice::new(unsafe { Device::as_ref(dev) });
    let client = Arc::new(CClient { cb, data }, GFP_KERNEL)?;
    let client: Arc<dyn Client> = client;
    let umem = Umem::new(region, &dev, Some(client))?;
    Ok(KBox::new(
        CUmem {
            locked: UnsafeCell::new(None),
            umem,
        },
        GFP_KERNEL,
    )?)
}

/// `odp_umem_get`: a new umem, or NULL with `*err` set.
///
/// # Safety
///
/// `dev` is NULL or a valid device that outlives the umem; `err` is valid for a write; `cb`, if
/// any, may be called with `data` from any task until the umem is released.
#[no_mangle]
pub unsafe extern "C" fn xendma_odp_abi_get(
    dev: *mut kernel::bindings::device,
    start: c_ulong,
    len: usize,
    page_shift: c_uint,
    access_bits: c_uint,
    cb: InvalidateFn,
    data: *mut c_void,
    err: *mut c_int,
) -> *mut CUmem {
    match get(dev, start, len, page_shift, access_bits, cb, data) {
        Ok(u) => KBox::into_raw(u),
        Err(e) => {
            // SAFETY: valid for a write (caller's guarantee).
            unsafe { *err = e.to_errno() };
            core::ptr::null_mut()
        }
    }
}

/// `odp_umem_map_and_lock`.
///
/// # Safety
///
/// `u` is a live umem from [`xendma_odp_abi_get`], not locked by the calling task.
#[no_mangle]
pub unsafe extern "C" fn xendma_odp_abi_map_and_lock(
    u: *mut CUmem,
    addr: c_ulong,
    len: usize,
    access_bits: c_uint,
) -> c_int {
    // SAFETY: live (caller's guarantee); shared access to the `Umem`.
    let cu = unsafe { &*u };
    let r = access(access_bits).and_then(|a| cu.umem.map_and_lock(addr as u64, len as u64, a));
    match r {
        Ok(range) => {
            // SAFETY: the guard borrows `cu.umem`, which stays in place until the box is freed,
            // and `release` empties the slot first (type invariant), so extending the borrow is
            // sound. This task holds the lock, so it alone writes the slot.
            unsafe {
                let range: MappedRange<'static> = core::mem::transmute(range);
                *cu.locked.get() = Some(range);
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `odp_umem_unlock`.
///
/// # Safety
///
/// `u` is a live umem whose lock the calling task holds.
#[no_mangle]
pub unsafe extern "C" fn xendma_odp_abi_unlock(u: *mut CUmem) {
    // SAFETY: live and locked by this task, which alone accesses the slot (type invariant).
    let guard = unsafe { (*(*u).locked.get()).take() };
    drop(guard);
}

/// `odp_umem_dma_addr`.
///
/// # Safety
///
/// `u` is a live umem; the calling task holds its lock (or the result is `DMA_MAPPING_ERROR`
/// only if it holds no lock and no other task does).
#[no_mangle]
pub unsafe extern "C" fn xendma_odp_abi_dma_addr(u: *mut CUmem, addr: c_ulong) -> u64 {
    // SAFETY: live; read by the lock holder (caller's guarantee).
    let slot = unsafe { &*(*u).locked.get() };
    let Some(range) = slot else {
        return DMA_MAPPING_ERROR;
    };
    match range.page_at(addr as u64) {
        Ok((map, off)) => map.bus() + off as u64,
        Err(_) => DMA_MAPPING_ERROR,
    }
}

/// `odp_umem_unmap`.
///
/// # Safety
///
/// `u` is a live umem, not locked by the calling task.
#[no_mangle]
pub unsafe extern "C" fn xendma_odp_abi_unmap(u: *mut CUmem, addr: c_ulong, len: usize) -> c_int {
    // SAFETY: live (caller's guarantee).
    let cu = unsafe { &*u };
    match cu.umem.unmap(addr as u64, len as u64) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `odp_umem_release`.
///
/// # Safety
///
/// `u` is NULL or a umem from [`xendma_odp_abi_get`], not locked, released once.
#[no_mangle]
pub unsafe extern "C" fn xendma_odp_abi_release(u: *mut CUmem) {
    if let Some(u) = NonNull::new(u) {
        // SAFETY: made by `KBox::into_raw` in `xendma_odp_abi_get`; this is the last use.
        drop(unsafe { KBox::from_raw(u.as_ptr()) });
    }
}

/// A safe handle on the exported C API, for the test device: it calls the exported symbols
/// (`odp_umem_get`, ...), not the Rust functions above, so that the C wrappers are covered.
///
/// # Invariants
///
/// `raw` is a live umem from `odp_umem_get`, released on drop; `counter` is the private pointer
/// of its callback.
pub struct CApiUmem {
    raw: NonNull<crate::ffi::odp_umem>,
    _counter: &'static core::sync::atomic::AtomicU64,
}

// SAFETY: the C API may be called from any task (the lock's owner aside, which `with_locked`
// keeps within one call).
unsafe impl Send for CApiUmem {}
// SAFETY: as above.
unsafe impl Sync for CApiUmem {}

/// Counts invalidations: `data` is a `&'static AtomicU64`.
///
/// # Safety
///
/// `data` points to a live `AtomicU64`.
unsafe extern "C" fn count_invalidation(data: *mut c_void, _start: c_ulong, _end: c_ulong) {
    // SAFETY: the counter registered with the umem, `'static`.
    let counter = unsafe { &*data.cast::<core::sync::atomic::AtomicU64>() };
    counter.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

impl CApiUmem {
    /// `odp_umem_get` for the calling process, counting invalidations in `counter`.
    pub fn get(
        dev: &DmaDevice,
        start: u64,
        len: u64,
        page_shift: u32,
        access: u32,
        counter: &'static core::sync::atomic::AtomicU64,
    ) -> Result<Self> {
        let dev_ptr = (dev.device() as *const Device).cast_mut().cast();
        // SAFETY: a valid device that the caller keeps bound while the umem lives (the test
        // device drops its umems before the registration); the callback and its counter are
        // `'static`.
        let raw = unsafe {
            crate::ffi::odp_umem_get(
                dev_ptr,
                start as _,
                len as _,
                page_shift,
                access,
                Some(count_invalidation),
                (counter as *const core::sync::atomic::AtomicU64)
                    .cast_mut()
                    .cast(),
            )
        };
        let raw = kernel::error::from_err_ptr(raw)?;
        // INVARIANT: a live umem from `odp_umem_get`.
        Ok(Self {
            raw: NonNull::new(raw).ok_or(EINVAL)?,
            _counter: counter,
        })
    }

    /// `odp_umem_map_and_lock`, then `f` with `odp_umem_dma_addr` as a lookup, then
    /// `odp_umem_unlock`.
    pub fn with_locked<R>(
        &self,
        addr: u64,
        len: u64,
        access: u32,
        f: impl FnOnce(&dyn Fn(u64) -> Option<u64>) -> R,
    ) -> Result<R> {
        // SAFETY: live (type invariant), not locked by this task (the lock never outlives this
        // call).
        let rc = unsafe {
            crate::ffi::odp_umem_map_and_lock(self.raw.as_ptr(), addr as _, len as _, access)
        };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        let lookup = |a: u64| {
            // SAFETY: live and locked by this task.
            let bus = unsafe { crate::ffi::odp_umem_dma_addr(self.raw.as_ptr(), a as _) };
            (bus != DMA_MAPPING_ERROR).then_some(bus)
        };
        let r = f(&lookup);
        // SAFETY: locked by this task just above.
        unsafe { crate::ffi::odp_umem_unlock(self.raw.as_ptr()) };
        Ok(r)
    }

    /// `odp_umem_unmap`.
    pub fn unmap(&self, addr: u64, len: u64) -> Result {
        // SAFETY: live, not locked by this task.
        let rc = unsafe { crate::ffi::odp_umem_unmap(self.raw.as_ptr(), addr as _, len as _) };
        if rc != 0 {
            return Err(Error::from_errno(rc));
        }
        Ok(())
    }
}

impl Drop for CApiUmem {
    fn drop(&mut self) {
        // SAFETY: live, unlocked, released once (type invariant).
        unsafe { crate::ffi::odp_umem_release(self.raw.as_ptr()) };
    }
}
