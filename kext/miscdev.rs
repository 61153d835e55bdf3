// SPDX-License-Identifier: GPL-2.0

//! A minimal misc device abstraction (Linux 6.12's `kernel` crate has none).
//!
//! [`MiscRegistration`] builds the C objects in Rust, the way `kext/dma/ops.rs` builds
//! `struct dma_map_ops`: the `struct file_operations` is a constant table per [`MiscDevice`] type
//! (in the module's read-only data, owned by the module, which every open file pins), whose
//! entries are trampolines generic over the type; the `struct miscdevice` lives in a reference
//! counted allocation ([`Arc`]) with the device's state. The registration holds one reference,
//! and every open file another (`open` finds the allocation from the `miscdevice` that
//! `misc_open` put in `file->private_data`), so that files may outlive the deregistration: the
//! allocation is freed when the last of them is released. Rust implements [`MiscDevice`]: what
//! `open` builds per file, and `mmap` and `ioctl` on it.

use crate::kext::bindings::{
    file, file_operations, inode, misc_deregister, misc_register, miscdevice, module,
    vm_area_struct, MISC_DYNAMIC_MINOR,
};
#[cfg(xendma_kernel_7)]
use crate::kext::compat::CStrExt as _;
use crate::kext::mm::VmArea;
use kernel::{
    alloc::{flags::GFP_KERNEL, KBox},
    error::{
        code::{EINVAL, ENOTTY},
        to_result, Result,
    },
    str::CStr,
    sync::{Arc, ArcBorrow},
    types::Opaque,
    ThisModule,
};

// Only the address of the static is used. `struct module` embeds an empty C structure
// (`dev_archdata` on x86), which the lint calls not FFI-safe.
#[allow(improper_ctypes)]
extern "C" {
    /// The `struct module` of the module this code is linked into (C's `THIS_MODULE`), which
    /// modpost defines for every module.
    static __this_module: Opaque<module>;
}

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

/// The reference counted part of a registration: the `struct miscdevice` and the device's state.
///
/// # Invariants
///
/// `misc` is a dynamic-minor misc device whose file operations are
/// `MiscRegistration::<T>::fops()`. It is in the misc core's list only while the
/// [`MiscRegistration`] that made it holds its reference (from `Arc::into_raw`).
struct MiscInner<T: MiscDevice> {
    misc: Opaque<miscdevice>,
    dev: T,
}

/// The state of one open file: a reference on the registration's allocation, and what
/// [`MiscDevice::open`] built.
struct OpenFile<T: MiscDevice> {
    dev: Arc<MiscInner<T>>,
    file: KBox<T::File>,
}

/// A registered misc device; deregistered on drop. Files that are still open keep the device's
/// state (a reference on its allocation) and their own until they are closed.
///
/// # Invariants
///
/// `inner` came from `Arc::into_raw`, whose reference the registration owns, and its `misc` is
/// registered with the misc core.
pub struct MiscRegistration<T: MiscDevice> {
    inner: *const MiscInner<T>,
}

// SAFETY: a reference on an allocation of C objects that the misc core serialises and of `T`,
// which is `Send + Sync`.
unsafe impl<T: MiscDevice> Send for MiscRegistration<T> {}
// SAFETY: as above; `&self` only reads `T`.
unsafe impl<T: MiscDevice> Sync for MiscRegistration<T> {}

impl<T: MiscDevice> MiscRegistration<T> {
    /// The file operations of `T`'s devices. `compat_ioctl` is the kernel's `compat_ptr_ioctl`
    /// (which converts the argument and calls `unlocked_ioctl`) when the kernel has 32-bit compat
    /// support.
    const FOPS: file_operations = file_operations {
        // SAFETY: only the address of the module's `struct module` is taken.
        owner: unsafe { __this_module.get() },
        open: Some(Self::open_callback),
        release: Some(Self::release_callback),
        mmap: Some(Self::mmap_callback),
        unlocked_ioctl: Some(Self::ioctl_callback),
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: Some(crate::kext::bindings::compat_ptr_ioctl),
        // SAFETY: all-zero is a valid `file_operations`: null pointers, `None` entries, no flags.
        ..unsafe { core::mem::zeroed() }
    };

