// SPDX-License-Identifier: GPL-2.0

//! KUnit suites written in Rust, for the test builds of the modules.
//!
//! Linux 6.12 has no `#[kunit_tests]` macro. The module loader, however, collects the pointers a
//! module places in its `.kunit_test_suites` section and KUnit runs those suites when the module
//! is loaded, printing KTAP. [`kunit_suite!`](crate::kunit_suite) builds the static
//! `struct kunit_case` array, the `struct kunit_suite` and that section entry; test cases are plain
//! `fn(&Test)` and report through [`Test`], which never aborts the case (an expectation, not an
//! assertion), so a failing case still releases what it holds.

use crate::kext::bindings::{
    __kunit_do_failed_assertion, kunit, kunit_assert, kunit_assert_type_KUNIT_EXPECTATION,
    kunit_case, kunit_device_register, kunit_fail_assert_format, kunit_loc, kunit_suite,
};
use crate::kext::dma::DmaDevice;
use core::{cell::UnsafeCell, ffi::c_void, fmt, ptr::NonNull};
use kernel::{
    device::Device,
    error::{from_err_ptr, Result},
    str::CStr,
};

/// The KUnit test that is running.
///
/// # Invariants
///
/// `raw` points to the `struct kunit` of the running test case, valid for the lifetime of `self`.
pub struct Test {
    raw: NonNull<kunit>,
}

impl Test {
    /// Reports a failed expectation at `file:line` with a formatted message; the case goes on.
    pub fn fail(&self, file: &'static CStr, line: u32, args: fmt::Arguments<'_>) {
        let loc = kunit_loc {
            file: file.as_char_ptr(),
            line: line as _,
        };
        let assert = kunit_assert {};
        // SAFETY: `raw` is the running test (type invariant); `loc` and `assert` live across the
        // call, which formats the message synchronously; "%pA" takes a `fmt::Arguments` pointer.
        unsafe {
            __kunit_do_failed_assertion(
                self.raw.as_ptr(),
                &loc,
                kunit_assert_type_KUNIT_EXPECTATION,
                &assert,
                Some(kunit_fail_assert_format),
                c"%pA".as_ptr().cast(),
                &args as *const fmt::Arguments<'_> as *const c_void,
            );
        }
    }

    /// Marks the case skipped (reported as `# SKIP reason`); expectations already failed still
    /// fail it.
    pub fn skip(&self, reason: &CStr) {
        // SAFETY: `raw` is the running test (type invariant); the reason is copied.
        unsafe {
            crate::kext::bindings::xendma_kunit_skip(self.raw.as_ptr(), reason.as_char_ptr())
        };
    }

    /// Registers a device on KUnit's own bus, released by KUnit when the case ends.
    ///
    /// Such a device has no driver and no bus DMA constraints; in 6.12 it does have DMA mask
    /// storage, so the DMA API accepts masks for it as the platform allows.
    pub fn device(&self, name: &'static CStr) -> Result<&Device> {
        // SAFETY: `raw` is the running test (type invariant) and `name` is NUL-terminated and
        // outlives the device.
        let dev =
            from_err_ptr(unsafe { kunit_device_register(self.raw.as_ptr(), name.as_char_ptr()) })?;
        // SAFETY: KUnit keeps the device registered (and so referenced) until the test ends,
        // which outlives the borrow of `self`.
        Ok(unsafe { Device::as_ref(dev) })
    }
}

/// Runs one case; called by the `extern "C"` trampolines that [`kunit_suite!`](crate::kunit_suite)
/// generates.
///
/// # Safety
///
/// `test` must be the `struct kunit` KUnit passed to the case's `run_case`.
pub unsafe fn run_case(test: *mut kunit, case: fn(&Test)) {
    if let Some(raw) = NonNull::new(test) {
        // INVARIANT: KUnit keeps `test` valid while the case runs, i.e. during this call.
        case(&Test { raw });
    }
}

/// The zero-terminated array of a suite's cases.
///
/// # Invariants
///
/// Only KUnit writes the cases (their status fields), and only while it runs the suite that
/// points at them; Rust never reads or writes them after building the static.
pub struct Cases<const N: usize>(UnsafeCell<[kunit_case; N]>);

