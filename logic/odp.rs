// SPDX-License-Identifier: GPL-2.0

//! The kernel-independent core of `odp_umem`: the arithmetic of a registered range of user
//! memory, the per-page state a device mirror keeps, the decoding of `hmm_range_fault`'s output
//! and the validation of every user-supplied argument.
//!
//! A region covers `[start, start + len)` of a process's address space in units of its page
//! size (4 KiB or 2 MiB). The mirror always keeps its state per 4 KiB page (the DMA API maps
//! base pages; a 2 MiB unit is faulted and invalidated as a whole, but mapped as 512 base pages
//! so that an `edu`-like device with a small DMA mask can still be served through a bounce
//! buffer, whose mappings are limited to 256 KiB).

/// The base page shift (x86-64).
pub const BASE_SHIFT: u32 = 12;
/// The base page size.
pub const BASE_SIZE: u64 = 1 << BASE_SHIFT;
/// The largest region, in base pages (1 GiB): the per-page arrays are allocated at registration.
pub const MAX_REGION_PAGES: u64 = 1 << 18;
/// The highest user address plus one on x86-64 with 4-level paging (`TASK_SIZE_MAX`).
pub const USER_END: u64 = 0x0000_7fff_ffff_f000;

/// Why an argument was refused; the module turns each into an errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// Misaligned, zero, or unknown bits (`EINVAL`).
    Invalid,
    /// `start + len` overflows or leaves user space (`EOVERFLOW`).
    Overflow,
    /// The region is larger than [`MAX_REGION_PAGES`] (`E2BIG`).
    TooBig,
    /// A sub-range is not inside its region (`ERANGE`).
    OutOfRange,
    /// The access is not allowed by the region (`EPERM`).
    Denied,
}

/// The unit in which a region is faulted and invalidated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB.
    Base,
    /// 2 MiB (a PMD-mapped transparent huge page is required).
    Huge,
}

impl PageSize {
    /// The page size of `bytes`, if it is 4 KiB or 2 MiB.
    pub fn from_bytes(bytes: u64) -> Result<Self, ArgError> {
        match bytes {
            4096 => Ok(Self::Base),
            0x20_0000 => Ok(Self::Huge),
            _ => Err(ArgError::Invalid),
        }
    }

    /// log2 of the size.
    pub const fn shift(self) -> u32 {
        match self {
            Self::Base => BASE_SHIFT,
            Self::Huge => 21,
        }
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        1 << self.shift()
    }

    /// Base pages per unit.
    pub const fn base_pages(self) -> u64 {
        1 << (self.shift() - BASE_SHIFT)
    }
}

/// Access rights: what the device may do to a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Access(u8);

impl Access {
    /// No access.
    pub const NONE: Access = Access(0);
    /// The device reads.
    pub const READ: Access = Access(1);
    /// The device writes.
    pub const WRITE: Access = Access(2);
    /// Both.
    pub const RW: Access = Access(3);

    /// The access of a user's bit set: READ is required, WRITE optional, nothing else.
    pub fn from_user(bits: u32) -> Result<Self, ArgError> {
        match bits {
            1 => Ok(Self::READ),
            3 => Ok(Self::RW),
            _ => Err(ArgError::Invalid),
        }
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every right of `other` is in `self`.
    pub const fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether write access is included.
    pub const fn writable(self) -> bool {
        self.contains(Self::WRITE)
    }
}

/// A span of base pages, `first..first + count`, relative to a region's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The first base page.
    pub first: usize,
    /// The number of base pages (never zero).
    pub count: usize,
}

impl Span {
    /// One past the last base page.
    pub const fn end(&self) -> usize {
        self.first + self.count
    }
}

/// A validated region: aligned, non-empty, inside user space, not too large.
///
/// # Invariants
///
/// `start` and `len` are multiples of `page.bytes()`, `len > 0`, `start + len <= USER_END`, and
/// `len / BASE_SIZE <= MAX_REGION_PAGES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    start: u64,
    len: u64,
    page: PageSize,
    access: Access,
}

impl Region {
    /// Validates a registration request.
    pub fn new(start: u64, len: u64, page: PageSize, access: Access) -> Result<Self, ArgError> {
        let mask = page.bytes() - 1;
        if len == 0 || start & mask != 0 || len & mask != 0 {
            return Err(ArgError::Invalid);
        }
        match start.checked_add(len) {
            Some(end) if end <= USER_END => {}
            _ => return Err(ArgError::Overflow),
        }
        if len >> BASE_SHIFT > MAX_REGION_PAGES {
            return Err(ArgError::TooBig);
        }
        // INVARIANT: checked above.
        Ok(Self {
            start,
            len,
            page,
            access,
        })
    }

