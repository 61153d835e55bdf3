// SPDX-License-Identifier: GPL-2.0

//! Guest-frame to bus-frame translation.
//!
//! A Xen PV guest sees "pseudo-physical" frames (PFNs) that Xen backs with
//! machine frames (bus frames, BFNs) in no particular order: PFN `n + 1` is
//! not, in general, BFN `bfn(n) + 1`. Translation works on Xen's own 4 KiB
//! pages (`XEN_PAGE_SHIFT` = 12) whatever the kernel's `PAGE_SIZE` is, and
//! keeps the offset inside the page unchanged.
//!
//! The map itself is behind the [`FrameMap`] trait: the kernel module wraps
//! the p2m lookups of the running kernel, tests use [`IdentityMap`] (PFN ==
//! BFN, as on HVM/PVH or bare metal) or a [`TableMap`].

/// Xen's page shift (4 KiB pages), independent of the kernel's page size.
pub const XEN_PAGE_SHIFT: u32 = 12;
/// Xen's page size in bytes.
pub const XEN_PAGE_SIZE: u64 = 1 << XEN_PAGE_SHIFT;
/// Mask of the offset inside a Xen page.
pub const XEN_PAGE_OFFSET_MASK: u64 = XEN_PAGE_SIZE - 1;

/// A guest-frame to bus-frame map.
///
/// Both directions return `None` for a frame that has no translation (for
/// example a frame that does not belong to the guest); a `None` bus address
/// is never DMA capable, so such buffers are bounced.
pub trait FrameMap {
    /// Bus frame backing guest frame `pfn` (Linux `pfn_to_bfn`).
    fn pfn_to_bfn(&self, pfn: u64) -> Option<u64>;
    /// Guest frame backed by bus frame `bfn` (Linux `bfn_to_pfn`).
    fn bfn_to_pfn(&self, bfn: u64) -> Option<u64>;
}

impl<T: FrameMap + ?Sized> FrameMap for &T {
    fn pfn_to_bfn(&self, pfn: u64) -> Option<u64> {
        (**self).pfn_to_bfn(pfn)
    }

    fn bfn_to_pfn(&self, bfn: u64) -> Option<u64> {
        (**self).bfn_to_pfn(bfn)
    }
}

/// The identity map: every frame is its own bus frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdentityMap;

impl FrameMap for IdentityMap {
    fn pfn_to_bfn(&self, pfn: u64) -> Option<u64> {
        Some(pfn)
    }

    fn bfn_to_pfn(&self, bfn: u64) -> Option<u64> {
        Some(bfn)
    }
}

/// A map given by a table: guest frame `first_pfn + i` is backed by bus
/// frame `bfns[i]`; frames outside the table have no translation. The
/// reverse lookup is a linear search (meant for tests and small maps).
///
/// # Examples
///
/// ```
/// use xendma_logic::xlate::{phys_to_bus, range_is_bus_contiguous, TableMap};
///
/// // Guest frames 16, 17, 18 backed by bus frames 100, 101, 7.
/// let map = TableMap::new(16, &[100, 101, 7]);
/// assert_eq!(phys_to_bus(&map, 0x10_123), Some(0x64_123));
/// assert!(range_is_bus_contiguous(&map, 0x10_800, 0x1000));
/// assert!(!range_is_bus_contiguous(&map, 0x11_800, 0x1000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableMap<'a> {
    first_pfn: u64,
    bfns: &'a [u64],
}

impl<'a> TableMap<'a> {
    /// A map of `bfns.len()` frames starting at guest frame `first_pfn`.
    pub const fn new(first_pfn: u64, bfns: &'a [u64]) -> Self {
        Self { first_pfn, bfns }
    }
}

