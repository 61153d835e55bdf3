// SPDX-License-Identifier: GPL-2.0

//! Files whose contents come from a Rust object: what the debugfs files of
//! [`crate::kext::debugfs`] and the module's sysfs attributes (`kext::sysfs`) share.
//!
//! The object implements [`Source`]; each file carries a numeric id the object dispatches on.
//! The C side (`kext/helpers/debugfs.c`, `kext/helpers/sysfs.c`) calls [`show_tramp`] and
//! [`store_tramp`] with the object as context.

use core::fmt::{self, Write};
use kernel::prelude::*;

/// The text a [`Source::show`] call writes (at most the buffer the file offers, one page for
/// sysfs; longer output is refused).
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

/// What serves a set of files.
pub trait Source: Send + Sync + 'static {
    /// Writes the contents of file `id`.
    fn show(&self, id: u32, out: &mut Out<'_>) -> fmt::Result;
    /// Handles a write of `input` (at most 127 bytes) to file `id`.
    fn store(&self, id: u32, input: &[u8]) -> Result;
}

/// The read callback the C side calls: fills `buf` from [`Source::show`] and returns the length,
/// or `-EFBIG` if the text does not fit.
///
/// # Safety
///
/// `ctx` points to a `T` that stays alive for the call (the owner of the file removes it, which
/// waits for callbacks in progress, before it drops the `T`), and `buf` to `len` writable bytes
/// that nothing else accesses during the call.
pub(crate) unsafe extern "C" fn show_tramp<T: Source>(
    ctx: *const core::ffi::c_void,
    id: u32,
    buf: *mut kernel::ffi::c_char,
    len: usize,
) -> kernel::ffi::c_long {
    // SAFETY: `ctx` is a live `T` (the function's safety requirement).
    let source = unsafe { &*ctx.cast::<T>() };
    // SAFETY: `len` writable bytes, ours for this call (the function's safety requirement).
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    let mut out = Out { buf, len: 0 };
    match source.show(id, &mut out) {
        Ok(()) => out.len as kernel::ffi::c_long,
        Err(_) => EFBIG.to_errno() as kernel::ffi::c_long,
    }
}

/// The write callback the C side calls: passes `len` bytes to [`Source::store`] and returns 0 or
/// a negative errno.
///
/// # Safety
///
/// `ctx` points to a `T` that stays alive for the call (as for [`show_tramp`]), and `buf` to
/// `len` readable bytes that do not change during the call.
pub(crate) unsafe extern "C" fn store_tramp<T: Source>(
    ctx: *const core::ffi::c_void,
    id: u32,
    buf: *const kernel::ffi::c_char,
    len: usize,
) -> kernel::ffi::c_int {
    // SAFETY: `ctx` is a live `T` (the function's safety requirement).
    let source = unsafe { &*ctx.cast::<T>() };
    // SAFETY: `len` readable bytes for this call (the function's safety requirement).
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    match source.store(id, input) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}