    /// The first address.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// The length in bytes.
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// Regions are never empty.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// One past the last address.
    pub const fn end(&self) -> u64 {
        self.start + self.len
    }

    /// The page size.
    pub const fn page_size(&self) -> PageSize {
        self.page
    }

    /// The access the region was registered with.
    pub const fn access(&self) -> Access {
        self.access
    }

    /// The number of base pages (the length of the per-page arrays).
    pub const fn base_pages(&self) -> usize {
        (self.len >> BASE_SHIFT) as usize
    }

    /// The base pages to fault for a device access of `len` bytes at `addr` with `access`,
    /// rounded out to whole units of the region's page size.
    pub fn fault_span(&self, addr: u64, len: u64, access: Access) -> Result<Span, ArgError> {
        if len == 0 || access == Access::NONE {
            return Err(ArgError::Invalid);
        }
        let end = addr.checked_add(len).ok_or(ArgError::Overflow)?;
        if addr < self.start || end > self.end() {
            return Err(ArgError::OutOfRange);
        }
        if !self.access.contains(access) {
            return Err(ArgError::Denied);
        }
        Ok(self.units_covering(addr, end))
    }

    /// The base pages of the region that an invalidation of `[start, end)` touches, rounded out
    /// to whole units, or `None` if it misses the region.
    pub fn intersect(&self, start: u64, end: u64) -> Option<Span> {
        let s = start.max(self.start);
        let e = end.min(self.end());
        if s >= e {
            return None;
        }
        Some(self.units_covering(s, e))
    }

    /// The whole units covering `[s, e)`, which lies inside the region and is not empty.
    fn units_covering(&self, s: u64, e: u64) -> Span {
        let mask = self.page.bytes() - 1;
        let first = (s - self.start) & !mask;
        // `e <= end()` and `end()` is unit aligned, so rounding up stays inside the region.
        let last = ((e - self.start) + mask) & !mask;
        Span {
            first: (first >> BASE_SHIFT) as usize,
            count: ((last - first) >> BASE_SHIFT) as usize,
        }
    }

    /// The user address of base page `index`.
    pub const fn page_addr(&self, index: usize) -> u64 {
        self.start + ((index as u64) << BASE_SHIFT)
    }

    /// The base page holding `addr` and the offset in it, if `addr` is in the region.
    pub fn locate(&self, addr: u64) -> Option<(usize, usize)> {
        if addr < self.start || addr >= self.end() {
            return None;
        }
        let off = addr - self.start;
        Some((
            (off >> BASE_SHIFT) as usize,
            (off & (BASE_SIZE - 1)) as usize,
        ))
    }

    /// Whether two regions share an address.
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

/// Splits `len` bytes at `addr` into pieces that neither cross a base page nor exceed `max`.
/// Yields `(address, length)`.
pub fn chunks(addr: u64, len: u64, max: u64) -> impl Iterator<Item = (u64, u64)> {
    let end = addr.saturating_add(len);
    let max = max.max(1);
    let mut at = addr;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let page_end = (at | (BASE_SIZE - 1)).saturating_add(1);
        let n = (end.min(page_end) - at).min(max);
        let r = (at, n);
        at += n;
        Some(r)
    })
}

/// `hmm_range_fault`'s per-page output word (`enum hmm_pfn_flags` in 6.12's `linux/hmm.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HmmPfn(pub u64);

impl HmmPfn {
    /// `HMM_PFN_VALID`, also the input flag `HMM_PFN_REQ_FAULT`.
    pub const VALID: u64 = 1 << 63;
    /// `HMM_PFN_WRITE`, also the input flag `HMM_PFN_REQ_WRITE`.
    pub const WRITE: u64 = 1 << 62;
    /// `HMM_PFN_ERROR`.
    pub const ERROR: u64 = 1 << 61;
    /// `HMM_PFN_ORDER_SHIFT`.
    pub const ORDER_SHIFT: u32 = 56;

    /// The input flags that fault pages in for `access`.
    pub const fn request(access: Access) -> u64 {
        if access.writable() {
            Self::VALID | Self::WRITE
        } else {
            Self::VALID
        }
    }

