// SPDX-License-Identifier: GPL-2.0

//! The bounce decision of swiotlb-xen and the copy rules of the bounce pool.
//!
//! A streaming mapping of `size` bytes at guest-physical `phys` goes
//! straight to the device (Linux 6.12 `xen_swiotlb_map_page`) only if all of
//! these hold:
//!
//! 1. the bus address range is reachable by the device ([`dma_capable`]);
//! 2. the range is contiguous in bus address space
//!    ([`super::xlate::range_is_bus_contiguous`]);
//! 3. the architecture does not need to bounce it anyway (Linux
//!    `xen_arch_need_swiotlb`, an input here: always false on x86);
//! 4. bouncing is not forced (`swiotlb=force`, `is_swiotlb_force_bounce`).
//!
//! Otherwise the data is bounced, and the bus address of the bounce buffer
//! must itself be reachable ([`check_bounced`]); if it is not, upstream
//! frees the slots without copying back and fails the mapping.

use super::dma::fls64;
use super::dma::{DataDirection, DMA_MAPPING_ERROR};
use super::xlate::{self, FrameMap};

/// The addressing limits of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaLimits {
    /// The device's streaming DMA mask (`*dev->dma_mask`).
    pub dma_mask: u64,
    /// The bus limit (`dev->bus_dma_limit`); 0 means none.
    pub bus_dma_limit: u64,
}

impl DmaLimits {
    /// Limits given by a DMA mask only.
    pub const fn new(dma_mask: u64) -> Self {
        Self {
            dma_mask,
            bus_dma_limit: 0,
        }
    }

    /// Sets the bus limit.
    pub const fn with_bus_limit(mut self, limit: u64) -> Self {
        self.bus_dma_limit = limit;
        self
    }

    /// Highest reachable bus address: the smaller of the two limits that
    /// is not zero (Linux `min_not_zero`).
    pub const fn limit(&self) -> u64 {
        match (self.dma_mask, self.bus_dma_limit) {
            (0, b) => b,
            (m, 0) => m,
            (m, b) => {
                if m < b {
                    m
                } else {
                    b
                }
            }
        }
    }
}

/// Linux `dma_capable()` (64-bit `dma_addr_t`): true if the `size` bytes at
/// bus address `addr` end at or below [`DmaLimits::limit`]. Unlike the C
/// expression `addr + size - 1`, a range that wraps past the end of the
/// address space is not capable, and `DMA_MAPPING_ERROR` never is. A zero
/// size is checked as one byte.
pub fn dma_capable(limits: &DmaLimits, addr: u64, size: usize) -> bool {
    if addr == DMA_MAPPING_ERROR {
        return false;
    }
    let Ok(size) = u64::try_from(size) else {
        return false;
    };
    match addr.checked_add(size.saturating_sub(1)) {
        Some(end) => end <= limits.limit(),
        None => false,
    }
}

/// Outcome of [`decide_map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapDecision {
    /// Give this bus address to the device; no bounce buffer.
    Direct(u64),
    /// Bounce through the pool, for this reason.
    Bounce(BounceReason),
}

/// Why [`decide_map`] bounces a mapping (the `reason` of the module's `bounced` trace event; the
/// values are the event's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceReason {
    /// Every mapping is bounced (`force_bounce`, or the architecture requires it).
    Forced = 1,
    /// The buffer's bus addresses are beyond the device's DMA mask or bus limit.
    BeyondMask = 2,
    /// The buffer spans frames that are not consecutive in bus (machine) memory.
    NotContiguous = 3,
    /// A frame of the buffer has no bus address (no machine frame in the p2m).
    NoTranslation = 4,
}

/// Decides how to map `size` bytes at guest-physical `phys` for a device
/// with `limits` (Linux 6.12 `xen_swiotlb_map_page`, before allocating).
/// `arch_needs_bounce` is the result of `xen_arch_need_swiotlb` and `force`
/// that of `is_swiotlb_force_bounce`. A forced decision is made without
/// looking at the buffer's frames (the map path's common case under
/// `force_bounce`).
///
/// # Examples
///
/// ```
/// use xendma_logic::dma::dma_bit_mask;
/// use xendma_logic::bounce_policy::{decide_map, BounceReason, DmaLimits, MapDecision};
/// use xendma_logic::xlate::IdentityMap;
///
/// let dev32 = DmaLimits::new(dma_bit_mask(32));
/// assert_eq!(
///     decide_map(&IdentityMap, &dev32, 0x1000, 512, false, false),
///     MapDecision::Direct(0x1000)
/// );
/// assert_eq!(
///     decide_map(&IdentityMap, &dev32, 0x1_0000_0000, 512, false, false),
///     MapDecision::Bounce(BounceReason::BeyondMask)
/// );
/// ```
pub fn decide_map<F: FrameMap + ?Sized>(
    map: &F,
    limits: &DmaLimits,
    phys: u64,
    size: usize,
    force: bool,
    arch_needs_bounce: bool,
) -> MapDecision {
    if force || arch_needs_bounce {
        return MapDecision::Bounce(BounceReason::Forced);
    }
    match xlate::phys_to_bus(map, phys) {
        None => MapDecision::Bounce(BounceReason::NoTranslation),
        Some(b) if !dma_capable(limits, b, size) => MapDecision::Bounce(BounceReason::BeyondMask),
        Some(_) if !xlate::range_is_bus_contiguous(map, phys, size) => {
            MapDecision::Bounce(BounceReason::NotContiguous)
        }
        Some(b) => MapDecision::Direct(b),
    }
}

