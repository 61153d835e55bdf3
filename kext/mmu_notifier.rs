// SPDX-License-Identifier: GPL-2.0

//! mmu interval notifiers and `hmm_range_fault` (Linux 6.12's `kernel` crate has neither).
//!
//! [`IntervalNotifier`] is a pinned `struct mmu_interval_notifier` over a range of a process's
//! address space, inserted in its initializer and removed on drop (the `tag_set.rs` pattern). It
//! owns the mirror's state behind a mutex, because the protocol of `linux/mmu_notifier.h` needs
//! one lock shared by both sides:
//!
//! - the invalidation side: [`Invalidate::invalidate`] is called with the state locked and the
//!   new sequence already recorded (`mmu_interval_set_seq`); a non-blockable invalidation is
//!   refused (returns false) before any lock is taken, as the contract requires;
//! - the fault side: [`IntervalNotifier::fault`] (`mmu_interval_read_begin`, then
//!   `hmm_range_fault` under the mmap read lock, of a range inside the notifier's) and
//!   [`Faulted::lock_if_current`] (take the lock, `mmu_interval_read_retry`). A [`Faulted`]
//!   range is bound to its notifier and sequence, and only one that is still current under the
//!   lock ([`Locked`]) hands out its pages, so a page that an invalidation has already taken
//!   away can never be used.
//!
//! A notifier is made over an [`Mm`]; faults take `mmget_not_zero` for their duration and fail
//! with `EFAULT` once the process has exited.

use crate::kext::bindings::{
    mmu_interval_notifier, mmu_interval_notifier_insert, mmu_interval_notifier_ops,
    mmu_interval_notifier_remove, mmu_interval_read_begin, mmu_notifier_range,
    xendma_odp_hmm_fault, xendma_odp_hmm_pfn_to_page, xendma_odp_range_blockable,
    xendma_odp_range_end, xendma_odp_range_event, xendma_odp_range_start, xendma_odp_read_retry,
    xendma_odp_set_seq,
};
use crate::kext::compat::pin_init_from_closure;
use crate::kext::mm::Mm;
use crate::kext::page::PageRef;
use core::{
    marker::PhantomPinned,
    ops::{Deref, DerefMut},
    pin::Pin,
    ptr::NonNull,
};
use kernel::{
    error::{code::EINVAL, to_result, Error, Result},
    new_mutex,
    prelude::{pin_data, pinned_drop, PinInit},
    sync::{
        lock::{mutex::MutexBackend, Guard},
        Mutex,
    },
    try_pin_init,
    types::Opaque,
};

type MutexGuard<'a, T> = Guard<'a, T, MutexBackend>;

/// The mirror state of an [`IntervalNotifier`] over `T`, locked (from [`Locked::into_guard`] or
/// [`IntervalNotifier::lock`]).
pub type StateGuard<'a, T> = MutexGuard<'a, <T as Invalidate>::State>;

/// `HMM_PFN_VALID` (the C helpers assert the value at build time).
const HMM_PFN_VALID: u64 = 1 << 63;

/// The base page size `hmm_range_fault` reports in.
const PAGE_SHIFT: u32 = kernel::page::PAGE_SHIFT as u32;

/// The range an invalidation covers (`struct mmu_notifier_range`), borrowed for the callback.
///
/// # Invariants
///
/// A `&NotifierRange` is only made by the `invalidate` trampoline, from the range the mm core
/// passed to it, and does not outlive that callback: the wrapped structure is valid and
/// unchanging for the lifetime of the reference.
#[repr(transparent)]
pub struct NotifierRange(Opaque<mmu_notifier_range>);

impl NotifierRange {
    /// The first address.
    pub fn start(&self) -> u64 {
        // SAFETY: the range is valid while `self` is borrowed (type invariant).
        unsafe { xendma_odp_range_start(self.0.get()) as u64 }
    }

    /// One past the last address.
    pub fn end(&self) -> u64 {
        // SAFETY: as in `start`.
        unsafe { xendma_odp_range_end(self.0.get()) as u64 }
    }

