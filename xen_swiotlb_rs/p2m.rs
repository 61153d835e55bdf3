// SPDX-License-Identifier: GPL-2.0

//! The running kernel's p2m as the slot allocator's frame map.

use crate::kext::xen::{mfn_to_pfn, pfn_to_mfn, Domain};
use crate::logic::xlate::FrameMap;

/// The running kernel's p2m as a [`FrameMap`]: pseudo-physical frames to machine frames in a PV
/// domain, the identity elsewhere. Frames without a machine frame of ours have no translation.
#[derive(Clone, Copy, Debug)]
pub struct P2m {
    pv: bool,
}

impl P2m {
    /// The map of the domain this kernel runs in.
    pub fn current() -> Self {
        Self {
            pv: matches!(Domain::current(), Domain::Pv { .. }),
        }
    }

    /// True in a PV domain, where guest frames are not machine frames.
    pub fn is_pv(&self) -> bool {
        self.pv
    }
}

/// `INVALID_P2M_ENTRY` and the "no such frame" answer of `mfn_to_pfn`.
const NO_FRAME: usize = !0;

impl FrameMap for P2m {
    fn pfn_to_bfn(&self, pfn: u64) -> Option<u64> {
        if !self.pv {
            return Some(pfn);
        }
        let mfn = pfn_to_mfn(usize::try_from(pfn).ok()?);
        (mfn != NO_FRAME).then_some(mfn as u64)
    }

    fn bfn_to_pfn(&self, bfn: u64) -> Option<u64> {
        if !self.pv {
            return Some(bfn);
        }
        let pfn = mfn_to_pfn(usize::try_from(bfn).ok()?);
        (pfn != NO_FRAME).then_some(pfn as u64)
    }
}
