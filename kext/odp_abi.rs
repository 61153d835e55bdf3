// SPDX-License-Identifier: GPL-2.0

//! The C API of `include/odp_umem.h`, for RDMA drivers.
//!
//! Rust modules of 6.12 cannot export symbols, so `kext/helpers/odp_abi.c` exports thin C
//! functions (`odp_umem_get`, ...) that call through a table of function pointers which a
//! [`Registration`] fills with the trampolines of a [`UmemApi`] implementation (the module's
//! umem) while the module is loaded. A C umem is a boxed [`CUmem`]: the implementation's umem
//! and, while the driver holds the lock, the guard that keeps it.

use crate::kext::bindings;
use crate::logic::dma::DMA_MAPPING_ERROR;
use core::{cell::UnsafeCell, ffi::c_void, marker::PhantomData, mem::ManuallyDrop, ptr::NonNull};
use kernel::{
    device::Device,
    error::{code::EINVAL, Result},
    ffi::{c_int, c_uint, c_ulong},
    prelude::*,
};

/// `odp_umem_invalidate_t`.
pub type InvalidateFn = Option<unsafe extern "C" fn(*mut c_void, c_ulong, c_ulong)>;

/// A C driver's invalidate callback and its private pointer.
///
/// # Invariants
///
/// `cb`, if any, may be called with `data` from any task until the umem it was registered with
/// is released (the contract of `odp_umem_get` in `include/odp_umem.h`).
pub struct CInvalidate {
    cb: InvalidateFn,
    data: *mut c_void,
}

// SAFETY: the driver promises (include/odp_umem.h) that its callback may run on any CPU and any
// task with its private pointer, so the pair may move to another thread.
unsafe impl Send for CInvalidate {}
// SAFETY: as above; calling the callback is the only use of a shared reference.
unsafe impl Sync for CInvalidate {}

impl CInvalidate {
    /// Tells the driver that `[start, end)` left the device's view.
    pub fn call(&self, start: u64, end: u64) {
        if let Some(cb) = self.cb {
            // SAFETY: the driver's callback with its private pointer, valid until the umem is
            // released (type invariant), which cannot happen while the umem calls this; the
            // addresses are user addresses (`unsigned long`).
            unsafe { cb(self.data, start as c_ulong, end as c_ulong) };
        }
    }
}

