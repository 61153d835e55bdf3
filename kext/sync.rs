// SPDX-License-Identifier: GPL-2.0

//! Small kernel services: module references, work flushing, sleeping, the number of CPUs,
//! ratelimiting. (The irq-saving spinlock is `kext::irqlock`, the list published to lock-free
//! readers `kext::publish`.)

use crate::kext::bindings as ffi;

/// Waits until `work` is neither queued nor running.
pub fn flush_work<T: ?Sized, const ID: u64>(work: &kernel::workqueue::Work<T, ID>) {
    // SAFETY: `work` is an initialised work item that lives across the call; `flush_work` only
    // waits for it.
    unsafe { ffi::flush_work(kernel::workqueue::Work::raw_get(work)) };
}

/// Sleeps for at least `ms` milliseconds (process context only).
pub fn msleep(ms: u32) {
    // SAFETY: `msleep` has no memory-safety requirements; calling it in atomic context is a bug
    // that CONFIG_DEBUG_ATOMIC_SLEEP reports.
    unsafe { ffi::msleep(ms) };
}

/// Number of CPUs the system may ever have.
pub fn possible_cpus() -> usize {
    // SAFETY: no requirements.
    unsafe { ffi::xendma_possible_cpus() as usize }
}

/// Whether a rate-limited warning may be printed now (one shared budget, as
/// `pr_warn_ratelimited`'s default: 10 messages per 5 seconds).
pub fn warn_ratelimit() -> bool {
    // SAFETY: no requirements.
    unsafe { ffi::xendma_warn_ratelimit() }
}

/// A reference on a module, which keeps it from being unloaded; dropped, it is given back.
///
/// # Invariants
///
/// Holds one reference on `module` taken by `try_module_get`.
pub struct ModuleRef(&'static kernel::ThisModule);

impl ModuleRef {
    /// Takes a reference; `None` if the module is going away.
    pub fn get(module: &'static kernel::ThisModule) -> Option<Self> {
        // SAFETY: a module descriptor of a loaded module.
        // INVARIANT: the reference is taken when this returns true.
        unsafe { ffi::xendma_module_get(module.as_ptr()) }.then_some(Self(module))
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: gives back the reference taken by `get` (type invariant).
        unsafe { ffi::xendma_module_put(self.0.as_ptr()) };
    }
}

/// `pr_warn!`, within the shared budget of [`warn_ratelimit`] (6.12's `kernel` crate has no
/// ratelimited printing).
#[macro_export]
macro_rules! warn_ratelimited {
    ($($arg:tt)*) => {
        if $crate::kext::sync::warn_ratelimit() {
            kernel::pr_warn!($($arg)*);
        }
    };
}