// SAFETY: only KUnit touches the array (through the suite pointer), under its own serialisation.
unsafe impl<const N: usize> Sync for Cases<N> {}

impl<const N: usize> Cases<N> {
    /// Builds the array from cases made by [`Cases::case`]; the last element must be
    /// [`Cases::END`], since KUnit walks the array up to it (checked at compile time when used in
    /// a static, as [`kunit_suite!`](crate::kunit_suite) does).
    pub const fn new(cases: [kunit_case; N]) -> Self {
        assert!(
            N > 0 && cases[N - 1].run_case.is_none(),
            "the last KUnit case must be the terminator"
        );
        Self(UnsafeCell::new(cases))
    }

    /// One case.
    pub const fn case(name: &'static CStr, run: unsafe extern "C" fn(*mut kunit)) -> kunit_case {
        let mut c = Self::END;
        c.run_case = Some(run);
        c.name = name.as_char_ptr();
        c
    }

    /// `case`, marked slow (over a second): KUnit then runs it only when slow tests are wanted
    /// (the default) and does not suggest marking it.
    pub const fn slow(mut case: kunit_case, slow: bool) -> kunit_case {
        if slow {
            case.attr.speed = crate::kext::bindings::kunit_speed_KUNIT_SPEED_SLOW;
        }
        case
    }

    /// The terminating, all-zero case.
    // SAFETY: `struct kunit_case` is plain C data for which all-zero is the documented terminator.
    pub const END: kunit_case = unsafe { core::mem::zeroed() };

    /// Pointer to the first case, for the suite.
    pub const fn as_ptr(&self) -> *mut kunit_case {
        self.0.get().cast()
    }
}

/// A `struct kunit_suite`, written by KUnit while it runs the suite.
///
/// # Invariants
///
/// Only KUnit accesses the suite after the static is built (through the module's
/// `.kunit_test_suites` entry), one run at a time.
pub struct Suite(UnsafeCell<kunit_suite>);

// SAFETY: only KUnit touches the suite, under its own serialisation.
unsafe impl Sync for Suite {}

impl Suite {
    /// A suite called `name` (at most 255 bytes) running `cases`.
    pub const fn new(name: &'static core::ffi::CStr, cases: *mut kunit_case) -> Self {
        // SAFETY: `struct kunit_suite` is plain C data; all-zero means "no hooks, not started".
        let mut s: kunit_suite = unsafe { core::mem::zeroed() };
        let bytes = name.to_bytes();
        let mut i = 0;
        while i < bytes.len() && i < s.name.len() - 1 {
            s.name[i] = bytes[i] as _;
            i += 1;
        }
        s.test_cases = cases;
        Self(UnsafeCell::new(s))
    }

    /// Pointer to the suite, for the `.kunit_test_suites` section.
    pub const fn as_ptr(&self) -> SuiteEntry {
        SuiteEntry(self.0.get())
    }
}

/// One entry of the module's `.kunit_test_suites` section: a pointer to a suite.
///
/// # Invariants
///
/// The pointer is that of a static [`Suite`], valid for the module's lifetime.
#[repr(transparent)]
pub struct SuiteEntry(*mut kunit_suite);

// SAFETY: the pointer is only read by the module loader.
unsafe impl Sync for SuiteEntry {}

/// Declares, in a module named `$suite`, a KUnit suite called `$name` made of the `fn(&Test)`
/// functions listed (they must be visible in the invoking module), and registers it in the
/// module's `.kunit_test_suites` section. A case written `name: slow` carries KUnit's slow
/// attribute (for cases that take more than a second).
#[macro_export]
macro_rules! kunit_suite {
    ($suite:ident, $name:literal, [$($case:ident $(: $speed:ident)?),+ $(,)?]) => {
        // The trampolines and the section entry are the unsafe part; they are this macro's
        // (kext's), not the invoking module's.
        #[allow(unsafe_code)]
        mod $suite {
            use $crate::kext::kunit::{Cases, Suite, SuiteEntry};

            mod trampolines {
                $(
                    /// KUnit's entry point for the case of the same name.
                    ///
                    /// # Safety
                    ///
                    /// `test` must be the running test KUnit passes to `run_case`.
                    pub(super) unsafe extern "C" fn $case(test: *mut $crate::kext::bindings::kunit) {
                        // SAFETY: KUnit calls `run_case` with the running test.
                        unsafe { $crate::kext::kunit::run_case(test, super::super::$case) }
                    }
                )+
            }

            static CASES: Cases<{ [$(stringify!($case)),+].len() + 1 }> = Cases::new([
                $(Cases::<0>::slow(
                    Cases::<0>::case(::kernel::c_str!(stringify!($case)), trampolines::$case),
                    $crate::kunit_suite!(@slow $($speed)?),
                ),)+
                Cases::<0>::END,
            ]);
            static SUITE: Suite = Suite::new($name, CASES.as_ptr());
            #[used]
            #[link_section = ".kunit_test_suites"]
            static ENTRY: SuiteEntry = SUITE.as_ptr();
        }
    };
    (@slow) => { false };
    (@slow slow) => { true };
}

