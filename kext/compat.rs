// SPDX-License-Identifier: GPL-2.0

//! What moved or changed shape between the `kernel` crates of 6.12 and 7.x, in one place.
//!
//! The rest of the project names these items through here, so that no other file needs a version
//! conditional. The cfg `xendma_kernel_7` is set by `Kbuild` from the version of the tree being
//! built against.

use kernel::device::Device;

/// A reference-counted kernel object (`kernel::types::ARef` in 6.12, `kernel::sync::aref::ARef`
/// in 7.x).
#[cfg(xendma_kernel_7)]
pub use kernel::sync::aref::ARef;
#[cfg(not(xendma_kernel_7))]
pub use kernel::types::ARef;

/// Builds a pin-initialiser from a closure (`kernel::init` in 6.12, the `pin_init` crate in 7.x).
#[cfg(not(xendma_kernel_7))]
pub use kernel::init::pin_init_from_closure;
/// Builds a pin-initialiser from a closure (`kernel::init` in 6.12, the `pin_init` crate in 7.x).
#[cfg(xendma_kernel_7)]
pub use pin_init::pin_init_from_closure;

/// Types that may be read from and written to as bytes (`kernel::types` in 6.12,
/// `kernel::transmute` in 7.x).
#[cfg(xendma_kernel_7)]
pub use kernel::transmute::{AsBytes, FromBytes};
#[cfg(not(xendma_kernel_7))]
pub use kernel::types::{AsBytes, FromBytes};

/// The `CStr` methods of 6.12's own type that 7.x (where `CStr` is `core::ffi::CStr`) provides
/// through an extension trait.
#[cfg(xendma_kernel_7)]
pub use kernel::str::CStrExt;

/// The device behind a raw `struct device` pointer, for the length of a borrow
/// (`Device::as_ref` in 6.12, `Device::from_raw` in 7.x).
///
/// # Safety
///
/// `ptr` points to a valid `struct device` that stays alive, and keeps a reference, for `'a`.
pub unsafe fn device<'a>(ptr: *mut kernel::bindings::device) -> &'a Device {
    // SAFETY: the caller's guarantee is the callee's.
    #[cfg(xendma_kernel_7)]
    let dev = unsafe { Device::from_raw(ptr) };
    // SAFETY: the caller's guarantee is the callee's.
    #[cfg(not(xendma_kernel_7))]
    let dev = unsafe { Device::as_ref(ptr) };
    dev
}

/// The bytes of a C string, without the NUL (`as_bytes` in 6.12, `to_bytes` in 7.x).
pub fn cstr_bytes(s: &kernel::str::CStr) -> &[u8] {
    #[cfg(xendma_kernel_7)]
    let b = s.to_bytes();
    #[cfg(not(xendma_kernel_7))]
    let b = s.as_bytes();
    b
}

/// The user memory `[addr, addr + len)` (an ioctl's argument, say); 7.x takes the address as a
/// `UserPtr`.
pub fn user_slice(addr: usize, len: usize) -> kernel::uaccess::UserSlice {
    #[cfg(xendma_kernel_7)]
    let addr = kernel::uaccess::UserPtr::from_addr(addr);
    kernel::uaccess::UserSlice::new(addr, len)
}

/// Nanoseconds of the monotonic clock (`ktime_get`; 6.12's `Ktime` is gone in 7.x, whose
/// `Instant` is generic over the clock).
pub fn monotonic_ns() -> u64 {
    // SAFETY: `ktime_get` has no requirements.
    let ns = unsafe { crate::kext::bindings::ktime_get() };
    ns as u64
}

/// `kernel::module!` with one author (the key is `author` in 6.12, `authors: [...]` in 7.x).
#[cfg(xendma_kernel_7)]
#[macro_export]
macro_rules! xendma_module {
    (type: $t:tt, name: $n:tt, author: $a:tt, description: $d:tt,
     license: $l:tt $(,)?) => {
        kernel::prelude::module! {
            type: $t,
            name: $n,
            authors: [$a],
            description: $d,
            license: $l,
        }
    };
}

/// `kernel::module!` with one author (the key is `author` in 6.12, `authors: [...]` in 7.x).
#[cfg(not(xendma_kernel_7))]
#[macro_export]
macro_rules! xendma_module {
    (type: $t:tt, name: $n:tt, author: $a:tt, description: $d:tt,
     license: $l:tt $(,)?) => {
        kernel::prelude::module! {
            type: $t,
            name: $n,
            author: $a,
            description: $d,
            license: $l,
        }
    };
}