    /// Whether the word names a present page.
    pub const fn valid(self) -> bool {
        self.0 & (Self::VALID | Self::ERROR) == Self::VALID
    }

    /// The access the CPU page table grants.
    pub const fn access(self) -> Access {
        if !self.valid() {
            Access::NONE
        } else if self.0 & Self::WRITE != 0 {
            Access::RW
        } else {
            Access::READ
        }
    }

    /// The order of the CPU mapping (9 for a PMD-mapped huge page).
    pub const fn map_order(self) -> u32 {
        ((self.0 >> Self::ORDER_SHIFT) & 0x1f) as u32
    }

    /// The page frame number.
    pub const fn pfn(self) -> u64 {
        self.0 & ((1 << Self::ORDER_SHIFT) - 1)
    }

    /// Whether every base page of a fault gave what `access` needs, and (for 2 MiB units) was
    /// mapped by the CPU with at least that order.
    pub fn satisfies(self, access: Access, page: PageSize) -> bool {
        self.access().contains(access) && self.map_order() + BASE_SHIFT >= page.shift()
    }
}

/// A mapped base page's state: its bus address and the device's rights, packed as upstream's
/// `dma_list` entries (the address is page aligned, the rights sit in the low bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DmaEntry(u64);

impl DmaEntry {
    const RIGHTS: u64 = 3;

    /// An entry for a page mapped at `bus` (base page aligned) with `access`; `None` if the
    /// address is misaligned or no right is given.
    pub fn new(bus: u64, access: Access) -> Option<Self> {
        if bus & (BASE_SIZE - 1) != 0 || access == Access::NONE {
            return None;
        }
        Some(Self(bus | u64::from(access.bits())))
    }

    /// The unmapped state.
    pub const EMPTY: DmaEntry = DmaEntry(0);

    /// Whether the page is mapped.
    pub const fn is_mapped(self) -> bool {
        self.0 & Self::RIGHTS != 0
    }

    /// The bus address, if mapped.
    pub const fn bus(self) -> Option<u64> {
        if self.is_mapped() {
            Some(self.0 & !Self::RIGHTS)
        } else {
            None
        }
    }

    /// The device's rights.
    pub const fn access(self) -> Access {
        Access((self.0 & Self::RIGHTS) as u8)
    }

    /// Whether unmapping must mark the page dirty: the device may have written it.
    pub const fn dirty_on_unmap(self) -> bool {
        self.access().writable()
    }
}

/// How many regions one open file may register.
pub const MAX_REGIONS: usize = 64;

/// A device operation's length limit, in bytes (the test device's bounce buffer).
pub const MAX_OP_LEN: u64 = 64 * 1024;

