// SPDX-License-Identifier: GPL-2.0

//! A spinlock taken with interrupts disabled (`spin_lock_irqsave`).
//!
//! The 6.12 `kernel` crate only has a spinlock that leaves interrupts enabled. DMA operations
//! run in hard interrupt context too (a block driver unmaps its buffers from its completion
//! interrupt), so a lock that a DMA operation takes must keep interrupts off while held, or an
//! interrupt on the same CPU could spin on it forever.

use crate::kext::bindings as ffi;
use kernel::bindings;
use kernel::sync::lock::{Backend, Lock};

/// A spinlock that disables interrupts while held; see the module documentation.
///
/// Create one with [`new_irq_spinlock!`](crate::new_irq_spinlock).
pub type IrqSpinLock<T> = Lock<T, IrqSpinLockBackend>;

/// Creates an [`IrqSpinLock`] initialiser with a lock class of its own.
#[macro_export]
macro_rules! new_irq_spinlock {
    ($inner:expr, $name:literal $(,)?) => {
        $crate::kext::irqlock::IrqSpinLock::new(
            $inner,
            kernel::c_str!($name),
            kernel::static_lock_class!(),
        )
    };
}

/// The backend of [`IrqSpinLock`]: `spinlock_t` with the saved interrupt flags as guard state.
pub struct IrqSpinLockBackend;

// SAFETY: `spin_lock_irqsave` gives exclusive ownership until the matching unlock, and the
// saved flags are handed back to `spin_unlock_irqrestore` by the guard that got them.
unsafe impl Backend for IrqSpinLockBackend {
    type State = bindings::spinlock_t;
    type GuardState = kernel::ffi::c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: the caller passes a writable lock and a name and key that live forever.
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: the caller guarantees that `init` ran on `ptr`.
        unsafe { ffi::xendma_spin_lock_irqsave(ptr.cast()) }
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // SAFETY: the caller owns the lock; the flags are those its `lock` returned.
        unsafe { ffi::xendma_spin_unlock_irqrestore(ptr.cast(), *guard_state) }
    }

    // 7.x's `Backend` also asks for these two.
    #[cfg(xendma_kernel_7)]
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        let mut flags = 0;
        // SAFETY: the caller guarantees that `init` ran on `ptr`; `flags` is writable.
        unsafe { ffi::xendma_spin_trylock_irqsave(ptr.cast(), &mut flags) }.then_some(flags)
    }

    #[cfg(xendma_kernel_7)]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: the caller guarantees that `init` ran on `ptr`.
        unsafe { ffi::xendma_spin_assert_held(ptr.cast()) }
    }
}
