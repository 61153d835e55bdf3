// SPDX-License-Identifier: GPL-2.0

//! A minimal misc device abstraction (Linux 6.12's `kernel` crate has none).
//!
//! The C side (`kext/helpers/miscdev.c`) owns the `struct miscdevice` and its `file_operations`, and keeps
//! them alive, reference counted, until the last open file is closed. Rust implements
//! [`MiscDevice`]: what `open` builds per file, and `mmap` and `ioctl` on it.

use crate::kext::bindings::{
    vm_area_struct, xendma_misc, xendma_misc_deregister, xendma_misc_register,
};
use crate::kext::mm::VmArea;
use core::{ffi::c_void, ptr::NonNull};
use kernel::{
    alloc::{flags::GFP_KERNEL, KBox},
    error::{code::ENOTTY, from_err_ptr, Result},
    str::CStr,
    sync::{Arc, ArcBorrow},
    ThisModule,
};

/// A misc device (`/dev/NAME`).
pub trait MiscDevice: Send + Sync + 'static {
    /// What each open file holds.
    type File: Send + Sync;
    /// The device node's name.
    const NAME: &'static CStr;

    /// Builds the state of a newly opened file; an error fails the `open`.
    fn open(&self) -> Result<KBox<Self::File>>;

    /// Maps the file into user space; `ENODEV` unless implemented.
    fn mmap(&self, _file: &Self::File, _vma: &VmArea) -> Result {
        Err(kernel::error::code::ENODEV)
    }

    /// Handles an ioctl; `ENOTTY` unless implemented. `arg` is the raw argument (a user address
    /// for most commands, to be read with `kernel::uaccess`).
    fn ioctl(&self, _file: &Self::File, _cmd: u32, _arg: usize) -> Result<isize> {
        Err(ENOTTY)
    }
}

/// The state of one open file.
struct OpenFile<T: MiscDevice> {
    dev: Arc<T>,
    file: KBox<T::File>,
}

/// A registered misc device; deregistered on drop. Files that are still open keep the device's
/// state (an [`Arc`]) and their own until they are closed.
///
/// # Invariants
///
/// `raw` was registered by `xendma_misc_register` with `T`'s trampolines and the context
/// pointer `ctx`, obtained from `Arc::into_raw` of a clone of `dev`, which the registration owns.
pub struct MiscRegistration<T: MiscDevice> {
    raw: NonNull<xendma_misc>,
    ctx: *const T,
    dev: Arc<T>,
}

// SAFETY: a handle to a C object that the misc core serialises, and an `Arc` of `Send + Sync`
// state.
unsafe impl<T: MiscDevice> Send for MiscRegistration<T> {}
// SAFETY: as above.
unsafe impl<T: MiscDevice> Sync for MiscRegistration<T> {}

impl<T: MiscDevice> MiscRegistration<T> {
    /// Registers `/dev/<T::NAME>` with a dynamic minor, serving files with `dev`.
    pub fn new(dev: T, module: &'static ThisModule) -> Result<Self> {
        let dev = Arc::new(dev, GFP_KERNEL)?;
        let ctx = Arc::into_raw(dev.clone());
        // SAFETY: the name is static, the trampolines match the C prototypes, `module` is this
        // module, and `ctx` stays valid until the registration is dropped.
        let raw = from_err_ptr(unsafe {
            xendma_misc_register(
                T::NAME.as_char_ptr(),
                ctx.cast_mut().cast(),
                Some(Self::open_callback),
                Some(Self::release_callback),
                Some(Self::mmap_callback),
                Some(Self::ioctl_callback),
                module.as_ptr(),
            )
        });
        match raw.ok().and_then(NonNull::new) {
            // INVARIANT: registered just above with `ctx` from `Arc::into_raw`.
            Some(raw) => Ok(Self { raw, ctx, dev }),
            None => {
                // SAFETY: `ctx` came from `Arc::into_raw` and the C side did not keep it.
                drop(unsafe { Arc::from_raw(ctx) });
                Err(raw.err().unwrap_or(kernel::error::code::ENOMEM))
            }
        }
    }

    /// The device's state.
    pub fn device(&self) -> &T {
        &self.dev
    }

    /// # Safety
    ///
    /// `ctx` is the context pointer given at registration, and the registration is live (misc
    /// core guarantees this while it calls `open`, under the lock deregistration takes).
    unsafe extern "C" fn open_callback(
        ctx: *mut c_void,
        err: *mut core::ffi::c_int,
    ) -> *mut c_void {
        // SAFETY: `ctx` is an `Arc<T>` pointer kept alive by the live registration.
        let dev: Arc<T> = unsafe { ArcBorrow::from_raw(ctx.cast::<T>()) }.into();
        let opened = dev
            .open()
            .and_then(|file| Ok(KBox::new(OpenFile { dev, file }, GFP_KERNEL)?));
        match opened {
            Ok(f) => KBox::into_raw(f).cast(),
            Err(e) => {
                // SAFETY: `err` is the C caller's out parameter.
                unsafe { *err = e.to_errno() };
                core::ptr::null_mut()
            }
        }
    }

    /// # Safety
    ///
    /// `file` is a pointer `open_callback` returned, released once.
    unsafe extern "C" fn release_callback(file: *mut c_void) {
        // SAFETY: made by `KBox::into_raw` in `open_callback`; this is the last use.
        drop(unsafe { KBox::from_raw(file.cast::<OpenFile<T>>()) });
    }

    /// # Safety
    ///
    /// `file` is a live pointer from `open_callback`; `vma` is the VMA of this `mmap` call.
    unsafe extern "C" fn mmap_callback(
        file: *mut c_void,
        vma: *mut vm_area_struct,
    ) -> core::ffi::c_int {
        // SAFETY: the file is open, so its state is alive.
        let f = unsafe { &*file.cast::<OpenFile<T>>() };
        // SAFETY: `vma` is the VMA of the running mmap operation; the borrow ends with it.
        let vma = unsafe { VmArea::from_raw(vma) };
        match f.dev.mmap(&f.file, vma) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `file` is a live pointer from `open_callback`.
    unsafe extern "C" fn ioctl_callback(
        file: *mut c_void,
        cmd: core::ffi::c_uint,
        arg: kernel::ffi::c_ulong,
    ) -> kernel::ffi::c_long {
        // SAFETY: the file is open, so its state is alive.
        let f = unsafe { &*file.cast::<OpenFile<T>>() };
        match f.dev.ioctl(&f.file, cmd, arg) {
            Ok(v) => v as _,
            Err(e) => e.to_errno() as _,
        }
    }
}

impl<T: MiscDevice> Drop for MiscRegistration<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant). After deregistration no `open` runs, so the
        // context reference given to C can be dropped; open files hold their own.
        unsafe {
            xendma_misc_deregister(self.raw.as_ptr());
            drop(Arc::from_raw(self.ctx));
        }
    }
}
