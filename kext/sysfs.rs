// SPDX-License-Identifier: GPL-2.0

//! Attributes of the module's own sysfs directory, `/sys/module/<name>/`, served by a Rust
//! object ([`Source`], as for debugfs files).
//!
//! Unlike debugfs, sysfs stays writable under lockdown (`lockdown=integrity`, or Secure Boot on
//! Debian's kernels), so the operations an administrator needs at run time live here too.

use crate::kext::bindings as ffi;
#[cfg(xendma_kernel_7)]
use crate::kext::compat::CStrExt as _;
use crate::kext::files::{self, Source};
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::sync::Arc;

/// Attributes in the calling module's sysfs directory, served by `T`, removed on drop.
///
/// # Invariants
///
/// Every entry of `files` is an attribute created by `xendma_sysfs_file_create` with `&*source`
/// as context and `T`'s trampolines, removed before `source` is dropped.
pub struct ModuleAttrs<T: Source> {
    files: KVec<NonNull<ffi::xendma_sysfs_file>>,
    source: Arc<T>,
}

// SAFETY: the C objects are only touched by `add` (`&mut self`) and `drop`.
unsafe impl<T: Source> Send for ModuleAttrs<T> {}
// SAFETY: shared references give no access to the C objects.
unsafe impl<T: Source> Sync for ModuleAttrs<T> {}

impl<T: Source> ModuleAttrs<T> {
    /// No attributes yet; `source` will serve those that [`Self::add`] creates.
    pub fn new(source: Arc<T>) -> Self {
        Self {
            files: KVec::new(),
            source,
        }
    }

    /// Adds attribute `name` with permissions `mode` (0444 read-only, 0200 write-only, 0644
    /// both), served as file `id`. Reads get one page; writes at most 127 bytes.
    pub fn add(&mut self, name: &'static CStr, mode: u16, id: u32) -> Result {
        self.files.reserve(1, GFP_KERNEL)?;
        let ctx: *const T = &*self.source;
        // SAFETY: a static NUL-terminated name. The trampolines' requirements hold: `ctx`
        // outlives the attribute (type invariant; `drop` removes it, which waits for callbacks in
        // progress, before it drops `source`), and `sysfs.c` passes them the page sysfs gives it
        // (reads) or the NUL-terminated copy of the write.
        let f = unsafe {
            ffi::xendma_sysfs_file_create(
                name.as_char_ptr(),
                mode,
                ctx.cast(),
                id,
                Some(files::show_tramp::<T>),
                Some(files::store_tramp::<T>),
            )
        };
        let f = kernel::error::from_err_ptr(f)?;
        // INVARIANT: created with `source` as context.
        self.files
            .push(NonNull::new(f).ok_or(ENOMEM)?, GFP_KERNEL)?;
        Ok(())
    }
}

impl<T: Source> Drop for ModuleAttrs<T> {
    fn drop(&mut self) {
        for f in self.files.iter() {
            // SAFETY: created by `add` and not removed yet; removal waits for callbacks in
            // progress, so none runs once this returns.
            unsafe { ffi::xendma_sysfs_file_remove(f.as_ptr()) };
        }
    }
}