/// Expects `$cond` to hold; reports the condition (and an optional message) otherwise.
#[macro_export]
macro_rules! expect {
    ($t:expr, $cond:expr $(,)?) => {
        $crate::expect!($t, $cond, "")
    };
    ($t:expr, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            $t.fail(
                ::kernel::c_str!(file!()),
                line!(),
                format_args!("Expected {} ({})", stringify!($cond), format_args!($($msg)+)),
            );
        }
    };
}

/// A setup step of a test that must succeed (`Result`): its value, or the case fails with the
/// step and its error and the test function returns. A case never ends early without saying so.
#[macro_export]
macro_rules! require_ok {
    ($t:expr, $e:expr $(,)?) => {
        match $e {
            Ok(v) => v,
            Err(err) => {
                $t.fail(
                    ::kernel::c_str!(file!()),
                    line!(),
                    format_args!("setup failed: {}: {:?}", stringify!($e), err),
                );
                return;
            }
        }
    };
}

/// As [`require_ok!`], for a setup step that gives an `Option`.
#[macro_export]
macro_rules! require_some {
    ($t:expr, $e:expr $(,)?) => {
        match $e {
            Some(v) => v,
            None => {
                $t.fail(
                    ::kernel::c_str!(file!()),
                    line!(),
                    format_args!("setup failed: {} gave None", stringify!($e)),
                );
                return;
            }
        }
    };
}

/// Expects `$left == $right`; reports both values otherwise.
#[macro_export]
macro_rules! expect_eq {
    ($t:expr, $left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    $t.fail(
                        ::kernel::c_str!(file!()),
                        line!(),
                        format_args!(
                            "Expected {} == {}, but {:?} != {:?}",
                            stringify!($left),
                            stringify!($right),
                            l,
                            r
                        ),
                    );
                }
            }
        }
    };
}

/// The structure layout facts measured by the C compiler when the module was built
/// (`xendma_layouts` in `kext/helpers/kunit.c`), as `(description, value)` pairs.
pub fn c_layouts() -> impl Iterator<Item = (&'static CStr, usize)> {
    // `xendma_layouts` is a static C array terminated by an entry with a NULL name.
    let first = core::ptr::addr_of!(crate::kext::bindings::xendma_layouts)
        .cast::<crate::kext::bindings::xendma_layout>();
    (0..)
        .map(move |i| {
            // SAFETY: entries up to and including the terminator are in bounds; the iteration
            // stops at the terminator (`map_while` below).
            unsafe { &*first.add(i) }
        })
        .map_while(|e| {
            if e.name.is_null() {
                None
            } else {
                // SAFETY: a non-NULL name is a static NUL-terminated string.
                Some((unsafe { CStr::from_char_ptr(e.name) }, e.value))
            }
        })
}

/// Checks that the Rust bindings agree with the C compiler on each `(description, value)`
/// pair of `expected` (descriptions as written in `kext/helpers/kunit.c`).
pub fn check_layouts(t: &Test, expected: &[(&str, usize)]) {
    for (what, rust) in expected {
        match c_layouts().find(|(name, _)| name.as_bytes() == what.as_bytes()) {
            Some((_, c)) => crate::expect_eq!(t, (*what, *rust), (*what, c)),
            None => crate::expect!(t, false, "{} is not measured on the C side", what),
        }
    }
}