impl FrameMap for TableMap<'_> {
    fn pfn_to_bfn(&self, pfn: u64) -> Option<u64> {
        let i = usize::try_from(pfn.checked_sub(self.first_pfn)?).ok()?;
        self.bfns.get(i).copied()
    }

    fn bfn_to_pfn(&self, bfn: u64) -> Option<u64> {
        let i = self.bfns.iter().position(|&b| b == bfn)?;
        self.first_pfn.checked_add(u64::try_from(i).ok()?)
    }
}

/// Xen frame holding `addr` (Linux `XEN_PFN_DOWN`).
pub const fn xen_pfn_down(addr: u64) -> u64 {
    addr >> XEN_PAGE_SHIFT
}

/// Address of frame `frame` plus `offset`, if it fits in 64 bits.
fn frame_addr(frame: u64, offset: u64) -> Option<u64> {
    if frame > (u64::MAX >> XEN_PAGE_SHIFT) {
        return None;
    }
    Some((frame << XEN_PAGE_SHIFT) | (offset & XEN_PAGE_OFFSET_MASK))
}

/// Bus address of guest-physical address `phys` (Linux `xen_phys_to_bus`),
/// the offset in the Xen page preserved.
pub fn phys_to_bus<F: FrameMap + ?Sized>(map: &F, phys: u64) -> Option<u64> {
    frame_addr(map.pfn_to_bfn(xen_pfn_down(phys))?, phys)
}

/// Guest-physical address of bus address `bus` (Linux `xen_bus_to_phys`),
/// the offset in the Xen page preserved.
pub fn bus_to_phys<F: FrameMap + ?Sized>(map: &F, bus: u64) -> Option<u64> {
    frame_addr(map.bfn_to_pfn(xen_pfn_down(bus))?, bus)
}

/// Number of Xen frames touched by `size` bytes at `phys` (at least 1),
/// or `None` if the range wraps past the end of the address space.
pub fn frames_spanned(phys: u64, size: usize) -> Option<u64> {
    let size = u64::try_from(size).ok()?;
    let last = phys.checked_add(size.saturating_sub(1))?;
    Some(xen_pfn_down(last) - xen_pfn_down(phys) + 1)
}

/// True if the `size` bytes at `phys` are contiguous in bus address space:
/// the range fits in one Xen page, or every following guest frame is backed
/// by the following bus frame. This is the negation of swiotlb-xen's
/// `range_straddles_page_boundary()`. A range that wraps past the end of
/// the address space, or whose frames lack a translation, is not
/// contiguous. The cost is one lookup per Xen page touched.
pub fn range_is_bus_contiguous<F: FrameMap + ?Sized>(map: &F, phys: u64, size: usize) -> bool {
    let Some(frames) = frames_spanned(phys, size) else {
        return false;
    };
    if frames <= 1 {
        return true;
    }
    let first = xen_pfn_down(phys);
    let Some(first_bfn) = map.pfn_to_bfn(first) else {
        return false;
    };
    (1..frames).all(|i| match (first.checked_add(i), first_bfn.checked_add(i)) {
        (Some(pfn), Some(want)) => map.pfn_to_bfn(pfn) == Some(want),
        _ => false,
    })
}

/// Linux `get_order()`: the smallest `order` with `size <= page << order`
/// (0 for `size` 0 or up to one page).
pub fn get_order(size: u64, page_shift: u32) -> u32 {
    if size <= 1 {
        return 0;
    }
    let pages = ((size - 1) >> page_shift) + 1;
    // pages >= 1; order = ceil(log2(pages)).
    u64::BITS - (pages - 1).leading_zeros()
}

