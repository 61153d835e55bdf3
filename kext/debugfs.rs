// SPDX-License-Identifier: GPL-2.0

//! debugfs directories: files whose contents come from a Rust object ([`Source`], shared with
//! the sysfs files of `kext::sysfs`), and `u64` counters.
//!
//! A [`Debugfs`] directory owns its files and a reference on the object that serves them
//! ([`Source`]); each file has a numeric id that the object dispatches on. Dropping the
//! directory removes the files first (which waits for readers and writers in progress), then
//! drops the reference, so a callback never sees a freed object. A [`Counters`] directory holds
//! read-only files of static `u64` counters (`debugfs_create_u64`).

use crate::kext::bindings as ffi;
#[cfg(xendma_kernel_7)]
use crate::kext::compat::CStrExt as _;
use crate::kext::files;
pub use crate::kext::files::{Out, Source};
use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;
use kernel::prelude::*;
use kernel::sync::Arc;

/// A debugfs directory with files served by `T`.
///
/// # Invariants
///
/// `dir` is a debugfs directory we created; every entry of `files` is a file created in it with
/// `&*source` as context and `T`'s trampolines, removed before `source` is dropped.
pub struct Debugfs<T: Source> {
    dir: NonNull<ffi::dentry>,
    files: KVec<NonNull<ffi::xendma_debugfs_file>>,
    source: Arc<T>,
}

// SAFETY: the C objects are only touched by `add` (`&mut self`) and `drop`.
unsafe impl<T: Source> Send for Debugfs<T> {}
// SAFETY: shared references give no access to the C objects.
unsafe impl<T: Source> Sync for Debugfs<T> {}

impl<T: Source> Debugfs<T> {
    /// Creates directory `name` at the top of debugfs.
    pub fn new(name: &CStr, source: Arc<T>) -> Result<Self> {
        // SAFETY: a NUL-terminated name; a NULL parent means the debugfs root.
        let dir = unsafe { ffi::xendma_debugfs_dir(name.as_char_ptr(), core::ptr::null_mut()) };
        let dir = kernel::error::from_err_ptr(dir)?;
        Ok(Self {
            dir: NonNull::new(dir).ok_or(ENOMEM)?,
            files: KVec::new(),
            source,
        })
    }

    /// The object serving the files.
    pub fn source(&self) -> &Arc<T> {
        &self.source
    }

    /// Adds file `name` with permissions `mode` (0444 read-only, 0200 write-only, 0644 both),
    /// served as file `id`.
    pub fn add(&mut self, name: &CStr, mode: u16, id: u32) -> Result {
        self.files.reserve(1, GFP_KERNEL)?;
        let ctx: *const T = &*self.source;
        // SAFETY: a valid directory and name. The trampolines' requirements hold: `ctx` outlives
        // the file (type invariant; `drop` removes the file, waiting for callbacks in progress,
        // before it drops `source`), and `debugfs.c` passes them its own buffer of `len` bytes.
        let f = unsafe {
            ffi::xendma_debugfs_file_create(
                name.as_char_ptr(),
                self.dir.as_ptr(),
                mode,
                ctx.cast(),
                id,
                Some(files::show_tramp::<T>),
                Some(files::store_tramp::<T>),
            )
        };
        let f = kernel::error::from_err_ptr(f)?;
        // INVARIANT: created in `dir` with `source` as context.
        self.files
            .push(NonNull::new(f).ok_or(ENOMEM)?, GFP_KERNEL)?;
        Ok(())
    }
}

impl<T: Source> Drop for Debugfs<T> {
    fn drop(&mut self) {
        for f in self.files.iter() {
            // SAFETY: created by `add` and not removed yet; removal waits for callbacks in
            // progress, so none runs once this returns.
            unsafe { ffi::xendma_debugfs_file_remove(f.as_ptr()) };
        }
        // SAFETY: created by `new`; its files are gone.
        unsafe { ffi::xendma_debugfs_dir_remove(self.dir.as_ptr()) };
    }
}

/// A debugfs directory of read-only `u64` counters, removed on drop. Without debugfs
/// (`debugfs_create_dir` fails) nothing is created and nothing fails: counters are optional.
///
/// # Invariants
///
/// `dir` is a directory created by `xendma_debugfs_dir`, or `None` if that failed.
pub struct Counters {
    dir: Option<NonNull<ffi::dentry>>,
}

// SAFETY: the directory is only touched by `new` and `drop`.
unsafe impl Send for Counters {}
// SAFETY: shared references give no access to the directory.
unsafe impl Sync for Counters {}

impl Counters {
    /// Creates `/sys/kernel/debug/<name>/` with one file per counter.
    pub fn new(name: &'static CStr, counters: &[(&'static CStr, &'static AtomicU64)]) -> Self {
        // SAFETY: a NUL-terminated name; a NULL parent means the debugfs root.
        let dir = unsafe { ffi::xendma_debugfs_dir(name.as_char_ptr(), core::ptr::null_mut()) };
        let dir = kernel::error::from_err_ptr(dir).ok().and_then(NonNull::new);
        if let Some(dir) = dir {
            for (file, value) in counters {
                // SAFETY: a valid directory; static names and counters, which outlive the
                // directory; debugfs reads the counter as a plain `u64`, which an `AtomicU64`
                // is in memory.
                unsafe {
                    ffi::debugfs_create_u64(file.as_char_ptr(), 0o444, dir.as_ptr(), value.as_ptr())
                };
            }
        }
        // INVARIANT: from `xendma_debugfs_dir`, or `None`.
        Self { dir }
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        if let Some(dir) = self.dir {
            // SAFETY: created by `new` (type invariant); removes the files too.
            unsafe { ffi::xendma_debugfs_dir_remove(dir.as_ptr()) };
        }
    }
}
