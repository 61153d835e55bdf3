// SPDX-License-Identifier: GPL-2.0

//! debugfs directories: files whose contents come from a Rust object, and `u64` counters.
//!
//! A [`Debugfs`] directory owns its files and a reference on the object that serves them
//! ([`Source`]); each file has a numeric id that the object dispatches on. Dropping the
//! directory removes the files first (which waits for readers and writers in progress), then
//! drops the reference, so a callback never sees a freed object. A [`Counters`] directory holds
//! read-only files of static `u64` counters (`debugfs_create_u64`).

use crate::kext::bindings as ffi;
#[cfg(xendma_kernel_7)]
use crate::kext::compat::CStrExt as _;
use core::fmt::{self, Write};
use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;
use kernel::prelude::*;
use kernel::sync::Arc;

/// The text a [`Source::show`] call writes (at most one page; longer output is refused).
pub struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// What serves the files of a [`Debugfs`] directory.
pub trait Source: Send + Sync + 'static {
    /// Writes the contents of file `id`.
    fn show(&self, id: u32, out: &mut Out<'_>) -> fmt::Result;
    /// Handles a write of `input` (at most 127 bytes) to file `id`.
    fn store(&self, id: u32, input: &[u8]) -> Result;
}

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
        // SAFETY: a valid directory and name; `ctx` outlives the file (type invariant).
        let f = unsafe {
            ffi::xendma_debugfs_file_create(
                name.as_char_ptr(),
                self.dir.as_ptr(),
                mode,
                ctx.cast(),
                id,
                Some(Self::show_tramp),
                Some(Self::store_tramp),
            )
        };
        let f = kernel::error::from_err_ptr(f)?;
        // INVARIANT: created in `dir` with `source` as context.
        self.files
            .push(NonNull::new(f).ok_or(ENOMEM)?, GFP_KERNEL)?;
        Ok(())
    }

    /// # Safety
    ///
    /// Called by the C side for a file created by [`Self::add`], with `ctx` and a buffer of
    /// `len` bytes.
    unsafe extern "C" fn show_tramp(
        ctx: *const core::ffi::c_void,
        id: u32,
        buf: *mut kernel::ffi::c_char,
        len: usize,
    ) -> kernel::ffi::c_long {
        // SAFETY: `ctx` is the `T` the file was created with, alive until the file is removed
        // (type invariant of `Debugfs`).
        let source = unsafe { &*ctx.cast::<T>() };
        // SAFETY: the C side passes a buffer of `len` writable bytes for this call only.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        let mut out = Out { buf, len: 0 };
        match source.show(id, &mut out) {
            Ok(()) => out.len as kernel::ffi::c_long,
            Err(_) => EFBIG.to_errno() as kernel::ffi::c_long,
        }
    }

    /// # Safety
    ///
    /// Called by the C side for a file created by [`Self::add`], with `ctx` and a buffer of
    /// `len` bytes.
    unsafe extern "C" fn store_tramp(
        ctx: *const core::ffi::c_void,
        id: u32,
        buf: *const kernel::ffi::c_char,
        len: usize,
    ) -> kernel::ffi::c_int {
        // SAFETY: as in `show_tramp`.
        let source = unsafe { &*ctx.cast::<T>() };
        // SAFETY: the C side passes `len` readable bytes for this call only.
        let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
        match source.store(id, input) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
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