    /// [`Self::FOPS`] as a static table.
    fn fops() -> &'static file_operations {
        &Self::FOPS
    }

    /// Registers `/dev/<T::NAME>` with a dynamic minor, serving files with `dev`. `EINVAL` if
    /// `module` is not the module this code is linked into (the owner of the file operations).
    pub fn new(dev: T, module: &'static ThisModule) -> Result<Self> {
        let fops = Self::fops();
        if !core::ptr::eq(module.as_ptr(), fops.owner) {
            return Err(EINVAL);
        }
        let inner = Arc::new(
            MiscInner {
                misc: Opaque::new(miscdevice {
                    minor: MISC_DYNAMIC_MINOR as core::ffi::c_int,
                    name: T::NAME.as_char_ptr(),
                    fops,
                    mode: 0o600,
                    ..Default::default()
                }),
                dev,
            },
            GFP_KERNEL,
        )?;
        let inner = Arc::into_raw(inner);
        // SAFETY: `misc` is filled in, with a static name and file operations, in an allocation
        // that stays alive at least until `misc_deregister` in `drop` (the reference `into_raw`
        // kept). On failure the misc core keeps no pointer to it.
        if let Err(e) = to_result(unsafe { misc_register((*inner).misc.get()) }) {
            // SAFETY: from `Arc::into_raw` above, and not registered: given back once.
            drop(unsafe { Arc::from_raw(inner) });
            return Err(e);
        }
        // INVARIANT: from `Arc::into_raw`, and registered.
        Ok(Self { inner })
    }

    /// The device's state.
    pub fn device(&self) -> &T {
        // SAFETY: the registration holds a reference on the allocation (type invariant).
        unsafe { &(*self.inner).dev }
    }

    /// `file_operations.open`: takes a reference on the device's allocation and builds the
    /// file's state, which becomes `file->private_data`.
    ///
    /// # Safety
    ///
    /// Called by `misc_open` with `file->private_data` set to the `miscdevice` of a registered
    /// [`MiscRegistration<T>`] (the only user of this table), under the misc core's lock, which
    /// `misc_deregister` takes too.
    unsafe extern "C" fn open_callback(_inode: *mut inode, filp: *mut file) -> core::ffi::c_int {
        // SAFETY: `filp` is the file being opened, not shared yet.
        let misc = unsafe { (*filp).private_data }.cast::<miscdevice>();
        // SAFETY: `misc` is the `misc` field of a `MiscInner<T>` (see the function's safety
        // section); the result points at the start of that allocation.
        let inner =
            unsafe { kernel::container_of!(misc.cast::<Opaque<miscdevice>>(), MiscInner<T>, misc) };
        // SAFETY: `inner` is what `Arc::into_raw` returned in `new` (type invariant of
        // `MiscRegistration`). The registration's reference lasts at least until
        // `misc_deregister` returns, which waits for this call (the misc core's lock), so the
        // count stays above zero while borrowed.
        let dev: Arc<MiscInner<T>> = unsafe { ArcBorrow::from_raw(inner) }.into();
        let opened = dev
            .dev
            .open()
            .and_then(|file| Ok(KBox::new(OpenFile { dev, file }, GFP_KERNEL)?));
        match opened {
            Ok(f) => {
                // SAFETY: as above; `release_callback` reclaims the box.
                unsafe { (*filp).private_data = KBox::into_raw(f).cast() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// `file_operations.release`: drops the file's state and its reference on the device's
    /// allocation, which frees the allocation if the device is deregistered and this was the
    /// last open file. The table stays (it is static, and the file pins the module).
    ///
    /// # Safety
    ///
    /// Called once per file that `open_callback` opened, after its last other file operation.
    unsafe extern "C" fn release_callback(_inode: *mut inode, filp: *mut file) -> core::ffi::c_int {
        // SAFETY: `private_data` is what `open_callback` made with `KBox::into_raw`; this is its
        // last use.
        drop(unsafe { KBox::from_raw((*filp).private_data.cast::<OpenFile<T>>()) });
        0
    }

    /// The state of an open file.
    ///
    /// # Safety
    ///
    /// `filp` is a file that `open_callback` opened and that is not released yet.
    unsafe fn open_file<'a>(filp: *mut file) -> &'a OpenFile<T> {
        // SAFETY: `private_data` is the `OpenFile` of the open file (the caller's guarantee),
        // alive until `release_callback`, which the VFS runs after every other file operation.
        unsafe { &*(*filp).private_data.cast::<OpenFile<T>>() }
    }

    /// `file_operations.mmap`.
    ///
    /// # Safety
    ///
    /// Called by the VFS on an open file of this table; `vma` is the VMA of this `mmap` call.
    unsafe extern "C" fn mmap_callback(
        filp: *mut file,
        vma: *mut vm_area_struct,
    ) -> core::ffi::c_int {
        // SAFETY: the file is open (the function's safety section).
        let f = unsafe { Self::open_file(filp) };
        // SAFETY: `vma` is the VMA of the running mmap operation; the borrow ends with it.
        let vma = unsafe { VmArea::from_raw(vma) };
        match f.dev.dev.mmap(&f.file, vma) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// `file_operations.unlocked_ioctl`.
    ///
    /// # Safety
    ///
    /// Called by the VFS on an open file of this table.
    unsafe extern "C" fn ioctl_callback(
        filp: *mut file,
        cmd: core::ffi::c_uint,
        arg: kernel::ffi::c_ulong,
    ) -> kernel::ffi::c_long {
        // SAFETY: the file is open (the function's safety section).
        let f = unsafe { Self::open_file(filp) };
        match f.dev.dev.ioctl(&f.file, cmd, arg) {
            Ok(v) => v as kernel::ffi::c_long,
            Err(e) => e.to_errno() as kernel::ffi::c_long,
        }
    }
}

impl<T: MiscDevice> Drop for MiscRegistration<T> {
    fn drop(&mut self) {
        let inner = self.inner;
        // SAFETY: registered (type invariant). When this returns, `misc_open` cannot find the
        // device any more and no `open_callback` is running; open files hold their own
        // references.
        unsafe { misc_deregister((*inner).misc.get()) };
        // SAFETY: the registration's reference, from `Arc::into_raw` in `new`, given back once.
        drop(unsafe { Arc::from_raw(inner) });
    }
}