    /// Whether the callback may sleep (`mmu_notifier_range_blockable`).
    pub fn blockable(&self) -> bool {
        // SAFETY: as in `start`.
        unsafe { xendma_odp_range_blockable(self.0.get()) }
    }

    /// The `enum mmu_notifier_event` value (`MMU_NOTIFY_RELEASE` is 1 in 6.12: the process
    /// exits).
    pub fn event(&self) -> i32 {
        // SAFETY: as in `start`.
        unsafe { xendma_odp_range_event(self.0.get()) }
    }
}

/// The owner of an [`IntervalNotifier`]: what it does when part of the range is invalidated.
pub trait Invalidate: Send + Sync + Sized + 'static {
    /// The mirror's state, locked by both the faults and the invalidations.
    type State: Send + Unpin;

    /// Called for a blockable invalidation of `range` (which intersects the notifier's range),
    /// with `state` locked and the new sequence recorded: every fault that began before now will
    /// retry. The implementation must stop the device using the pages in `range` (unmap them)
    /// before returning.
    fn invalidate(&self, state: &mut Self::State, range: &NotifierRange);
}

/// A pinned `struct mmu_interval_notifier` over `[start, start + len)` of a process's address
/// space, with the owner's data `T` and its mirror state `T::State` behind the lock shared with
/// the invalidations.
///
/// # Invariants
///
/// `raw` is inserted in its mm's interval tree for `[start, end)` with `Self::OPS` from
/// initialisation until drop.
#[pin_data(PinnedDrop)]
pub struct IntervalNotifier<T: Invalidate> {
    start: u64,
    end: u64,
    data: T,
    #[pin]
    state: Mutex<T::State>,
    #[pin]
    raw: Opaque<mmu_interval_notifier>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: the C object is only used through the notifier API, which is thread safe; `T` is
// `Send + Sync` and the state is behind a mutex.
unsafe impl<T: Invalidate> Send for IntervalNotifier<T> {}
// SAFETY: as above.
unsafe impl<T: Invalidate> Sync for IntervalNotifier<T> {}

impl<T: Invalidate> IntervalNotifier<T> {
    const OPS: mmu_interval_notifier_ops = mmu_interval_notifier_ops {
        invalidate: Some(Self::invalidate_callback),
        // 7.x adds a two-pass variant, unused here.
        #[cfg(xendma_kernel_7)]
        invalidate_start: None,
        #[cfg(xendma_kernel_7)]
        invalidate_finish: None,
    };

    /// Inserts a notifier for `[start, start + len)` of `mm` (page aligned, `len > 0`), with
    /// `data` and the initial mirror `state`.
    pub fn new(
        mm: &Mm,
        start: u64,
        len: u64,
        data: T,
        state: T::State,
    ) -> impl PinInit<Self, Error> {
        let mm = mm.as_ptr();
        let end = start.checked_add(len).unwrap_or(0);
        // The macro shadows field names with references to the initialised fields.
        let (insert_start, insert_len) = (start, len);
        try_pin_init!(Self {
            start,
            end,
            data,
            state <- new_mutex!(state, "odp_umem::state"),
            // `data` and `state` are initialised first: an invalidation may run as soon as the
            // notifier is inserted.
            raw <- {
                let insert = move |slot: *mut Opaque<mmu_interval_notifier>| {
                    let (start, len) = (insert_start, insert_len);
                    if len == 0 || start.checked_add(len).is_none() {
                        return Err(EINVAL);
                    }
                    let slot = slot.cast::<mmu_interval_notifier>();
                    // SAFETY: `slot` is ours, pinned, and zeroed before insertion as the C API
                    // expects of a fresh subscription; `mm` is valid (`Mm` invariant) and the ops
                    // are a promoted constant, so `'static`. The subscription takes its own
                    // `mmgrab`.
                    to_result(unsafe {
                        core::ptr::write_bytes(slot, 0, 1);
                        mmu_interval_notifier_insert(slot, mm, start as kernel::ffi::c_ulong, len as kernel::ffi::c_ulong, &Self::OPS)
                    })
                };
                // SAFETY: the closure initialises the slot fully (zeroed, then inserted) or
                // fails; a failed slot needs no clean-up (an `Opaque` may stay uninitialised).
                unsafe { pin_init_from_closure(insert) }
            },
            _pin: PhantomPinned,
        }? Error)
    }