/// Validates the length of a device read or write.
pub fn check_op_len(len: u64) -> Result<(), ArgError> {
    match len {
        0 => Err(ArgError::Invalid),
        l if l > MAX_OP_LEN => Err(ArgError::TooBig),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUGE: u64 = 0x20_0000;

    #[test]
    fn region_validation() {
        let rw = Access::RW;
        assert!(Region::new(0x1000, 0x1000, PageSize::Base, rw).is_ok());
        assert_eq!(
            Region::new(0x1001, 0x1000, PageSize::Base, rw),
            Err(ArgError::Invalid)
        );
        assert_eq!(
            Region::new(0x1000, 0, PageSize::Base, rw),
            Err(ArgError::Invalid)
        );
        assert_eq!(
            Region::new(0x1000, 0x800, PageSize::Base, rw),
            Err(ArgError::Invalid)
        );
        assert_eq!(
            Region::new(0x1000, 0x1000, PageSize::Huge, rw),
            Err(ArgError::Invalid)
        );
        assert_eq!(
            Region::new(!0xfff, 0x2000, PageSize::Base, rw),
            Err(ArgError::Overflow)
        );
        assert_eq!(
            Region::new(USER_END, 0x1000, PageSize::Base, rw),
            Err(ArgError::Overflow)
        );
        assert_eq!(
            Region::new(0, (MAX_REGION_PAGES + 1) << 12, PageSize::Base, rw),
            Err(ArgError::TooBig)
        );
        assert!(Region::new(HUGE, 2 * HUGE, PageSize::Huge, rw).is_ok());
    }

    #[test]
    fn page_sizes_and_access() {
        assert_eq!(PageSize::from_bytes(4096), Ok(PageSize::Base));
        assert_eq!(PageSize::from_bytes(HUGE), Ok(PageSize::Huge));
        assert_eq!(PageSize::from_bytes(8192), Err(ArgError::Invalid));
        assert_eq!(PageSize::Huge.base_pages(), 512);
        assert_eq!(Access::from_user(1), Ok(Access::READ));
        assert_eq!(Access::from_user(3), Ok(Access::RW));
        for bad in [0, 2, 4, 7, u32::MAX] {
            assert_eq!(Access::from_user(bad), Err(ArgError::Invalid));
        }
    }

    #[test]
    fn spans() {
        let r = Region::new(0x10000, 0x4000, PageSize::Base, Access::READ).unwrap();
        assert_eq!(
            r.fault_span(0x10010, 0x1000, Access::READ),
            Ok(Span { first: 0, count: 2 })
        );
        assert_eq!(
            r.fault_span(0x10000, 0x4001, Access::READ),
            Err(ArgError::OutOfRange)
        );
        assert_eq!(
            r.fault_span(0xf000, 1, Access::READ),
            Err(ArgError::OutOfRange)
        );
        assert_eq!(
            r.fault_span(0x10000, 1, Access::WRITE),
            Err(ArgError::Denied)
        );
        assert_eq!(
            r.fault_span(u64::MAX, 2, Access::READ),
            Err(ArgError::Overflow)
        );
        assert_eq!(r.intersect(0, 0x10000), None);
        assert_eq!(r.intersect(0x14000, 0x20000), None);
        assert_eq!(
            r.intersect(0x11fff, 0x12001),
            Some(Span { first: 1, count: 2 })
        );
        assert_eq!(r.intersect(0, u64::MAX), Some(Span { first: 0, count: 4 }));
        let h = Region::new(HUGE, 2 * HUGE, PageSize::Huge, Access::RW).unwrap();
        assert_eq!(
            h.intersect(HUGE + HUGE + 5, HUGE + HUGE + 6),
            Some(Span {
                first: 512,
                count: 512
            })
        );
        assert_eq!(h.locate(HUGE + 0x1234), Some((1, 0x234)));
        assert_eq!(h.locate(3 * HUGE), None);
    }

    #[test]
    fn chunking() {
        let v: std::vec::Vec<_> = chunks(0x1f00, 0x1200, 2048).collect();
        assert_eq!(
            v,
            [
                (0x1f00, 0x100),
                (0x2000, 0x800),
                (0x2800, 0x800),
                (0x3000, 0x100)
            ]
        );
        assert_eq!(chunks(5, 0, 10).count(), 0);
    }

    #[test]
    fn hmm_words() {
        let w = HmmPfn(HmmPfn::VALID | HmmPfn::WRITE | (9 << 56) | 0x1234);
        assert!(w.valid());
        assert_eq!(w.access(), Access::RW);
        assert_eq!(w.map_order(), 9);
        assert_eq!(w.pfn(), 0x1234);
        assert!(w.satisfies(Access::WRITE, PageSize::Huge));
        let r = HmmPfn(HmmPfn::VALID | 0x55);
        assert!(!r.satisfies(Access::WRITE, PageSize::Base));
        assert!(r.satisfies(Access::READ, PageSize::Base));
        assert!(!r.satisfies(Access::READ, PageSize::Huge));
        assert!(!HmmPfn(HmmPfn::VALID | HmmPfn::ERROR).valid());
        assert_eq!(HmmPfn::request(Access::READ), HmmPfn::VALID);
    }

    #[test]
    fn entries() {
        assert_eq!(DmaEntry::new(0x1001, Access::READ), None);
        assert_eq!(DmaEntry::new(0x1000, Access::NONE), None);
        let e = DmaEntry::new(0xabc000, Access::RW).unwrap();
        assert_eq!(e.bus(), Some(0xabc000));
        assert!(e.dirty_on_unmap());
        assert!(!DmaEntry::new(0, Access::READ).unwrap().dirty_on_unmap());
        assert_eq!(DmaEntry::new(0, Access::READ).unwrap().bus(), Some(0));
        assert_eq!(DmaEntry::EMPTY.bus(), None);
        assert_eq!(check_op_len(0), Err(ArgError::Invalid));
        assert_eq!(check_op_len(MAX_OP_LEN + 1), Err(ArgError::TooBig));
    }
}
