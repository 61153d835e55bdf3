// SPDX-License-Identifier: GPL-2.0

//! KUnit suites of the odp_umem test build.

use crate::ffi::ktest::Test;
use crate::{check_layout, kunit_suite};

/// The generated `hmm_range` and `miscdevice` match the C compiler's layout.
fn layouts_match_c(t: &Test) {
    check_layout!(
        t,
        hmm_range,
        [
            notifier,
            notifier_seq,
            start,
            end,
            hmm_pfns,
            default_flags,
            pfn_flags_mask,
            dev_private_owner
        ]
    );
    check_layout!(t, miscdevice, [minor, name, fops, this_device]);
}

kunit_suite!(ffi_suite, c"odp_umem_ffi", [layouts_match_c]);
