// SPDX-License-Identifier: GPL-2.0

//! What the modules need to know about Xen, as safe functions.

use crate::kext::bindings::{
    xendma_mfn_to_pfn, xendma_pfn_to_mfn, xendma_xen_domain, xendma_xen_initial_domain,
    xendma_xen_pv_domain, xendma_xen_version,
};

/// The kind of domain the kernel runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Not under Xen: guest frames are machine frames.
    None,
    /// A paravirtualised domain: guest frames differ from machine frames.
    Pv {
        /// The initial domain (dom0), which owns the hardware.
        initial: bool,
    },
    /// An HVM or PVH domain (frames are translated by the hypervisor).
    Hvm,
}

impl Domain {
    /// The domain this kernel runs in.
    pub fn current() -> Self {
        // SAFETY: the helpers only read boot-time globals.
        let (xen, pv, initial) = unsafe {
            (
                xendma_xen_domain(),
                xendma_xen_pv_domain(),
                xendma_xen_initial_domain(),
            )
        };
        match (xen, pv) {
            (false, _) => Domain::None,
            (true, true) => Domain::Pv { initial },
            (true, false) => Domain::Hvm,
        }
    }
}

/// The hypervisor's version as `(major, minor)`, asked with a real `xen_version` hypercall, or
/// `None` outside Xen.
pub fn version() -> Option<(u16, u16)> {
    // SAFETY: the helper issues the hypercall only when running under Xen.
    let v = unsafe { xendma_xen_version() };
    if v < 0 {
        return None;
    }
    Some(((v >> 16) as u16, (v & 0xffff) as u16))
}

/// Guest frame to machine frame (identity outside a PV domain).
pub fn pfn_to_mfn(pfn: usize) -> usize {
    // SAFETY: a lookup in the p2m table, valid for any frame number (invalid ones map to
    // INVALID_P2M_ENTRY).
    unsafe { xendma_pfn_to_mfn(pfn as kernel::ffi::c_ulong) as usize }
}

/// Machine frame to guest frame (identity outside a PV domain).
pub fn mfn_to_pfn(mfn: usize) -> usize {
    // SAFETY: a lookup in the m2p table, which tolerates foreign or invalid frames.
    unsafe { xendma_mfn_to_pfn(mfn as kernel::ffi::c_ulong) as usize }
}