/// The implementation behind the C API: the module's umem.
pub trait UmemApi: Send + Sync + Sized + 'static {
    /// What [`UmemApi::map_and_lock`] returns: the umem locked, with its range mapped.
    type Locked<'a>;

    /// `odp_umem_get`: a umem for `dev` over `len` bytes of the calling process's memory at
    /// `start`, in pages of `1 << page_shift` bytes, with access bits `access`
    /// (`ODP_UMEM_ACCESS_*`).
    fn get(
        dev: &Device,
        start: u64,
        len: u64,
        page_shift: u32,
        access: u32,
        invalidate: CInvalidate,
    ) -> Result<Self>;
    /// `odp_umem_map_and_lock`.
    fn map_and_lock(&self, addr: u64, len: u64, access: u32) -> Result<Self::Locked<'_>>;
    /// `odp_umem_dma_addr`: the bus address of `addr` in a locked range.
    fn dma_addr(locked: &Self::Locked<'_>, addr: u64) -> Option<u64>;
    /// `odp_umem_unmap`.
    fn unmap(&self, addr: u64, len: u64) -> Result;
    /// `odp_umem_sync_for_cpu` (`for_cpu`) or `odp_umem_sync_for_device` of `[addr, addr +
    /// len)` in a locked umem.
    fn sync(locked: &Self::Locked<'_>, addr: u64, len: u64, for_cpu: bool) -> Result;
}

/// A umem handed to C.
///
/// # Invariants
///
/// `locked` is written only by the task holding the umem's lock, and holds that task's guard
/// while it holds the lock; it borrows `umem`, which is boxed together with it and never moves,
/// and is emptied before `umem` is dropped (field order).
pub struct CUmem<T: UmemApi> {
    locked: UnsafeCell<Option<T::Locked<'static>>>,
    umem: T,
}

/// While alive, the C API of `include/odp_umem.h` calls `T`; dropped, it answers `ENODEV`.
///
/// Only one registration may exist at a time (the module makes it at init).
///
/// # Invariants
///
/// `_ops` holds `T`'s trampolines and is the table `odp_abi.c` calls through until `drop`.
pub struct Registration<T: UmemApi> {
    _ops: KBox<bindings::xendma_odp_abi_ops>,
    _t: PhantomData<T>,
}

impl<T: UmemApi> Registration<T> {
    /// Points the C API at `T`.
    pub fn new() -> Result<Self> {
        let ops = KBox::new(
            bindings::xendma_odp_abi_ops {
                get: Some(Self::get),
                map_and_lock: Some(Self::map_and_lock),
                unlock: Some(Self::unlock),
                dma_addr: Some(Self::dma_addr),
                unmap: Some(Self::unmap),
                sync: Some(Self::sync),
                release: Some(Self::release),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: a complete table of trampolines that stays valid until `drop` unsets it.
        unsafe { bindings::xendma_odp_abi_set_ops(&*ops) };
        // INVARIANT: registered just above.
        Ok(Self {
            _ops: ops,
            _t: PhantomData,
        })
    }

    /// # Safety
    ///
    /// `dev` is NULL or a valid device that outlives the umem; `err` is valid for a write; `cb`,
    /// if any, may be called with `data` from any task until the umem is released.
    unsafe extern "C" fn get(
        dev: *mut bindings::device,
        start: c_ulong,
        len: usize,
        page_shift: c_uint,
        access: c_uint,
        cb: InvalidateFn,
        data: *mut c_void,
        err: *mut c_int,
    ) -> *mut c_void {
        let r = (|| {
            if dev.is_null() {
                return Err(EINVAL);
            }
            // SAFETY: a valid device that outlives the umem (caller's guarantee).
            let dev = unsafe { crate::kext::compat::device(dev) };
            // INVARIANT: the callback's contract is the caller's guarantee.
            let invalidate = CInvalidate { cb, data };
            let umem = T::get(
                dev,
                start as u64,
                len as u64,
                page_shift,
                access,
                invalidate,
            )?;
            Ok(KBox::new(
                CUmem {
                    locked: UnsafeCell::new(None),
                    umem,
                },
                GFP_KERNEL,
            )?)
        })();
        match r {
            Ok(u) => KBox::into_raw(u).cast(),
            Err(e) => {
                // SAFETY: valid for a write (caller's guarantee).
                unsafe { *err = e.to_errno() };
                core::ptr::null_mut()
            }
        }
    }

    /// # Safety
    ///
    /// `u` is a live umem from [`Self::get`], not locked by the calling task.
    unsafe extern "C" fn map_and_lock(
        u: *mut c_void,
        addr: c_ulong,
        len: usize,
        access: c_uint,
    ) -> c_int {
        // SAFETY: live (caller's guarantee); shared access to the umem.
        let cu = unsafe { &*u.cast::<CUmem<T>>() };
        match cu.umem.map_and_lock(addr as u64, len as u64, access) {
            Ok(range) => {
                // The guard borrows `cu.umem`, which stays in place until the box is freed, and
                // `release` empties the slot first (type invariant), so the guard may be kept as
                // `'static`.
                let range = ManuallyDrop::new(range);
                // SAFETY: the two types differ only in the guard's lifetime, so they have the same
                // layout; `range` is not dropped (`ManuallyDrop`), so the guard is moved, not
                // duplicated; extending the lifetime is sound (see above).
                let range: T::Locked<'static> = unsafe { core::mem::transmute_copy(&range) };
                // SAFETY: this task holds the umem's lock, so it alone writes the slot.
                unsafe { *cu.locked.get() = Some(range) };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `u` is a live umem whose lock the calling task holds.
    unsafe extern "C" fn unlock(u: *mut c_void) {
        // SAFETY: live and locked by this task, which alone accesses the slot (type invariant).
        let guard = unsafe { (*(*u.cast::<CUmem<T>>()).locked.get()).take() };
        drop(guard);
    }

    /// # Safety
    ///
    /// `u` is a live umem; the calling task holds its lock (or the result is
    /// `DMA_MAPPING_ERROR` only if it holds no lock and no other task does).
    unsafe extern "C" fn dma_addr(u: *mut c_void, addr: c_ulong) -> u64 {
        // SAFETY: live; read by the lock holder (caller's guarantee).
        let slot = unsafe { &*(*u.cast::<CUmem<T>>()).locked.get() };
        slot.as_ref()
            .and_then(|range| T::dma_addr(range, addr as u64))
            .unwrap_or(DMA_MAPPING_ERROR)
    }

    /// # Safety
    ///
    /// `u` is a live umem; the calling task holds its lock (or the result is `EINVAL` only if it
    /// holds no lock and no other task does).
    unsafe extern "C" fn sync(u: *mut c_void, addr: c_ulong, len: usize, for_cpu: bool) -> c_int {
        // SAFETY: live; read by the lock holder (caller's guarantee).
        let slot = unsafe { &*(*u.cast::<CUmem<T>>()).locked.get() };
        match slot.as_ref() {
            None => EINVAL.to_errno(),
            Some(range) => match T::sync(range, addr as u64, len as u64, for_cpu) {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            },
        }
    }

    /// # Safety
    ///
    /// `u` is a live umem, not locked by the calling task.
    unsafe extern "C" fn unmap(u: *mut c_void, addr: c_ulong, len: usize) -> c_int {
        // SAFETY: live (caller's guarantee).
        let cu = unsafe { &*u.cast::<CUmem<T>>() };
        match cu.umem.unmap(addr as u64, len as u64) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `u` is NULL or a umem from [`Self::get`], not locked, released once.
    unsafe extern "C" fn release(u: *mut c_void) {
        if let Some(u) = NonNull::new(u.cast::<CUmem<T>>()) {
            // SAFETY: made by `KBox::into_raw` in `get`; this is the last use.
            drop(unsafe { KBox::from_raw(u.as_ptr()) });
        }
    }
}

impl<T: UmemApi> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: unsets the table before `_ops` is freed. No call through it is in flight: the
        // exported functions are called by modules that use this one's symbols (which keeps it
        // loaded while they are) and by this module's test device (whose files keep it loaded),
        // and a registration is dropped only at module exit.
        unsafe { bindings::xendma_odp_abi_set_ops(core::ptr::null()) };
    }
}

/// A safe handle on the exported C API, for the test device: it calls the exported symbols
/// (`odp_umem_get`, ...), not the Rust functions above, so that the C wrappers are covered.
///
/// # Invariants
///
/// `raw` is a live umem from `odp_umem_get`, released on drop, and not locked outside
/// [`CApiUmem::with_locked`]; `_counter` is the private pointer of its callback.
#[cfg(xendma_testdev)]
pub struct CApiUmem {
    raw: NonNull<bindings::odp_umem>,
    _counter: &'static core::sync::atomic::AtomicU64,
}

// SAFETY: the C API may be called from any task (the lock's owner aside, which `with_locked`
// keeps within one call).
#[cfg(xendma_testdev)]
unsafe impl Send for CApiUmem {}
// SAFETY: as above.
#[cfg(xendma_testdev)]
unsafe impl Sync for CApiUmem {}

/// Counts invalidations: `data` is a `&'static AtomicU64`.
///
/// # Safety
///
/// `data` points to a live `AtomicU64`.
#[cfg(xendma_testdev)]
unsafe extern "C" fn count_invalidation(data: *mut c_void, _start: c_ulong, _end: c_ulong) {
    // SAFETY: the counter registered with the umem, `'static`.
    let counter = unsafe { &*data.cast::<core::sync::atomic::AtomicU64>() };
    counter.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

#[cfg(xendma_testdev)]
impl CApiUmem {
    /// `odp_umem_get` for the calling process, counting invalidations in `counter`.
    pub fn get(
        dev: &Device,
        start: u64,
        len: u64,
        page_shift: u32,
        access: u32,
        counter: &'static core::sync::atomic::AtomicU64,
    ) -> Result<Self> {
        let dev_ptr = core::ptr::from_ref(dev).cast_mut().cast();
        // SAFETY: a valid device that the caller keeps bound while the umem lives (the test
        // device drops its umems before the registration); the callback and its counter are
        // `'static`.
        let raw = unsafe {
            bindings::odp_umem_get(
                dev_ptr,
                start as kernel::ffi::c_ulong,
                len as kernel::ffi::c_ulong,
                page_shift,
                access,
                Some(count_invalidation),
                core::ptr::from_ref(counter).cast_mut().cast(),
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
            bindings::odp_umem_map_and_lock(
                self.raw.as_ptr(),
                addr as kernel::ffi::c_ulong,
                len as kernel::ffi::c_ulong,
                access,
            )
        };
        if rc != 0 {
            return Err(kernel::error::Error::from_errno(rc));
        }
        let lookup = |a: u64| {
            // SAFETY: live and locked by this task.
            let bus = unsafe {
                bindings::odp_umem_dma_addr(self.raw.as_ptr(), a as kernel::ffi::c_ulong)
            };
            (bus != DMA_MAPPING_ERROR).then_some(bus)
        };
        let r = f(&lookup);
        // SAFETY: locked by this task just above.
        unsafe { bindings::odp_umem_unlock(self.raw.as_ptr()) };
        Ok(r)
    }

    /// `odp_umem_unmap`.
    pub fn unmap(&self, addr: u64, len: u64) -> Result {
        // SAFETY: live, not locked by this task.
        let rc = unsafe {
            bindings::odp_umem_unmap(
                self.raw.as_ptr(),
                addr as kernel::ffi::c_ulong,
                len as kernel::ffi::c_ulong,
            )
        };
        if rc != 0 {
            return Err(kernel::error::Error::from_errno(rc));
        }
        Ok(())
    }
}

#[cfg(xendma_testdev)]
impl Drop for CApiUmem {
    fn drop(&mut self) {
        // SAFETY: live, unlocked, released once (type invariant).
        unsafe { bindings::odp_umem_release(self.raw.as_ptr()) };
    }
}