/// The check made after bouncing: the bus address of the bounce buffer
/// `bounce_phys` (as returned by the slot allocator) for `size` bytes. Some
/// bus address means the mapping can be given to the device; `None` means
/// upstream's failure path: release the slots without copying back
/// (`DMA_ATTR_SKIP_CPU_SYNC`) and return `DMA_MAPPING_ERROR`.
pub fn check_bounced<F: FrameMap + ?Sized>(
    map: &F,
    limits: &DmaLimits,
    bounce_phys: u64,
    size: usize,
) -> Option<u64> {
    let bus = xlate::phys_to_bus(map, bounce_phys)?;
    dma_capable(limits, bus, size).then_some(bus)
}

/// Linux `xen_swiotlb_dma_supported`: true if the last byte of the bounce
/// pool(s), `pool_last_phys`, is reachable with `mask`.
pub fn dma_supported<F: FrameMap + ?Sized>(map: &F, pool_last_phys: u64, mask: u64) -> bool {
    xlate::phys_to_bus(map, pool_last_phys).is_some_and(|b| b <= mask)
}

/// Outcome of [`decide_coherent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoherentDecision {
    /// The pages are usable as they are at bus address `dma`.
    Direct {
        /// Bus address of the allocation.
        dma: u64,
    },
    /// The pages must be exchanged for a machine-contiguous region
    /// (`xen_create_contiguous_region(phys, order, address_bits)`); freeing
    /// must then give the region back (`xen_destroy_contiguous_region`).
    MakeContiguous {
        /// Allocation order in kernel pages.
        order: u32,
        /// Address width the region must fit in (`fls64(coherent_mask)`).
        address_bits: u32,
    },
}

/// Decides whether a coherent allocation of `size` bytes whose pages start
/// at guest-physical `phys` (an order-`get_order(size)` block from the page
/// allocator) can be used directly by a device with `coherent_mask` (Linux
/// 6.12 `xen_swiotlb_alloc_coherent`, x86 only upstream). The whole block
/// (`page << order` bytes) must be below the mask, bus-contiguous and, if
/// naturally aligned in guest space, naturally aligned on the bus too (the
/// 6.12 stable rule `range_requires_alignment`). Returns `None` for a size
/// whose order overflows.
pub fn decide_coherent<F: FrameMap + ?Sized>(
    map: &F,
    coherent_mask: u64,
    phys: u64,
    size: usize,
    page_shift: u32,
) -> Option<CoherentDecision> {
    let order = xlate::get_order(u64::try_from(size).ok()?, page_shift);
    let block = 1u64.checked_shl(order.checked_add(page_shift)?)?;
    let block_us = usize::try_from(block).ok()?;
    let dma = xlate::phys_to_bus(map, phys);
    let direct = dma.is_some_and(|d| d.checked_add(block - 1).is_some_and(|e| e <= coherent_mask))
        && xlate::range_is_bus_contiguous(map, phys, block_us)
        && !xlate::range_requires_alignment(map, phys, block_us, page_shift);
    Some(match dma {
        Some(dma) if direct => CoherentDecision::Direct { dma },
        _ => CoherentDecision::MakeContiguous {
            order,
            address_bits: fls64(coherent_mask),
        },
    })
}

impl DataDirection {
    /// From the C value (0 bidirectional, 1 to device, 2 from device);
    /// `None` for `DMA_NONE` (3) and anything else, where upstream BUGs.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Bidirectional),
            1 => Some(Self::ToDevice),
            2 => Some(Self::FromDevice),
            _ => None,
        }
    }

    /// The C value (`enum dma_data_direction`).
    pub const fn to_raw(self) -> u32 {
        match self {
            Self::Bidirectional => 0,
            Self::ToDevice => 1,
            Self::FromDevice => 2,
        }
    }

    /// On unmap, copy bounce -> original: for `FromDevice` and
    /// `Bidirectional`, unless `DMA_ATTR_SKIP_CPU_SYNC` is given.
    pub const fn copy_on_unmap(self, skip_cpu_sync: bool) -> bool {
        !skip_cpu_sync && matches!(self, Self::FromDevice | Self::Bidirectional)
    }

    /// On `sync_single_for_cpu`, copy bounce -> original: for `FromDevice`
    /// and `Bidirectional`.
    pub const fn copy_for_cpu(self) -> bool {
        matches!(self, Self::FromDevice | Self::Bidirectional)
    }

    /// On `sync_single_for_device`, copy original -> bounce: for
    /// `ToDevice` and `Bidirectional`.
    pub const fn copy_for_device(self) -> bool {
        matches!(self, Self::ToDevice | Self::Bidirectional)
    }
}

