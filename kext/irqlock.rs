// SPDX-License-Identifier: GPL-2.0

//! A spinlock taken with interrupts disabled (`spin_lock_irqsave`).
//!
//! The 6.12 `kernel` crate only has a spinlock that leaves interrupts enabled. DMA operations
//! run in hard interrupt context too (a block driver unmaps its buffers from its completion
//! interrupt), so a lock that a DMA operation takes must keep interrupts off while held, or an
//! interrupt on the same CPU could spin on it forever.

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
        // Outside PREEMPT_RT, `spin_lock_irqsave` is `_raw_spin_lock_irqsave` on the `rlock` that
        // begins the `spinlock_t` (linux/spinlock.h): called directly, without the C wrapper's
        // extra call on the mapping path.
        #[cfg(not(CONFIG_PREEMPT_RT))]
        // SAFETY: the caller guarantees that `init` ran on `ptr`; `rlock` is the first member of
        // `spinlock_t`'s union, at offset 0, when PREEMPT_RT is off.
        return unsafe { bindings::_raw_spin_lock_irqsave(ptr.cast()) };
        #[cfg(CONFIG_PREEMPT_RT)]
        // SAFETY: the caller guarantees that `init` ran on `ptr`.
        return unsafe { crate::kext::bindings::xendma_spin_lock_irqsave(ptr.cast()) };
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        #[cfg(not(CONFIG_PREEMPT_RT))]
        // SAFETY: the caller owns the lock, whose `rlock` is at offset 0 (see `lock`); the flags
        // are those its `lock` returned.
        unsafe {
            bindings::_raw_spin_unlock_irqrestore(ptr.cast(), *guard_state)
        };
        #[cfg(CONFIG_PREEMPT_RT)]
        // SAFETY: the caller owns the lock; the flags are those its `lock` returned.
        unsafe {
            crate::kext::bindings::xendma_spin_unlock_irqrestore(ptr.cast(), *guard_state)
        };
    }

    // 7.x's `Backend` also asks for these two.
    #[cfg(xendma_kernel_7)]
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        let mut flags = 0;
        // SAFETY: the caller guarantees that `init` ran on `ptr`; `flags` is writable.
        unsafe { crate::kext::bindings::xendma_spin_trylock_irqsave(ptr.cast(), &mut flags) }
            .then_some(flags)
    }

    #[cfg(xendma_kernel_7)]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: the caller guarantees that `init` ran on `ptr`.
        unsafe { crate::kext::bindings::xendma_spin_assert_held(ptr.cast()) }
    }
}