    /// The owner's data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Locks the mirror state, without the sequence check: for bookkeeping that does not use
    /// faulted pages (such as dropping mappings).
    pub fn lock(&self) -> MutexGuard<'_, T::State> {
        self.state.lock()
    }

    /// Starts a read-side critical section (`mmu_interval_read_begin`), which may sleep until a
    /// running invalidation of the range is over, and faults `[start, start + pfns.len() pages)`
    /// in with `hmm_range_fault`, requesting `req_flags` (`HMM_PFN_REQ_*`) for every page, under
    /// the mm's read lock. `EINVAL` unless the range is page aligned, non-empty and inside the
    /// notifier's (invalidations elsewhere are not reported to it); `EBUSY` when an invalidation
    /// collided (fault again), `EFAULT` for a hole or an exited process, `EPERM` for a write to
    /// read-only memory.
    ///
    /// `pfns` is the caller's (a small array on its stack, say): borrowed until the
    /// [`Locked`] range is turned into a plain guard ([`Locked::into_guard`]) or dropped, so a
    /// fault allocates nothing.
    pub fn fault<'b>(
        &self,
        start: u64,
        pfns: &'b mut [u64],
        req_flags: u64,
    ) -> Result<Faulted<'_, 'b, T>> {
        let len = (pfns.len() as u64) << PAGE_SHIFT;
        let end = start.checked_add(len).ok_or(EINVAL)?;
        if pfns.is_empty()
            || start & ((1 << PAGE_SHIFT) - 1) != 0
            || start < self.start
            || end > self.end
        {
            return Err(EINVAL);
        }
        // SAFETY: inserted (type invariant).
        let seq = unsafe { mmu_interval_read_begin(self.raw.get()) as u64 };
        // SAFETY: inserted (type invariant); `pfns` has one word per page of the range and is
        // exclusively ours for the call.
        to_result(unsafe {
            xendma_odp_hmm_fault(
                self.raw.get(),
                seq as kernel::ffi::c_ulong,
                start as kernel::ffi::c_ulong,
                end as kernel::ffi::c_ulong,
                pfns.as_mut_ptr().cast(),
                req_flags as kernel::ffi::c_ulong,
            )
        })?;
        // INVARIANT: filled by `hmm_range_fault` for this notifier, after `seq` was read.
        Ok(Faulted {
            n: self,
            seq,
            start,
            pfns,
        })
    }

    /// # Safety
    ///
    /// `sub` is the `raw` field of a live `IntervalNotifier<T>` (the C side calls this only
    /// between insertion and removal); `range` is valid for the call.
    unsafe extern "C" fn invalidate_callback(
        sub: *mut mmu_interval_notifier,
        range: *const mmu_notifier_range,
        cur_seq: kernel::ffi::c_ulong,
    ) -> bool {
        // SAFETY: `range` is valid for the call; `NotifierRange` is a transparent wrapper.
        // INVARIANT: the reference lives for this callback only.
        let range = unsafe { &*range.cast::<NotifierRange>() };
        if !range.blockable() {
            return false;
        }
        // SAFETY: `sub` points to the `raw` field of a live `Self` (the caller's guarantee).
        let this = unsafe {
            &*kernel::container_of!(sub.cast::<Opaque<mmu_interval_notifier>>(), Self, raw)
        };
        let mut state = this.state.lock();
        // SAFETY: called from `invalidate` with the lock `lock_if_current` takes.
        unsafe { xendma_odp_set_seq(sub, cur_seq) };
        this.data.invalidate(&mut state, range);
        true
    }
}