/// What the lane runner passed as `expect_xen=` to the test build ("none", "pv" or "").
pub fn expected_xen() -> &'static CStr {
    // SAFETY: the helper returns a module parameter string, NUL-terminated and alive as long as
    // the module.
    unsafe { CStr::from_char_ptr(crate::kext::bindings::xendma_expected_xen()) }
}

/// Records the loading task's remaining fault points (`/proc/<pid>/fail-nth`) as the module's
/// `init_fail_nth` parameter; the first thing a test build's init does.
pub fn note_init() {
    // SAFETY: reads the current task's counter; no precondition.
    unsafe { crate::kext::bindings::xendma_kunit_note_init() }
}

/// The page frame number of `page`.
pub fn page_pfn(page: &kernel::page::Page) -> usize {
    // SAFETY: `as_ptr` is the `struct page` of a page we hold.
    unsafe { crate::kext::bindings::xendma_page_to_pfn(page.as_ptr()) as usize }
}

/// Calls `f` with the first PCI device `vendor:device` present, or returns `None`.
pub fn with_pci_device<R>(vendor: u16, device: u16, f: impl FnOnce(&Device) -> R) -> Option<R> {
    // SAFETY: a NULL `from` starts the search; the result is NULL or a referenced device.
    let pdev = unsafe {
        crate::kext::bindings::pci_get_device(vendor.into(), device.into(), core::ptr::null_mut())
    };
    if pdev.is_null() {
        return None;
    }
    // SAFETY: `pdev` is referenced until `pci_dev_put` below, so its embedded `struct device` is
    // valid for the duration of `f`.
    let r = f(unsafe { Device::as_ref(crate::kext::bindings::xendma_pci_dev_device(pdev)) });
    // SAFETY: drops the reference `pci_get_device` took.
    unsafe { crate::kext::bindings::pci_dev_put(pdev) };
    Some(r)
}

/// Checks a generated structure against the C compiler: its size and the offset of each field
/// listed (`rust_name = c_name` where bindgen renamed a field, e.g. `in_ = in`).
#[macro_export]
macro_rules! check_layout {
    ($t:expr, $ty:ident, [$($field:ident $(= $cname:ident)?),+ $(,)?]) => {
        $crate::kext::kunit::check_layouts(
            $t,
            &[
                (
                    concat!("sizeof(struct ", stringify!($ty), ")"),
                    core::mem::size_of::<$crate::kext::bindings::$ty>(),
                ),
                $((
                    concat!(
                        "offsetof(struct ", stringify!($ty), ", ",
                        $crate::check_layout!(@c $field $($cname)?), ")"
                    ),
                    core::mem::offset_of!($crate::kext::bindings::$ty, $field),
                ),)+
            ],
        )
    };
    (@c $field:ident) => { stringify!($field) };
    (@c $field:ident $cname:ident) => { stringify!($cname) };
}

/// Sets the streaming DMA mask of a test device (test builds; see [`DmaDevice::set_mask`]).
///
/// KUnit runs a module's cases one after another, and a case changes the masks of a device
/// that its own test driver is bound to, from the thread that makes the device's mappings, so
/// no mapping of the device runs meanwhile.
pub fn set_mask(dma: &DmaDevice, mask: u64) -> Result {
    // SAFETY: no mapping of the device races with the write (see above).
    unsafe { dma.set_mask(mask) }
}

/// Sets the coherent DMA mask of a test device (see [`set_mask`]).
pub fn set_coherent_mask(dma: &DmaDevice, mask: u64) -> Result {
    // SAFETY: as in `set_mask`.
    unsafe { dma.set_coherent_mask(mask) }
}

/// Sets both DMA masks of a test device (see [`set_mask`]).
pub fn set_mask_and_coherent(dma: &DmaDevice, mask: u64) -> Result {
    // SAFETY: as in `set_mask`.
    unsafe { dma.set_mask_and_coherent(mask) }
}

/// Sets the longest scatter-gather segment of a test device (see [`set_mask`]).
pub fn set_max_seg_size(dma: &DmaDevice, size: u32) -> Result {
    // SAFETY: as in `set_mask`.
    unsafe { dma.set_max_seg_size(size) }
}
