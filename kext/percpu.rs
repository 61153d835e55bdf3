// SPDX-License-Identifier: GPL-2.0

//! Counters with one copy per CPU (`alloc_percpu`).
//!
//! Adding touches only the running CPU's copy, the way `this_cpu_add` does: on x86-64 one `add`
//! to a `%gs`-relative address, without a `lock` prefix and without a call, so a counter bumped on
//! every mapping neither costs an atomic read-modify-write nor moves a cache line between CPUs.
//! Reading sums the copies of all possible CPUs, as `percpu_counter_sum` does: exact once the
//! adders have stopped, and while they run, a value that each add is either in or not.

use crate::kext::bindings as ffi;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::prelude::*;

/// `N` counters of `u64`, each with one copy per possible CPU, that wrap on overflow.
///
/// # Invariants
///
/// `ptr` is the per-CPU pointer (the value `alloc_percpu` returned, not an address) of `N`
/// zero-initialised `u64`s, owned by this value and given back by `drop`.
pub struct PerCpuCounters<const N: usize> {
    ptr: NonNull<c_void>,
}

// SAFETY: a CPU's copy is only ever changed by `add` running on that CPU, with one instruction
// (or `this_cpu_add`) that an interrupt or a migration cannot split; other CPUs only read it, with
// aligned 8-byte loads that cannot tear. So the counters may be shared and sent between threads.
unsafe impl<const N: usize> Send for PerCpuCounters<N> {}
// SAFETY: see `Send`.
unsafe impl<const N: usize> Sync for PerCpuCounters<N> {}

impl<const N: usize> PerCpuCounters<N> {
    /// Allocates the counters, all zero (process context: the allocation may sleep).
    pub fn new() -> Result<Self> {
        const { assert!(N > 0) };
        // SAFETY: no requirements (a sleeping allocation; callers are in process context).
        let p = unsafe { ffi::xendma_percpu_alloc(N * core::mem::size_of::<u64>()) };
        // INVARIANT: a non-null result is a zeroed per-CPU area of `N` `u64`s that we own.
        NonNull::new(p).map(|ptr| Self { ptr }).ok_or(ENOMEM)
    }

    /// The per-CPU pointer of counter `I` (`I < N`, checked at compile time) of the area that
    /// `self` owns (type invariant).
    #[inline(always)]
    fn slot<const I: usize>(&self) -> *mut u64 {
        const { assert!(I < N) };
        self.ptr.as_ptr().cast::<u64>().wrapping_add(I)
    }

    /// Adds `v` to counter `I` on the running CPU.
    #[inline(always)]
    pub fn add<const I: usize>(&self, v: u64) {
        let slot = self.slot::<I>();
        #[cfg(all(CONFIG_X86_64, CONFIG_SMP))]
        // SAFETY: `%gs:slot` is counter `I`'s copy of the running CPU (`slot`: see `slot`; the
        // `%gs` base is that CPU's per-CPU offset, as `this_cpu_add` relies on). One `add` is not
        // split by an interrupt or a migration, no other CPU writes the copy, no stack is used.
        unsafe {
            core::arch::asm!(
                "add qword ptr gs:[{slot}], {v}",
                slot = in(reg) slot,
                v = in(reg) v,
                options(nostack)
            );
        }
        #[cfg(not(all(CONFIG_X86_64, CONFIG_SMP)))]
        // SAFETY: `slot` is the per-CPU pointer of counter `I < N` of the area `self` owns.
        unsafe {
            ffi::xendma_percpu_add(slot.cast::<c_void>(), v)
        };
    }

    /// Counter `I`: the sum of its copies over the possible CPUs (wrapping).
    pub fn sum<const I: usize>(&self) -> u64 {
        let slot = self.slot::<I>();
        // SAFETY: the per-CPU pointer of counter `I < N` of the area that `self` owns; the
        // helper only reads each CPU's copy.
        unsafe { ffi::xendma_percpu_sum(slot.cast::<c_void>()) }
    }