/// True if a buffer that is naturally aligned in guest-physical space (to
/// its size rounded up to a power-of-two number of kernel pages) sits on
/// bus frames that are not so aligned. Upstream
/// `range_requires_alignment()`, applied to coherent allocations only (the
/// 6.12 stable rule; see [`super::bounce_policy::decide_coherent`]).
pub fn range_requires_alignment<F: FrameMap + ?Sized>(
    map: &F,
    phys: u64,
    size: usize,
    page_shift: u32,
) -> bool {
    let Ok(size) = u64::try_from(size) else {
        return true;
    };
    let shift = get_order(size, page_shift).saturating_add(page_shift);
    let Some(align) = 1u64.checked_shl(shift) else {
        return false;
    };
    let mask = align - 1;
    if phys & mask != 0 {
        return false;
    }
    match map
        .pfn_to_bfn(xen_pfn_down(phys))
        .and_then(|b| frame_addr(b, 0))
    {
        Some(bus) => bus & mask != 0,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trip() {
        for a in [0u64, 0xfff, 0x1000, 0xdead_beef, u64::MAX] {
            assert_eq!(phys_to_bus(&IdentityMap, a), Some(a));
            assert_eq!(bus_to_phys(&IdentityMap, a), Some(a));
        }
    }

    #[test]
    fn table_translation_keeps_offset() {
        let t = [5u64, 9, 10, 11, 3];
        let m = TableMap::new(100, &t);
        assert_eq!(phys_to_bus(&m, 100 * 4096 + 0x123), Some(5 * 4096 + 0x123));
        assert_eq!(bus_to_phys(&m, 10 * 4096 + 0xfff), Some(102 * 4096 + 0xfff));
        assert_eq!(phys_to_bus(&m, 99 * 4096), None);
        assert_eq!(phys_to_bus(&m, 105 * 4096), None);
        assert_eq!(bus_to_phys(&m, 4 * 4096), None);
    }

    #[test]
    fn contiguity() {
        let t = [5u64, 9, 10, 11, 3];
        let m = TableMap::new(100, &t);
        let p = |pfn: u64, off: u64| pfn * 4096 + off;
        // Inside one page: always contiguous, even 0 bytes.
        assert!(range_is_bus_contiguous(&m, p(100, 0), 4096));
        assert!(range_is_bus_contiguous(&m, p(100, 0xfff), 1));
        assert!(range_is_bus_contiguous(&m, p(100, 0x10), 0));
        // 100 -> 101 is 5 -> 9: not contiguous.
        assert!(!range_is_bus_contiguous(&m, p(100, 0xfff), 2));
        // 101..103 is 9, 10, 11.
        assert!(range_is_bus_contiguous(&m, p(101, 0x10), 3 * 4096 - 0x10));
        assert!(!range_is_bus_contiguous(&m, p(101, 0x10), 3 * 4096));
        // Past the table: no translation.
        assert!(!range_is_bus_contiguous(&m, p(104, 0), 4097));
        // Wrapping range.
        assert!(!range_is_bus_contiguous(&IdentityMap, u64::MAX - 10, 100));
        assert!(range_is_bus_contiguous(&IdentityMap, u64::MAX - 10, 11));
    }

    #[test]
    fn orders() {
        assert_eq!(get_order(0, 12), 0);
        assert_eq!(get_order(1, 12), 0);
        assert_eq!(get_order(4096, 12), 0);
        assert_eq!(get_order(4097, 12), 1);
        assert_eq!(get_order(8192, 12), 1);
        assert_eq!(get_order(8193, 12), 2);
        assert_eq!(get_order(1 << 20, 12), 8);
    }

    #[test]
    fn alignment_rule() {
        // 8 KiB buffer at guest 0x2000 (aligned) on bus frames 5, 6 (0x5000: not 8K-aligned).
        let t = [5u64, 6];
        let m = TableMap::new(2, &t);
        assert!(range_requires_alignment(&m, 0x2000, 8192, 12));
        // Unaligned guest buffer: no requirement.
        let t2 = [5u64, 6, 7];
        let m2 = TableMap::new(1, &t2);
        assert!(!range_requires_alignment(&m2, 0x1000, 8192, 12));
        // Aligned on both sides.
        let t3 = [8u64, 9];
        let m3 = TableMap::new(2, &t3);
        assert!(!range_requires_alignment(&m3, 0x2000, 8192, 12));
    }
}
