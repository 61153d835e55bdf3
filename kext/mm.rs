// SPDX-License-Identifier: GPL-2.0

//! Address spaces: VMAs under construction, references on a process's `mm_struct`, and (test
//! builds) the address space the KUnit cases borrow.

#[cfg(xendma_odp)]
use crate::kext::bindings;
use crate::kext::bindings as ffi;
#[cfg(xendma_odp)]
use core::ptr::NonNull;
#[cfg(all(xendma_odp, xendma_kunit))]
use kernel::error::{to_result, Error, Result};
use kernel::types::Opaque;

/// A virtual memory area being set up by an `mmap` file operation.
///
/// # Invariants
///
/// The wrapped `vm_area_struct` is a VMA under construction, with the mmap lock held.
#[repr(transparent)]
pub struct VmArea(Opaque<ffi::vm_area_struct>);

impl VmArea {
    /// The VMA, valid while `self` is borrowed (type invariant).
    #[cfg(xendma_testdev)]
    pub(crate) fn as_raw(&self) -> *mut ffi::vm_area_struct {
        self.0.get()
    }

    /// Wraps the VMA an `mmap` handler received.
    ///
    /// # Safety
    ///
    /// `vma` must be the VMA passed to the running `mmap` file operation, and the reference must
    /// not outlive that call.
    pub unsafe fn from_raw<'a>(vma: *mut ffi::vm_area_struct) -> &'a VmArea {
        // SAFETY: `VmArea` is transparent over the VMA; validity is the caller's guarantee.
        unsafe { &*vma.cast::<VmArea>() }
    }
}

/// A reference on a process's `struct mm_struct` (`mmgrab` / `mmdrop`). It does not keep the
/// address space alive: after the process exits, faults fail.
///
/// # Invariants
///
/// `mm` is a valid `struct mm_struct` on which this object holds an `mmgrab` reference.
#[cfg(xendma_odp)]
pub struct Mm {
    mm: NonNull<bindings::mm_struct>,
}

// SAFETY: an `mmgrab` reference may be dropped from any thread.
#[cfg(xendma_odp)]
unsafe impl Send for Mm {}
// SAFETY: only the pointer is shared.
#[cfg(xendma_odp)]
unsafe impl Sync for Mm {}

#[cfg(xendma_odp)]
impl Mm {
    /// The calling process's mm, or `None` in a kernel thread.
    pub fn current() -> Option<Self> {
        // SAFETY: reads `current->mm` and grabs it; no other requirement.
        let mm = NonNull::new(unsafe { bindings::xendma_odp_mm_grab_current() })?;
        // INVARIANT: grabbed just above.
        Some(Self { mm })
    }

    /// The `struct mm_struct`, valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *mut bindings::mm_struct {
        self.mm.as_ptr()
    }

    /// Whether `self` and `other` are the same address space.
    pub fn same(&self, other: &Mm) -> bool {
        self.mm == other.mm
    }
}

#[cfg(xendma_odp)]
impl Drop for Mm {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `current` (type invariant), dropped once.
        unsafe { bindings::xendma_odp_mmdrop(self.mm.as_ptr()) };
    }
}

/// Test builds: the address space of the process that loaded the module, kept for the KUnit
/// cases (which run in kernel threads without one). [`TestMm::capture`] at module init,
/// [`TestMm::release`] at exit.
#[cfg(all(xendma_odp, xendma_kunit))]
pub struct TestMm(());

#[cfg(all(xendma_odp, xendma_kunit))]
impl TestMm {
    /// Takes a reference (`mmget`) on the calling process's address space.
    pub fn capture() {
        // SAFETY: reads and references `current->mm`.
        unsafe { bindings::xendma_odp_test_mm_capture() };
    }

    /// Drops the reference taken by [`TestMm::capture`].
    pub fn release() {
        // SAFETY: no task uses the address space any more (the KUnit cases are over).
        unsafe { bindings::xendma_odp_test_mm_release() };
    }

    /// Attaches the captured address space to the calling kernel thread until the returned
    /// value is dropped (`kthread_use_mm`). `ENOENT` without one, `EBUSY` in a process.
    pub fn enter() -> Result<TestMm> {
        // SAFETY: the helper checks that this is a kernel thread without an mm.
        to_result(unsafe { bindings::xendma_odp_test_mm_use() })?;
        Ok(TestMm(()))
    }

    /// Maps `len` bytes of anonymous read-write memory at `addr` (replacing what is there;
    /// anywhere if `addr` is 0).
    pub fn mmap(&self, addr: u64, len: u64) -> Result<u64> {
        // SAFETY: the address space is attached (`self` exists).
        let r = unsafe { bindings::xendma_odp_test_mmap(addr as _, len as _) };
        if (-4095..0).contains(&r) {
            return Err(Error::from_errno(r as i32));
        }
        Ok(r as u64)
    }

    /// Unmaps `[addr, addr + len)`.
    pub fn munmap(&self, addr: u64, len: u64) -> Result {
        // SAFETY: the address space is attached (`self` exists).
        to_result(unsafe { bindings::xendma_odp_test_munmap(addr as _, len as _) })
    }
}

#[cfg(all(xendma_odp, xendma_kunit))]
impl Drop for TestMm {
    fn drop(&mut self) {
        // SAFETY: attached by `enter` to this thread.
        unsafe { bindings::xendma_odp_test_mm_unuse() };
    }
}