#[pinned_drop]
impl<T: Invalidate> PinnedDrop for IntervalNotifier<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: inserted (type invariant). Removal waits for a running invalidation to finish,
        // so none uses `data` or `state` once it returns.
        unsafe { mmu_interval_notifier_remove(self.raw.get()) };
    }
}

/// A range `hmm_range_fault` filled in, not yet checked against invalidations.
///
/// # Invariants
///
/// `pfns` was filled by `hmm_range_fault` for `[start, start + pfns.len() pages)` of `n`'s range,
/// in a read-side critical section of `n` begun at sequence `seq`.
pub struct Faulted<'a, 'b, T: Invalidate> {
    n: &'a IntervalNotifier<T>,
    seq: u64,
    start: u64,
    pfns: &'b mut [u64],
}

impl<'a, 'b, T: Invalidate> Faulted<'a, 'b, T> {
    /// Takes the state lock of the notifier and checks that no invalidation ran since the fault
    /// began (`mmu_interval_read_retry`). On a collision, the range is given back to be faulted
    /// again.
    pub fn lock_if_current(self) -> Result<Locked<'a, 'b, T>, Self> {
        let guard = self.n.state.lock();
        // SAFETY: inserted (type invariant of the notifier); the state lock is the one
        // `invalidate_callback` holds around `mmu_interval_set_seq`.
        if unsafe { xendma_odp_read_retry(self.n.raw.get(), self.seq as kernel::ffi::c_ulong) } {
            return Err(self);
        }
        // INVARIANT: checked under the lock just above.
        Ok(Locked {
            guard,
            faulted: self,
        })
    }

    /// The per-page words (`hmm_pfns`), decoded by `logic::odp::HmmPfn`.
    pub fn pfns(&self) -> &[u64] {
        self.pfns
    }

    /// The first address.
    pub fn start(&self) -> u64 {
        self.start
    }
}

/// The mirror state, locked, with a faulted range that no invalidation has touched since its
/// fault began: its pages are the ones the process maps now, and stay so until the lock is
/// dropped. Dropping the guard (or [`Locked::unlock`]) releases the lock.
///
/// # Invariants
///
/// `guard` holds the state lock of `faulted`'s notifier, taken after `faulted`'s sequence was
/// found current.
pub struct Locked<'a, 'b, T: Invalidate> {
    guard: MutexGuard<'a, T::State>,
    faulted: Faulted<'a, 'b, T>,
}

impl<'a, 'b, T: Invalidate> Locked<'a, 'b, T> {
    /// The faulted range.
    pub fn faulted(&self) -> &Faulted<'a, 'b, T> {
        &self.faulted
    }

    /// A reference on the page of entry `i` of the faulted range, if it is valid.
    pub fn page(&self, i: usize) -> Option<PageRef> {
        let word = *self.faulted.pfns.get(i)?;
        if word & HMM_PFN_VALID == 0 {
            return None;
        }
        // SAFETY: a valid word from `hmm_range_fault`.
        let page =
            NonNull::new(unsafe { xendma_odp_hmm_pfn_to_page(word as kernel::ffi::c_ulong) })?;
        // SAFETY: the page is mapped in the process's page table now: no invalidation of the
        // notifier's range, which holds this page's address, ran since the fault began (type
        // invariant), and none can complete while we hold the lock, so its reference count
        // stays above zero.
        Some(unsafe { PageRef::get(page) })
    }

    /// Releases the lock.
    pub fn unlock(self) {}

    /// Keeps the state locked and gives the page words back to their owner: what was mapped
    /// from them stays current until the guard is dropped (no invalidation can run while it is
    /// held), but no further page can be taken from the fault.
    pub fn into_guard(self) -> MutexGuard<'a, T::State> {
        self.guard
    }
}

impl<T: Invalidate> Deref for Locked<'_, '_, T> {
    type Target = T::State;
    fn deref(&self) -> &T::State {
        &self.guard
    }
}

impl<T: Invalidate> DerefMut for Locked<'_, '_, T> {
    fn deref_mut(&mut self) -> &mut T::State {
        &mut self.guard
    }
}
