// SPDX-License-Identifier: GPL-2.0

//! An append-only list that lock-free readers may walk while values are added.

use crate::kext::irqlock::IrqSpinLock;
use core::pin::Pin;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KBox, KVVec};
use kernel::error::{code::ENOSPC, Result};
use kernel::init::InPlaceInit;

/// An append-only list of boxed values with a fixed capacity, readable without a lock while
/// values are being added: a value, once published, stays at its index until the list is
/// dropped.
///
/// # Invariants
///
/// - For `i < count`, `slots[i]` holds a pointer from `KBox::into_raw`, written before `count`
///   passed `i` and unchanged until the list is dropped; the other entries are null.
/// - `count` only grows, and only under `publish`.
pub struct PublishList<T> {
    slots: KVVec<AtomicPtr<T>>,
    count: AtomicUsize,
    publish: Pin<KBox<IrqSpinLock<()>>>,
}

// SAFETY: the list owns its values (`KBox`es, freed in `drop` on whichever thread drops the
// list), so sending the list sends the values: `T: Send` suffices.
unsafe impl<T: Send> Send for PublishList<T> {}

// SAFETY: a shared list hands out `&T` to any thread (`get`), which needs `T: Sync`; `push` on a
// shared list moves a `T` in from another thread, which needs `T: Send`. The pointer slots are
// atomics and `count` is published with release/acquire ordering.
unsafe impl<T: Send + Sync> Sync for PublishList<T> {}

impl<T> PublishList<T> {
    /// An empty list that can hold `capacity` values.
    pub fn new(capacity: usize) -> Result<Self> {
        let mut slots = KVVec::with_capacity(capacity, GFP_KERNEL)?;
        for _ in 0..capacity {
            slots.push(AtomicPtr::new(core::ptr::null_mut()), GFP_KERNEL)?;
        }
        // INVARIANT: no value yet, every entry null.
        Ok(Self {
            slots,
            count: AtomicUsize::new(0),
            publish: KBox::pin_init(
                crate::new_irq_spinlock!((), "kext_publish_list"),
                GFP_KERNEL,
            )?,
        })
    }

    /// Publishes `value` at the next index, which it returns; `ENOSPC` if the list is full
    /// (the value is dropped). Callable in atomic context.
    pub fn push(&self, value: KBox<T>) -> Result<usize> {
        let _guard = self.publish.lock();
        let n = self.count.load(Ordering::Relaxed);
        let slot = self.slots.get(n).ok_or(ENOSPC)?;
        // INVARIANT: entry `n` is written once, under `publish`, before `count` covers it.
        slot.store(KBox::into_raw(value), Ordering::Release);
        self.count.store(n + 1, Ordering::Release);
        Ok(n)
    }

    /// The number of published values.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// True if nothing was published yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`, if published.
    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len() {
            return None;
        }
        let p = self.slots.get(i)?.load(Ordering::Acquire);
        // SAFETY: entry `i < count` is a live `KBox` pointer that stays valid until the list is
        // dropped (type invariant), and the returned reference borrows the list.
        unsafe { p.as_ref() }
    }

    /// The published values, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl<T> Drop for PublishList<T> {
    fn drop(&mut self) {
        for entry in self.slots.iter() {
            let p = entry.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: a published pointer from `KBox::into_raw` (type invariant), freed once:
                // the list is going away and `&mut self` excludes every reader.
                drop(unsafe { KBox::from_raw(p) });
            }
        }
    }
}
