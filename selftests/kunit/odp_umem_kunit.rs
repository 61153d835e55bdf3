// SPDX-License-Identifier: GPL-2.0

//! KUnit suites of the odp_umem test build.

use crate::ffi::{self, ktest::Test};
use crate::kunit_suite;
use core::mem::{offset_of, size_of};

/// The generated `hmm_range` and `miscdevice` match the C compiler's layout.
fn layouts_match_c(t: &Test) {
    ffi::ktest::check_layouts(
        t,
        &[
            ("sizeof(struct hmm_range)", size_of::<ffi::hmm_range>()),
            (
                "offsetof(struct hmm_range, notifier)",
                offset_of!(ffi::hmm_range, notifier),
            ),
            (
                "offsetof(struct hmm_range, notifier_seq)",
                offset_of!(ffi::hmm_range, notifier_seq),
            ),
            (
                "offsetof(struct hmm_range, start)",
                offset_of!(ffi::hmm_range, start),
            ),
            (
                "offsetof(struct hmm_range, end)",
                offset_of!(ffi::hmm_range, end),
            ),
            (
                "offsetof(struct hmm_range, hmm_pfns)",
                offset_of!(ffi::hmm_range, hmm_pfns),
            ),
            (
                "offsetof(struct hmm_range, default_flags)",
                offset_of!(ffi::hmm_range, default_flags),
            ),
            (
                "offsetof(struct hmm_range, pfn_flags_mask)",
                offset_of!(ffi::hmm_range, pfn_flags_mask),
            ),
            (
                "offsetof(struct hmm_range, dev_private_owner)",
                offset_of!(ffi::hmm_range, dev_private_owner),
            ),
            ("sizeof(struct miscdevice)", size_of::<ffi::miscdevice>()),
            (
                "offsetof(struct miscdevice, minor)",
                offset_of!(ffi::miscdevice, minor),
            ),
            (
                "offsetof(struct miscdevice, name)",
                offset_of!(ffi::miscdevice, name),
            ),
            (
                "offsetof(struct miscdevice, fops)",
                offset_of!(ffi::miscdevice, fops),
            ),
            (
                "offsetof(struct miscdevice, this_device)",
                offset_of!(ffi::miscdevice, this_device),
            ),
        ],
    );
}

kunit_suite!(ffi_suite, c"odp_umem_ffi", [layouts_match_c]);