    /// Counter `I`'s copy of `cpu` (`None` if that CPU is not possible): for tests.
    #[cfg(xendma_kunit)]
    pub fn copy_of<const I: usize>(&self, cpu: u32) -> Option<u64> {
        let slot = self.slot::<I>();
        let mut v = 0u64;
        // SAFETY: the per-CPU pointer of counter `I < N` of the area that `self` owns; the
        // helper checks `cpu` before it reads that CPU's copy into `v`.
        unsafe { ffi::xendma_percpu_read_cpu(slot.cast::<c_void>(), cpu, &mut v) }.then_some(v)
    }
}

impl<const N: usize> Drop for PerCpuCounters<N> {
    fn drop(&mut self) {
        // SAFETY: the area `alloc_percpu` returned and that `self` owns (type invariant); no
        // reference to it outlives `self`.
        unsafe { ffi::xendma_percpu_free(self.ptr.as_ptr()) };
    }
}

/// The running CPU's number, read from a per-CPU copy of it (`raw_smp_processor_id`, without a
/// call): only a hint, since the task may move to another CPU right after.
///
/// # Invariants
///
/// The copy of every possible CPU holds that CPU's number, and is never written again.
pub struct CpuId(PerCpuCounters<1>);

impl CpuId {
    /// Allocates the copies and writes each possible CPU's number into its own (process context).
    pub fn new() -> Result<Self> {
        let c = PerCpuCounters::<1>::new()?;
        // SAFETY: the area `c` owns, of one `u64` per CPU, that no one else can reach yet.
        // INVARIANT: the helper writes each possible CPU's number into that CPU's copy.
        unsafe { ffi::xendma_percpu_set_cpu_ids(c.ptr.as_ptr()) };
        Ok(Self(c))
    }

    /// The number of the CPU this runs on.
    #[inline(always)]
    pub fn get(&self) -> usize {
        #[cfg(all(CONFIG_X86_64, CONFIG_SMP))]
        {
            let slot = self.0.ptr.as_ptr();
            let cpu: u64;
            // SAFETY: `slot` is the per-CPU pointer of the one `u64` that `self.0` owns, so
            // `%gs:slot` is the running CPU's copy (as in `PerCpuCounters::add`); one aligned
            // load, of a value that no one writes any more (type invariant).
            unsafe {
                core::arch::asm!(
                    "mov {cpu}, qword ptr gs:[{slot}]",
                    slot = in(reg) slot,
                    cpu = out(reg) cpu,
                    options(nostack, readonly, preserves_flags)
                );
            }
            cpu as usize
        }
        #[cfg(not(all(CONFIG_X86_64, CONFIG_SMP)))]
        // SAFETY: `raw_smp_processor_id` has no requirements.
        unsafe {
            ffi::xendma_this_cpu() as usize
        }
    }

    /// Whether [`CpuId::get`] gives what `raw_smp_processor_id` gives, on this CPU: for tests
    /// (call with interrupts off, where the two cannot run on different CPUs).
    #[cfg(xendma_kunit)]
    pub fn matches_kernel(&self) -> bool {
        // SAFETY: `raw_smp_processor_id` has no requirements.
        self.get() == unsafe { ffi::xendma_this_cpu() } as usize
    }
}

/// Runs `f` once on every online CPU, in `on_each_cpu`'s interrupt context, and waits for all;
/// returns the number of CPUs it ran on. For tests.
#[cfg(xendma_kunit)]
pub fn on_each_cpu(f: &(dyn Fn() + Sync)) -> u32 {
    /// # Safety
    ///
    /// `info` points to a live `&(dyn Fn() + Sync)`.
    unsafe extern "C" fn call(info: *mut c_void) {
        // SAFETY: `info` is the reference below, which outlives the waiting `on_each_cpu`.
        let f = unsafe { &*info.cast::<&(dyn Fn() + Sync)>() };
        f();
    }
    // SAFETY: `call` only reads `f` through `info` (a `Sync` closure, shared by all CPUs); the
    // helper waits until every CPU has run it, so `f` outlives all calls.
    unsafe { ffi::xendma_kunit_on_each_cpu(Some(call), core::ptr::from_ref(&f).cast_mut().cast()) }
}