#[cfg(test)]
mod tests {
    use super::super::dma::dma_bit_mask;
    use super::super::xlate::{IdentityMap, TableMap};
    use super::*;

    #[test]
    fn capable_limits() {
        let d = DmaLimits::new(dma_bit_mask(32));
        assert!(dma_capable(&d, 0, 1));
        assert!(dma_capable(&d, 0xffff_ff00, 0x100));
        assert!(!dma_capable(&d, 0xffff_ff00, 0x101));
        assert!(dma_capable(&d, 0xffff_ffff, 0));
        assert!(!dma_capable(&d, 0x1_0000_0000, 1));
        // Wrap-around is not capable even with a full mask.
        let all = DmaLimits::new(u64::MAX);
        assert!(!dma_capable(&all, u64::MAX - 1, 3));
        assert!(!dma_capable(&all, DMA_MAPPING_ERROR, 1));
        assert!(dma_capable(&all, u64::MAX - 2, 2));
        // Bus limit below the mask wins; zero limit is ignored.
        let b = DmaLimits::new(u64::MAX).with_bus_limit(0xffff);
        assert!(!dma_capable(&b, 0xff00, 0x101));
        assert_eq!(DmaLimits::new(0).with_bus_limit(7).limit(), 7);
        assert_eq!(DmaLimits::new(0xff).with_bus_limit(0xffff).limit(), 0xff);
    }

    #[test]
    fn map_decision_rules() {
        let d = DmaLimits::new(dma_bit_mask(32));
        let direct = decide_map(&IdentityMap, &d, 0x1000, 8192, false, false);
        assert_eq!(direct, MapDecision::Direct(0x1000));
        let forced = decide_map(&IdentityMap, &d, 0x1000, 8192, true, false);
        assert_eq!(forced, MapDecision::Bounce(BounceReason::Forced));
        let arch = decide_map(&IdentityMap, &d, 0x1000, 8192, false, true);
        assert_eq!(arch, MapDecision::Bounce(BounceReason::Forced));
        // Non-contiguous frames.
        let t = [0x10u64, 0x20];
        let m = TableMap::new(1, &t);
        let s = decide_map(&m, &d, 0x1800, 0x1000, false, false);
        assert_eq!(s, MapDecision::Bounce(BounceReason::NotContiguous));
        // Inside one page it is fine.
        assert_eq!(
            decide_map(&m, &d, 0x1800, 0x800, false, false),
            MapDecision::Direct(0x10_800)
        );
        // Untranslatable frame: bounce.
        assert_eq!(
            decide_map(&m, &d, 0x9000, 1, false, false),
            MapDecision::Bounce(BounceReason::NoTranslation)
        );
        // Bus address above the mask although guest address is low.
        let hi = [0x10_0000u64];
        let mh = TableMap::new(0, &hi);
        assert_eq!(
            decide_map(&mh, &d, 0x10, 16, false, false),
            MapDecision::Bounce(BounceReason::BeyondMask)
        );
    }

    #[test]
    fn bounced_address_check() {
        let d = DmaLimits::new(dma_bit_mask(32));
        assert_eq!(check_bounced(&IdentityMap, &d, 0x8000, 100), Some(0x8000));
        assert_eq!(check_bounced(&IdentityMap, &d, 0xffff_ffff, 2), None);
        assert!(dma_supported(&IdentityMap, 0x3fff_ffff, dma_bit_mask(32)));
        assert!(!dma_supported(
            &IdentityMap,
            0x1_3fff_ffff,
            dma_bit_mask(32)
        ));
    }

    #[test]
    fn coherent_rule() {
        assert_eq!(
            decide_coherent(&IdentityMap, dma_bit_mask(32), 0x4000, 5000, 12),
            Some(CoherentDecision::Direct { dma: 0x4000 })
        );
        // Block of order 1 would end above a 24-bit mask.
        assert_eq!(
            decide_coherent(&IdentityMap, dma_bit_mask(24), 0xff_f000, 5000, 12),
            Some(CoherentDecision::MakeContiguous {
                order: 1,
                address_bits: 24
            })
        );
        // Aligned in guest space, misaligned on the bus.
        let t = [5u64, 6];
        let m = TableMap::new(2, &t);
        assert_eq!(
            decide_coherent(&m, dma_bit_mask(32), 0x2000, 8192, 12),
            Some(CoherentDecision::MakeContiguous {
                order: 1,
                address_bits: 32
            })
        );
    }

    #[test]
    fn directions() {
        assert_eq!(DataDirection::from_raw(3), None);
        let from = DataDirection::from_raw(2).unwrap();
        assert!(from.copy_on_unmap(false));
        assert!(!from.copy_on_unmap(true));
        assert!(from.copy_for_cpu());
        assert!(!from.copy_for_device());
        let to = DataDirection::ToDevice;
        assert!(!to.copy_on_unmap(false));
        assert!(to.copy_for_device());
        assert!(!to.copy_for_cpu());
        let bi = DataDirection::Bidirectional;
        assert!(bi.copy_for_cpu() && bi.copy_for_device() && bi.copy_on_unmap(false));
    }
}
