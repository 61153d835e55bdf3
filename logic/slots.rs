// SPDX-License-Identifier: GPL-2.0

//! Slot allocator of the bounce-buffer pool.
//!
//! A *pool* is a physically contiguous range of `nslabs` slots of
//! `1 << slot_shift` bytes (2 KiB by default, as upstream's `IO_TLB_SHIFT`).
//! Slots are grouped into *segments* of `segment_slots` slots (128 by
//! default, upstream's `IO_TLB_SEGSIZE`); an allocation never crosses a
//! segment, because under Xen only a segment is guaranteed to be
//! machine-contiguous. Segments are grouped into *areas*, one per CPU
//! (rounded up to a power of two, at most one area per segment), and every
//! area is an independent [`Area`] object with its own slot metadata and
//! counters, so that the caller can protect each one with its own lock.
//!
//! # Addresses
//!
//! Every address taken or returned here is *absolute*: the pool is created
//! with the address of its first slot ([`PoolConfig::base`], normally the
//! guest-physical address of the buffer) and the bounce address returned by
//! [`map`] is `base + slot * slot_size + offset`, the same kind of value as
//! upstream's `swiotlb_tbl_map_single()` returns. Alignment rules
//! (`min_align_mask`, `alloc_align_mask`, page alignment, segment boundary)
//! are evaluated on these addresses.
//!
//! # Locking contract
//!
//! Nothing in this module locks. A caller owns, per pool, one [`Pool`]
//! (immutable geometry plus atomic counters, shared freely) and
//! [`Pool::area_count`] [`Area`] objects, each behind a lock of its own
//! (kernel: one `SpinLock` per area; host tests: one `std::sync::Mutex`).
//! The caller describes its pools through the [`PoolSet`] trait, whose
//! [`PoolSet::with_area`] locks one area, runs a closure on it and unlocks.
//! [`map`], [`unmap`] and [`lookup`] never hold two area locks at once and
//! never call back into the caller while holding one except through that
//! closure. Statistics ([`Stats`]) are atomics updated outside the locks.
//!
//! A caller may also drive the per-area loop itself: [`Pool::plan`] checks a
//! request once, [`Area::try_alloc`] tries one area, [`Area::release`] frees,
//! and [`Stats`] has public recording methods.
//!
//! # Examples
//!
//! ```
//! use std::sync::Mutex;
//! use xendma_logic::slots::{self, Area, MapRequest, Pool, PoolConfig, PoolSet, Slot, Stats};
//!
//! struct One {
//!     pool: Pool,
//!     areas: Vec<Mutex<Area<Vec<Slot>>>>,
//!     stats: Stats,
//! }
//!
//! impl PoolSet for One {
//!     type Storage = Vec<Slot>;
//!     fn stats(&self) -> &Stats {
//!         &self.stats
//!     }
//!     fn pool_count(&self) -> usize {
//!         1
//!     }
//!     fn pool(&self, index: usize) -> Option<&Pool> {
//!         (index == 0).then_some(&self.pool)
//!     }
//!     fn with_area<R, F>(&self, pool: usize, area: usize, f: F) -> Option<R>
//!     where
//!         F: FnOnce(&mut Area<Vec<Slot>>) -> R,
//!     {
//!         if pool != 0 {
//!             return None;
//!         }
//!         let mut guard = self.areas.get(area)?.lock().ok()?;
//!         Some(f(&mut guard))
//!     }
//! }
//!
//! let pool = Pool::new(&PoolConfig::new(0x10_0000, 1024).with_cpus(2)).unwrap();
//! let areas = (0..pool.area_count())
//!     .map(|i| {
//!         let len = pool.area_slots(i).unwrap();
//!         Mutex::new(pool.new_area(i, vec![Slot::new(); len]).unwrap())
//!     })
//!     .collect();
//! let set = One { pool, areas, stats: Stats::new() };
//!
//! let m = slots::map(&set, 0, &MapRequest::new(0x1234_5678, 3000)).unwrap();
//! let r = slots::lookup(&set, m.addr(), 3000).unwrap();
//! assert_eq!(r.orig, 0x1234_5678);
//! slots::unmap(&set, m.addr(), 3000).unwrap();
//! assert_eq!(set.stats().snapshot().used_slots, 0);
//! ```

use core::fmt;
use core::ops::DerefMut;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Default slot size shift: 2 KiB slots (upstream `IO_TLB_SHIFT`).
pub const DEFAULT_SLOT_SHIFT: u32 = 11;
/// Default number of slots per segment (upstream `IO_TLB_SEGSIZE`).
pub const DEFAULT_SEGMENT_SLOTS: usize = 128;
/// Default page shift used for the page-alignment rule (4 KiB pages).
pub const DEFAULT_PAGE_SHIFT: u32 = 12;
/// Smallest accepted slot shift.
pub const MIN_SLOT_SHIFT: u32 = 1;
/// Largest accepted slot shift (64 KiB slots).
pub const MAX_SLOT_SHIFT: u32 = 16;
/// Largest accepted page shift (1 GiB pages).
pub const MAX_PAGE_SHIFT: u32 = 30;
/// Largest accepted segment length in slots.
pub const MAX_SEGMENT_SLOTS: usize = 1 << 15;

/// Best fit inside a segment settles for the better of the first this many
/// free runs that can hold the block (an exact fit ends the search at once).
/// Measured on the pressure traces of tests/pressure.rs, two runs fail as
/// rarely as a full best-fit scan of the segment, and one (first fit) fails
/// about 1.2 to 1.6 times as often at 98-99 % occupancy.
const FIT_CANDIDATES: usize = 2;

/// A bounce buffer whose first page number differs from its original's by a multiple of this
/// many pages is avoided when other room exists: every page the copy reads and the page it writes
/// then share an entry of a direct-mapped TLB of up to this many entries, as QEMU's software TLB
/// is (resized between 64 entries and more as the guest runs), and such a copy runs about five
/// times slower under TCG (Documentation/bench.rst, "Slow copies"). With 512 pages (2 MiB) a
/// whole-segment mapping avoids it in 7 of the 8 segments of every 2 MiB.
pub const ALIAS_PAGES: u64 = 512;

/// A mapping of at least this many pages goes to whichever end of its free run has fewer of its
/// pages sharing an entry of a direct-mapped TLB of `2 * pow2ceil(pages)` entries with a page of
/// its original. The copies in and out of the bounce buffer then keep more of the entries they
/// used the time before in such a TLB, as QEMU's (resized between 64 and thousands of entries);
/// how many pages of the two overlap depends on where the original happens to lie, which varies
/// from buffer to buffer (Documentation/bench.rst, "Placement against the TLB").
pub const TLB_SPREAD_MIN_PAGES: u64 = 64;

/// Aliasing is avoided only while the area is less than this share (in percent) used: under
/// pressure the bounded best fit places blocks as it would without it.
const ALIAS_AVOID_BELOW_PERCENT: usize = 50;

/// Segments searched past the first room that aliases before that room is taken anyway.
const ALIAS_EXTRA_SEGMENTS: usize = 2;

/// Returns true if `mask` has the form `2^k - 1` (including 0 and `u64::MAX`).
const fn is_low_mask(mask: u64) -> bool {
    mask & mask.wrapping_add(1) == 0
}

/// Converts a slot count or index to `u64` (lossless on all supported targets).
const fn to_u64(x: usize) -> u64 {
    x as u64
}

// ---------------------------------------------------------------------------
// Configuration and errors
// ---------------------------------------------------------------------------

/// Parameters of one pool, checked by [`Pool::new`].
///
/// Built with [`PoolConfig::new`] (upstream defaults) and refined with the
/// `with_*` methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Address of the first slot. Must be aligned to the page size.
    pub base: u64,
    /// Number of slots in the pool (at least 1).
    pub nslabs: usize,
    /// Slot size shift, in `MIN_SLOT_SHIFT..=MAX_SLOT_SHIFT`.
    pub slot_shift: u32,
    /// Slots per segment, in `1..=MAX_SEGMENT_SLOTS`. The last segment of
    /// the pool is shorter when `nslabs` is not a multiple of it.
    pub segment_slots: usize,
    /// Page shift of the page-alignment rule, in `slot_shift..=MAX_PAGE_SHIFT`.
    pub page_shift: u32,
    /// Number of CPUs; the pool gets `cpus` rounded up to a power of two
    /// areas, reduced to the number of segments if the pool is small. Zero
    /// counts as one.
    pub cpus: usize,
}

impl PoolConfig {
    /// A pool of `nslabs` slots at `base` with upstream's defaults (2 KiB
    /// slots, 128-slot segments, 4 KiB pages) and one CPU.
    pub const fn new(base: u64, nslabs: usize) -> Self {
        Self {
            base,
            nslabs,
            slot_shift: DEFAULT_SLOT_SHIFT,
            segment_slots: DEFAULT_SEGMENT_SLOTS,
            page_shift: DEFAULT_PAGE_SHIFT,
            cpus: 1,
        }
    }

    /// Sets the number of CPUs (and so the number of areas).
    pub const fn with_cpus(mut self, cpus: usize) -> Self {
        self.cpus = cpus;
        self
    }

    /// Sets the slot size shift.
    pub const fn with_slot_shift(mut self, shift: u32) -> Self {
        self.slot_shift = shift;
        self
    }

    /// Sets the segment length in slots.
    pub const fn with_segment_slots(mut self, slots: usize) -> Self {
        self.segment_slots = slots;
        self
    }

    /// Sets the page shift.
    pub const fn with_page_shift(mut self, shift: u32) -> Self {
        self.page_shift = shift;
        self
    }
}

/// Why a pool or an area could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `slot_shift` is outside `MIN_SLOT_SHIFT..=MAX_SLOT_SHIFT`.
    BadSlotShift,
    /// `page_shift` is below `slot_shift` or above `MAX_PAGE_SHIFT`.
    BadPageShift,
    /// `segment_slots` is 0 or above `MAX_SEGMENT_SLOTS`.
    BadSegmentSize,
    /// `nslabs` is 0.
    Empty,
    /// `base` is not aligned to the page size.
    Misaligned,
    /// The pool would extend past the end of the 64-bit address space.
    AddressOverflow,
    /// [`Pool::new_area`] was given an area index the pool does not have.
    NoSuchArea,
    /// The storage given to [`Pool::new_area`] has the wrong length.
    StorageLength {
        /// Number of slots the area has.
        expected: usize,
        /// Length of the storage given.
        got: usize,
    },
    /// The new pool overlaps a pool already in the set (see [`check_new_pool`]).
    Overlap,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSlotShift => f.write_str("slot shift out of range"),
            Self::BadPageShift => f.write_str("page shift out of range"),
            Self::BadSegmentSize => f.write_str("segment length out of range"),
            Self::Empty => f.write_str("pool has no slots"),
            Self::Misaligned => f.write_str("pool base not page aligned"),
            Self::AddressOverflow => f.write_str("pool extends past the address space"),
            Self::NoSuchArea => f.write_str("no such area"),
            Self::StorageLength { expected, got } => {
                write!(f, "area storage has {got} slots, expected {expected}")
            }
            Self::Overlap => f.write_str("pool overlaps an existing pool"),
        }
    }
}

/// Why a mapping could not be allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The mapping size is zero.
    ZeroSize,
    /// A mask of the request is not of the form `2^k - 1`.
    BadMask,
    /// The request can never be satisfied by any pool of the set: with its
    /// alignment padding it needs more slots than a segment holds (or more
    /// than its segment-boundary mask allows). Retrying or growing the pool
    /// does not help.
    TooLarge,
    /// No free slots satisfy the request right now (upstream's "swiotlb
    /// buffer is full"). Retrying later or growing the set may help.
    NoSpace,
    /// The original range `orig .. orig + size` wraps past the end of the
    /// address space.
    BadRange,
    /// A [`Plan`] was used with an area of another pool geometry.
    WrongPool,
    /// The caller's [`PoolSet`] did not provide an area it announced.
    MissingArea,
    /// Slot metadata is inconsistent (a bug or memory corruption). The
    /// allocator did not change anything.
    Corrupted,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ZeroSize => "zero-sized mapping",
            Self::BadMask => "alignment mask is not 2^k-1",
            Self::TooLarge => "mapping larger than a segment",
            Self::BadRange => "original range wraps the address space",
            Self::NoSpace => "bounce pool is full",
            Self::WrongPool => "plan used with another pool",
            Self::MissingArea => "pool set lacks an area",
            Self::Corrupted => "slot metadata corrupted",
        })
    }
}

/// Why an unmap or a lookup was refused. The allocator is left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapError {
    /// The address is not inside any pool (or not inside the area asked).
    NotBounceAddress,
    /// The address is inside a pool but no live mapping covers it (never
    /// allocated, already freed, or in alignment padding).
    NotMapped,
    /// The address is inside a live mapping but is not the address that
    /// [`map`] returned for it.
    NotMappingStart,
    /// The size differs from the mapped size.
    SizeMismatch {
        /// Size recorded when the mapping was made.
        mapped: usize,
        /// Size given to unmap.
        given: usize,
    },
    /// The caller's [`PoolSet`] did not provide an area it announced.
    MissingArea,
    /// Slot metadata is inconsistent (a bug or memory corruption).
    Corrupted,
}

impl fmt::Display for UnmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBounceAddress => f.write_str("address outside the bounce pools"),
            Self::NotMapped => f.write_str("address not mapped"),
            Self::NotMappingStart => f.write_str("address is not the start of its mapping"),
            Self::SizeMismatch { mapped, given } => {
                write!(f, "unmap size {given} differs from mapped size {mapped}")
            }
            Self::MissingArea => f.write_str("pool set lacks an area"),
            Self::Corrupted => f.write_str("slot metadata corrupted"),
        }
    }
}

/// Internal marker: metadata did not satisfy an invariant.
#[derive(Clone, Copy, Debug)]
struct Corrupt;

impl From<Corrupt> for MapError {
    fn from(_: Corrupt) -> Self {
        MapError::Corrupted
    }
}

impl From<Corrupt> for UnmapError {
    fn from(_: Corrupt) -> Self {
        UnmapError::Corrupted
    }
}

// ---------------------------------------------------------------------------
// Requests and results
// ---------------------------------------------------------------------------

/// A request to bounce `size` bytes that live at `orig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRequest {
    /// Original (guest-physical) address of the data.
    pub orig: u64,
    /// Mapping size in bytes (upstream `mapping_size`), at least 1.
    pub size: usize,
    /// The device's `min_align_mask` (`2^k - 1`): the bounce address keeps
    /// the bits of `orig` under this mask.
    pub min_align_mask: u64,
    /// Explicit alignment of the allocation (`2^k - 1`), upstream's
    /// `alloc_align_mask`. When it and `min_align_mask` are both 0,
    /// allocations of a page or more are page aligned.
    pub alloc_align_mask: u64,
    /// The device's segment boundary mask (`2^k - 1`, upstream
    /// `dma_get_seg_boundary`): the allocated slots never cross a multiple
    /// of `mask + 1`. `u64::MAX` means no limit.
    pub seg_boundary_mask: u64,
}

impl MapRequest {
    /// A request without alignment constraints beyond the default ones.
    pub const fn new(orig: u64, size: usize) -> Self {
        Self {
            orig,
            size,
            min_align_mask: 0,
            alloc_align_mask: 0,
            seg_boundary_mask: u64::MAX,
        }
    }

    /// Sets the device's `min_align_mask`.
    pub const fn with_min_align_mask(mut self, mask: u64) -> Self {
        self.min_align_mask = mask;
        self
    }

    /// Sets the allocation alignment mask.
    pub const fn with_alloc_align_mask(mut self, mask: u64) -> Self {
        self.alloc_align_mask = mask;
        self
    }

    /// Sets the segment boundary mask.
    pub const fn with_seg_boundary_mask(mut self, mask: u64) -> Self {
        self.seg_boundary_mask = mask;
        self
    }
}

/// A request checked against one pool's geometry by [`Pool::plan`]: how many
/// slots it takes, where the data starts in them, and which slot numbers may
/// start it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    geo: Geometry,
    orig: u64,
    size: u32,
    /// Slots of the block, padding included.
    nslots: usize,
    /// Leading padding slots (upstream `pad_slots`).
    pad: usize,
    /// Offset of the data in its first slot.
    offset: u16,
    /// Alignment mask in slot units (`2^j - 1`).
    align: u64,
    /// Required value of `(base_slot + index) & align`, as an index residue.
    residue: u64,
    /// Segment-boundary period in slot units (a power of two), if any.
    boundary: Option<u64>,
}

/// The distance in pages, wrapping, from the first page of `orig` to the first page of `addr`.
#[inline]
fn page_distance(addr: u64, orig: u64, page_shift: u32) -> u64 {
    (addr >> page_shift).wrapping_sub(orig >> page_shift)
}

/// True if a page distance ([`page_distance`]) is a whole multiple of [`ALIAS_PAGES`].
#[inline]
fn is_alias(distance: u64) -> bool {
    distance & (ALIAS_PAGES - 1) == 0
}

impl Plan {
    /// True if the block at pool index `c` would put the mapping's first page a multiple of
    /// [`ALIAS_PAGES`] pages from its original's.
    #[inline]
    fn aliases(&self, c: usize) -> bool {
        self.page_distance(c).is_some_and(is_alias)
    }

    /// The distance in pages from the original's first page to the first page of the mapping
    /// placed at pool index `c` (wrapping).
    fn page_distance(&self, c: usize) -> Option<u64> {
        let head = c
            .checked_add(self.pad)
            .and_then(|h| self.geo.slot_addr(h))
            .and_then(|a| a.checked_add(u64::from(self.offset)))?;
        Some(page_distance(head, self.orig, self.geo.page_shift))
    }

    /// For a mapping of at least [`TLB_SPREAD_MIN_PAGES`] pages placed at pool index `c`: how
    /// many of its pages share an entry with a page of its original in a direct-mapped TLB of
    /// `2 * pow2ceil(n)` entries (`n` pages), the smallest in which the two can miss each other.
    /// `None` for smaller mappings.
    #[inline(always)]
    fn tlb_overlap(&self, c: usize) -> Option<u64> {
        // Up to 62 pages of bytes span at most 63 pages, whatever the offset: small mappings
        // (the common case) leave here after one compare, inlined into the placement.
        if u64::from(self.size) <= (TLB_SPREAD_MIN_PAGES - 2) << self.geo.page_shift {
            return None;
        }
        self.tlb_overlap_large(c)
    }

    /// [`Plan::tlb_overlap`] for a mapping of more than 62 pages of bytes.
    #[inline(never)]
    fn tlb_overlap_large(&self, c: usize) -> Option<u64> {
        let ps = self.geo.page_shift;
        let first = self.orig >> ps;
        let last = self
            .orig
            .checked_add(u64::from(self.size).checked_sub(1)?)?
            >> ps;
        let n = last.checked_sub(first)?.checked_add(1)?;
        if n < TLB_SPREAD_MIN_PAGES {
            return None;
        }
        let w = n.checked_next_power_of_two()?.checked_mul(2)?;
        // At distance x (mod w) the two page ranges share n - min(x, w - x) entries, if positive.
        let x = self.page_distance(c)? & (w - 1);
        Some(n.saturating_sub(x.min(w - x)))
    }

    /// Number of slots the allocation takes, leading padding included.
    pub fn slots(&self) -> usize {
        self.nslots
    }

    /// Number of leading padding slots.
    pub fn pad_slots(&self) -> usize {
        self.pad
    }
}

/// A block of slots handed out by [`Area::try_alloc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Bounce address of the data: the address the caller copies to and
    /// gives (translated to a bus address) to the device.
    pub addr: u64,
    /// Index of the area in its pool.
    pub area: usize,
    /// Pool index of the first slot of the block (padding included).
    pub first_slot: usize,
    /// Number of slots of the block (padding included).
    pub nslots: usize,
    /// Number of leading padding slots.
    pub pad_slots: usize,
}

/// A mapping made by [`map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotMapping {
    /// Index of the pool in the [`PoolSet`].
    pub pool: usize,
    /// The slots taken.
    pub block: Block,
}

impl SlotMapping {
    /// Bounce address of the data.
    pub fn addr(&self) -> u64 {
        self.block.addr
    }
}

/// What [`unmap`] (or [`Area::release`]) freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Released {
    /// Original address of the mapping.
    pub orig: u64,
    /// Mapping size in bytes.
    pub size: usize,
    /// Index of the area in its pool.
    pub area: usize,
    /// Number of slots returned (padding included).
    pub nslots: usize,
}

/// The bytes to copy for a sync or an unmap, found by [`lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncRange {
    /// Original address matching the bounce address asked for.
    pub orig: u64,
    /// The bounce address asked for.
    pub bounce: u64,
    /// Number of bytes to copy: the size asked for, clipped to the end of
    /// the mapping.
    pub len: usize,
    /// True if the size asked for ran past the end of the mapping and was
    /// clipped (upstream warns "buffer overflow detected" and clips too).
    pub truncated: bool,
    /// Offset of the bounce address from the start of the mapping.
    pub offset_in_mapping: usize,
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// Counters of a set of pools that span its areas.
///
/// These are atomics updated *after* the area lock is dropped (as
/// upstream's `total_used`/`used_hiwater`), so a snapshot taken while other
/// CPUs map and unmap is approximate; once all mappings are gone it is exact.
/// The per-mapping counts that need no cross-area view (allocations, bytes
/// bounced) live in each area ([`AreaCounters`]), updated under its lock.
#[derive(Debug, Default)]
pub struct Stats {
    used: AtomicUsize,
    high_water: AtomicUsize,
    failed: AtomicU64,
    bounced: AtomicU64,
}

/// A copy of the counters of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Slots in use (padding included).
    pub used_slots: usize,
    /// Highest value `used_slots` has reached.
    pub high_water: usize,
    /// Number of failed allocations ([`MapError::NoSpace`] and
    /// [`MapError::TooLarge`] returned by [`map`]).
    pub failed_allocs: u64,
    /// Bytes copied between original buffers and bounce slots: counted by
    /// [`map`] and [`unmap_with`] under the area locks, plus what the
    /// caller reported through [`Stats::add_bounced`] (copies made outside
    /// them). Only [`snapshot`] includes the areas' part.
    pub bounced_bytes: u64,
    /// Blocks allocated by [`map`] (only [`snapshot`] counts them).
    pub allocs: u64,
    /// Mappings [`map`] placed a whole multiple of [`ALIAS_PAGES`] pages from their original,
    /// because no other room was found or the area was too full to look (only [`snapshot`]
    /// counts them; kept after the unmap, taken back by [`withdraw`] like `allocs`).
    pub aliased_maps: u64,
}

impl Stats {
    /// Zeroed counters.
    pub const fn new() -> Self {
        Self {
            used: AtomicUsize::new(0),
            high_water: AtomicUsize::new(0),
            failed: AtomicU64::new(0),
            bounced: AtomicU64::new(0),
        }
    }

    /// Records `nslots` slots taken (done by [`map`]).
    pub fn record_alloc(&self, nslots: usize) {
        let now = self
            .used
            .fetch_add(nslots, Ordering::Relaxed)
            .wrapping_add(nslots);
        // Plain load first: in steady state the mark is not raised and the
        // cache line stays shared.
        if now > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// Records `nslots` slots given back (done by [`unmap`]).
    pub fn record_free(&self, nslots: usize) {
        self.used.fetch_sub(nslots, Ordering::Relaxed);
    }

    /// Records a failed allocation (done by [`map`]).
    pub fn record_failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Records `bytes` bytes copied by the caller between an original
    /// buffer and a bounce buffer. The allocator does not copy, so only the
    /// caller can count this.
    pub fn add_bounced(&self, bytes: u64) {
        self.bounced.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Restarts the high-water mark from the current use (upstream: a write
    /// to debugfs `io_tlb_used_hiwater`).
    pub fn reset_high_water(&self) {
        self.high_water
            .store(self.used.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            used_slots: self.used.load(Ordering::Relaxed),
            high_water: self.high_water.load(Ordering::Relaxed),
            failed_allocs: self.failed.load(Ordering::Relaxed),
            bounced_bytes: self.bounced.load(Ordering::Relaxed),
            allocs: 0,
            aliased_maps: 0,
        }
    }
}

// ---------------------------------------------------------------------------
// Slot metadata
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Free,
    /// Alignment padding before the head of a block.
    Pad,
    /// Slot holding the start of a mapping's data.
    Head,
    /// Further slot of a mapping.
    Body,
}

/// Metadata of one slot; an [`Area`] keeps one per slot in caller-provided
/// storage. Create storage filled with [`Slot::new`]; [`Pool::new_area`]
/// initialises it.
///
/// The meaning of the fields depends on the slot's kind:
///
/// - free: `run` is the number of free slots from this one to the next
///   used slot or the end of the segment (upstream's `list`);
/// - used (padding, head or body of a block): `run` is the number of slots
///   from this one to the end of its block;
/// - head: `orig`, `size` and `offset` describe the mapping, `link` is the
///   number of padding slots before it;
/// - padding: `link` is the distance forward to the head;
/// - body: `link` is the distance back to the head.
///
/// `seg_max` and `seg_free` are only meaningful on the first slot of a
/// segment: an upper bound of the length of the longest free run of that
/// segment (exact after a failed walk of the segment), and the
/// offset in the segment of its first free slot (the segment length if
/// none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    orig: u64,
    size: u32,
    run: u16,
    link: u16,
    offset: u16,
    seg_max: u16,
    seg_free: u16,
    kind: Kind,
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

impl Slot {
    /// An uninitialised slot, to fill area storage with.
    pub const fn new() -> Self {
        Self {
            orig: 0,
            size: 0,
            run: 0,
            link: 0,
            offset: 0,
            seg_max: 0,
            seg_free: 0,
            kind: Kind::Free,
        }
    }

    /// Turns the slot into a free slot with the given run, keeping the
    /// segment summary.
    fn set_free(&mut self, run: u16) {
        self.orig = 0;
        self.size = 0;
        self.run = run;
        self.link = 0;
        self.offset = 0;
        self.kind = Kind::Free;
    }
}

/// Converts a slot count bounded by the segment length to `u16`.
fn slot_u16(x: usize) -> Result<u16, Corrupt> {
    u16::try_from(x).map_err(|_| Corrupt)
}

// ---------------------------------------------------------------------------
// Geometry and pools
// ---------------------------------------------------------------------------

/// Validated shape of a pool, copied into each of its areas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    base: u64,
    nslabs: usize,
    slot_shift: u32,
    seg: usize,
    page_shift: u32,
}

impl Geometry {
    const fn slot_size(&self) -> u64 {
        1u64 << self.slot_shift
    }

    const fn slot_mask(&self) -> u64 {
        self.slot_size() - 1
    }

    /// Address of pool slot `idx` (no overflow for `idx <= nslabs`, checked
    /// at construction; still computed with checks).
    #[inline(always)]
    fn slot_addr(&self, idx: usize) -> Option<u64> {
        to_u64(idx)
            .checked_mul(self.slot_size())?
            .checked_add(self.base)
    }

    /// Pool index of the slot containing `addr`, if inside the pool.
    #[inline]
    fn slot_of(&self, addr: u64) -> Option<usize> {
        let rel = addr.checked_sub(self.base)?;
        let idx = usize::try_from(rel >> self.slot_shift).ok()?;
        (idx < self.nslabs).then_some(idx)
    }

    /// Length of the longest segment (the first one).
    fn max_seg_len(&self) -> usize {
        self.seg.min(self.nslabs)
    }
}

/// One pool: validated geometry plus a counter of slots in use.
///
/// # Invariants
///
/// - `1 <= nareas <= nsegs`, `nsegs = ceil(nslabs / seg)`;
/// - area `i` holds segments `i * q + min(i, r) ..` (the first `r` areas
///   hold `q + 1` segments, the others `q`), so every area starts on a
///   segment boundary and no segment is shared by two areas;
/// - `base + nslabs * slot_size` does not overflow.
#[derive(Debug)]
pub struct Pool {
    geo: Geometry,
    nsegs: usize,
    nareas: usize,
    seg_q: usize,
    seg_r: usize,
    /// `log2` of the slots per area when all areas hold the same power of two of them (the
    /// usual layout): finds a slot's area with a shift instead of divisions.
    area_shift: Option<u32>,
}

impl Pool {
    /// Checks `cfg` and computes the area layout.
    pub fn new(cfg: &PoolConfig) -> Result<Self, ConfigError> {
        if !(MIN_SLOT_SHIFT..=MAX_SLOT_SHIFT).contains(&cfg.slot_shift) {
            return Err(ConfigError::BadSlotShift);
        }
        if cfg.page_shift < cfg.slot_shift || cfg.page_shift > MAX_PAGE_SHIFT {
            return Err(ConfigError::BadPageShift);
        }
        if cfg.segment_slots == 0 || cfg.segment_slots > MAX_SEGMENT_SLOTS {
            return Err(ConfigError::BadSegmentSize);
        }
        if cfg.nslabs == 0 {
            return Err(ConfigError::Empty);
        }
        let page_mask = (1u64 << cfg.page_shift) - 1;
        if cfg.base & page_mask != 0 {
            return Err(ConfigError::Misaligned);
        }
        let bytes = to_u64(cfg.nslabs)
            .checked_mul(1u64 << cfg.slot_shift)
            .ok_or(ConfigError::AddressOverflow)?;
        cfg.base
            .checked_add(bytes)
            .ok_or(ConfigError::AddressOverflow)?;

        let nsegs = cfg.nslabs.div_ceil(cfg.segment_slots);
        let want = cfg
            .cpus
            .max(1)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX);
        let nareas = want.min(nsegs).max(1);
        let (seg_q, seg_r) = (nsegs / nareas, nsegs % nareas);
        let area_slots = seg_q.checked_mul(cfg.segment_slots);
        let area_shift = area_slots
            .filter(|n| seg_r == 0 && n.is_power_of_two())
            .filter(|n| n.checked_mul(nareas) == Some(cfg.nslabs))
            .map(|n| n.trailing_zeros());
        Ok(Self {
            geo: Geometry {
                base: cfg.base,
                nslabs: cfg.nslabs,
                slot_shift: cfg.slot_shift,
                seg: cfg.segment_slots,
                page_shift: cfg.page_shift,
            },
            nsegs,
            nareas,
            seg_q,
            seg_r,
            area_shift,
        })
    }

    /// Address of the first slot.
    pub fn start(&self) -> u64 {
        self.geo.base
    }

    /// Address just past the last slot.
    pub fn end(&self) -> u64 {
        // Cannot fail: checked in `new`.
        self.geo.slot_addr(self.geo.nslabs).unwrap_or(u64::MAX)
    }

    /// True if `addr` lies inside the pool (upstream `is_swiotlb_buffer`).
    pub fn contains(&self, addr: u64) -> bool {
        self.geo.slot_of(addr).is_some()
    }

    /// Number of slots.
    pub fn slot_count(&self) -> usize {
        self.geo.nslabs
    }

    /// Slot size in bytes.
    pub fn slot_size(&self) -> u64 {
        self.geo.slot_size()
    }

    /// Slots per (full) segment.
    pub fn segment_slots(&self) -> usize {
        self.geo.seg
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.nsegs
    }

    /// Number of areas.
    pub fn area_count(&self) -> usize {
        self.nareas
    }

    /// First segment of area `area` (for `area <= nareas`).
    fn area_first_seg(&self, area: usize) -> usize {
        // area <= nareas <= nsegs, so no overflow.
        area.saturating_mul(self.seg_q)
            .saturating_add(area.min(self.seg_r))
    }

    /// Pool index of the first slot of area `area`.
    pub fn area_first_slot(&self, area: usize) -> Option<usize> {
        if area >= self.nareas {
            return None;
        }
        self.area_first_seg(area).checked_mul(self.geo.seg)
    }

    /// Number of slots of area `area`: the length of the storage to give to
    /// [`Pool::new_area`].
    pub fn area_slots(&self, area: usize) -> Option<usize> {
        let first = self.area_first_slot(area)?;
        let end_seg = self.area_first_seg(area.checked_add(1)?);
        let end = end_seg.checked_mul(self.geo.seg)?.min(self.geo.nslabs);
        end.checked_sub(first)
    }

    /// Area holding pool slot `idx`.
    #[inline]
    fn area_of_slot(&self, idx: usize) -> Option<usize> {
        if idx >= self.geo.nslabs {
            return None;
        }
        if let Some(shift) = self.area_shift {
            // Every area holds the same power-of-two number of slots.
            return Some(idx >> shift).filter(|&a| a < self.nareas);
        }
        // Checked divisions: no panic path for the kernel build (the divisors are never zero).
        let seg = idx.checked_div(self.geo.seg)?;
        let big = self.seg_q.checked_add(1)?;
        let split = self.seg_r.checked_mul(big)?;
        let area = if seg < split {
            seg.checked_div(big)?
        } else {
            self.seg_r
                .checked_add((seg - split).checked_div(self.seg_q)?)?
        };
        (area < self.nareas).then_some(area)
    }

    /// Area holding `addr`, if `addr` is inside the pool.
    #[inline]
    pub fn area_of(&self, addr: u64) -> Option<usize> {
        self.area_of_slot(self.geo.slot_of(addr)?)
    }

    /// Builds area `area` on `storage`, which must hold exactly
    /// [`Pool::area_slots`] slots; all slots start free.
    pub fn new_area<S>(&self, area: usize, mut storage: S) -> Result<Area<S>, ConfigError>
    where
        S: DerefMut<Target = [Slot]>,
    {
        let expected = self.area_slots(area).ok_or(ConfigError::NoSuchArea)?;
        let first = self.area_first_slot(area).ok_or(ConfigError::NoSuchArea)?;
        if storage.len() != expected {
            return Err(ConfigError::StorageLength {
                expected,
                got: storage.len(),
            });
        }
        let seg = self.geo.seg;
        for chunk in storage.chunks_mut(seg) {
            let len = chunk.len();
            for (j, slot) in chunk.iter_mut().enumerate() {
                *slot = Slot::new();
                let run = u16::try_from(len - j).map_err(|_| ConfigError::BadSegmentSize)?;
                slot.set_free(run);
            }
            if let Some(s) = chunk.first_mut() {
                s.seg_max = u16::try_from(len).map_err(|_| ConfigError::BadSegmentSize)?;
                s.seg_free = 0;
            }
        }
        Ok(Area {
            slots: storage,
            geo: self.geo,
            index: area,
            first,
            used: 0,
            counters: AreaCounters::default(),
        })
    }

    /// Largest mapping size guaranteed to fit an empty segment for a device
    /// with `min_align_mask` and no `alloc_align_mask` (upstream
    /// `swiotlb_max_mapping_size`). Larger requests may still fit, depending
    /// on the original address.
    pub fn max_mapping_size(&self, min_align_mask: u64) -> usize {
        let slot = self.geo.slot_size();
        let seg_bytes = to_u64(self.geo.max_seg_len()).saturating_mul(slot);
        let round_up = |m: u64| {
            if m == 0 {
                0
            } else {
                m.saturating_add(slot) & !(slot - 1)
            }
        };
        let mut lost = round_up(min_align_mask);
        // Page alignment of page-sized mappings costs up to a page minus a
        // slot when segments do not start on page boundaries.
        let page = 1u64 << self.geo.page_shift;
        if seg_bytes.checked_rem(page) != Some(0) {
            lost = lost.max(page - slot);
        }
        usize::try_from(seg_bytes.saturating_sub(lost)).unwrap_or(usize::MAX)
    }

    /// Checks `req` against this pool's geometry: computes the padding, the
    /// number of slots and the admissible start slots (upstream
    /// `swiotlb_tbl_map_single` + `swiotlb_search_pool_area` rules):
    ///
    /// - `offset = orig & min_align_mask & (alloc_align_mask | slot_mask)`;
    ///   the block holds `align_up(size + offset, alloc_align_mask + 1)`
    ///   bytes; `offset / slot_size` leading slots are padding and the data
    ///   starts `offset % slot_size` bytes into the next slot;
    /// - the block start is aligned to `alloc_align_mask + 1`, or to the
    ///   page size if the block is at least a page and neither mask is set,
    ///   and at least to a slot;
    /// - the bits of `min_align_mask` above that alignment equal those of
    ///   `orig`, so the returned address keeps all `min_align_mask` bits of
    ///   `orig`;
    /// - the block fits in one segment and does not cross a multiple of
    ///   `seg_boundary_mask + 1`.
    #[inline(always)]
    pub fn plan(&self, req: &MapRequest) -> Result<Plan, MapError> {
        let geo = self.geo;
        if req.size == 0 {
            return Err(MapError::ZeroSize);
        }
        if !is_low_mask(req.min_align_mask)
            || !is_low_mask(req.alloc_align_mask)
            || !is_low_mask(req.seg_boundary_mask)
        {
            return Err(MapError::BadMask);
        }
        let size = u32::try_from(req.size).map_err(|_| MapError::TooLarge)?;
        if req.orig.checked_add(u64::from(size) - 1).is_none() {
            return Err(MapError::BadRange);
        }
        let slot_mask = geo.slot_mask();
        let offset_full = req.orig & req.min_align_mask & (req.alloc_align_mask | slot_mask);
        let unit = req
            .alloc_align_mask
            .checked_add(1)
            .ok_or(MapError::TooLarge)?;
        let bytes = u64::from(size)
            .checked_add(offset_full)
            // `unit` is a power of two (a low mask plus one).
            .and_then(|b| Some(b.checked_add(unit - 1)? & !(unit - 1)))
            .ok_or(MapError::TooLarge)?;
        let nslots =
            usize::try_from(bytes.div_ceil(geo.slot_size())).map_err(|_| MapError::TooLarge)?;
        if nslots > geo.max_seg_len() {
            return Err(MapError::TooLarge);
        }
        let pad = usize::try_from(offset_full >> geo.slot_shift).map_err(|_| MapError::TooLarge)?;
        let offset = u16::try_from(offset_full & slot_mask).map_err(|_| MapError::TooLarge)?;

        let page_mask = (1u64 << geo.page_shift) - 1;
        let mut align = req.alloc_align_mask;
        if align == 0 && req.min_align_mask == 0 && bytes > page_mask {
            align = page_mask;
        }
        align |= slot_mask;
        let keep = req.min_align_mask & !align;
        let mask = align | keep;
        let align_slots = mask >> geo.slot_shift;
        let want = (req.orig & keep) >> geo.slot_shift;
        let base_slot = geo.base >> geo.slot_shift;
        let residue = want.wrapping_sub(base_slot) & align_slots;

        let boundary = if req.seg_boundary_mask == u64::MAX {
            None
        } else {
            let period = (req.seg_boundary_mask >> geo.slot_shift) + 1;
            if to_u64(nslots) > period {
                return Err(MapError::TooLarge);
            }
            Some(period)
        };
        Ok(Plan {
            geo,
            orig: req.orig,
            size,
            nslots,
            pad,
            offset,
            align: align_slots,
            residue,
            boundary,
        })
    }
}

/// Checks that a pool built from `cfg` would not overlap any pool of `set`
/// (call before adding a grown pool).
pub fn check_new_pool<P: PoolSet>(set: &P, cfg: &PoolConfig) -> Result<Pool, ConfigError> {
    let pool = Pool::new(cfg)?;
    for i in 0..set.pool_count() {
        if let Some(other) = set.pool(i) {
            if pool.start() < other.end() && other.start() < pool.end() {
                return Err(ConfigError::Overlap);
            }
        }
    }
    Ok(pool)
}

// ---------------------------------------------------------------------------
// Areas
// ---------------------------------------------------------------------------

/// One area of a pool: the metadata of its slots and its counters. The
/// caller keeps each area behind a lock of its own.
///
/// # Invariants
///
/// - `slots.len()` is the area's slot count and the area starts on a
///   segment boundary (pool slot `first`); segment `k` of the area is local
///   slots `k * seg .. min((k + 1) * seg, len)`;
/// - in every segment, free slots carry the length of the free run from
///   them to the next used slot or segment end, and every used slot belongs
///   to exactly one block `[start, start + n)` lying inside the segment,
///   made of `pad` padding slots, one head and `n - pad - 1` body slots;
/// - the first slot of each segment carries an upper bound (at most the
///   segment length) of the segment's longest free run, and the offset of
///   its first free slot;
/// - `used` is the number of used slots.
#[derive(Debug)]
pub struct Area<S> {
    slots: S,
    geo: Geometry,
    index: usize,
    first: usize,
    used: usize,
    /// Counters kept under the area's lock, with no atomic operation on the
    /// mapping path: see [`AreaCounters`].
    counters: AreaCounters,
}

/// Counters of one area, updated inside its critical sections by [`map`]
/// and [`unmap_with`] and summed over the areas by [`snapshot`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AreaCounters {
    /// Blocks allocated.
    pub allocs: u64,
    /// Bytes of mappings copied in at map time and copied back inside the
    /// free's critical section.
    pub bounced_bytes: u64,
    /// Mappings placed a whole multiple of [`ALIAS_PAGES`] pages from their
    /// original (counted by [`Area::try_alloc`], kept after the unmap, taken back by
    /// [`withdraw`]).
    pub aliased: u64,
}

/// A consistency violation found by [`Area::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvariantViolation {
    /// Local index of the offending slot.
    pub slot: usize,
    /// What is wrong.
    pub what: &'static str,
}

/// One live mapping, as listed by [`Area::live_mappings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveMapping {
    /// Bounce address of the data.
    pub addr: u64,
    /// Original address.
    pub orig: u64,
    /// Mapping size in bytes.
    pub size: usize,
}

/// Iterator over the live mappings of an area.
#[derive(Debug)]
pub struct LiveMappings<'a> {
    slots: &'a [Slot],
    geo: Geometry,
    first: usize,
    pos: usize,
}

impl Iterator for LiveMappings<'_> {
    type Item = LiveMapping;

    fn next(&mut self) -> Option<LiveMapping> {
        while let Some(s) = self.slots.get(self.pos) {
            let local = self.pos;
            self.pos = self.pos.saturating_add(1);
            if s.kind == Kind::Head {
                let addr = self
                    .geo
                    .slot_addr(self.first.saturating_add(local))?
                    .checked_add(u64::from(s.offset))?;
                return Some(LiveMapping {
                    addr,
                    orig: s.orig,
                    size: usize::try_from(s.size).ok()?,
                });
            }
        }
        None
    }
}

impl<S: DerefMut<Target = [Slot]>> Area<S> {
    /// Index of the area in its pool.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Pool index of the area's first slot.
    pub fn first_slot(&self) -> usize {
        self.first
    }

    /// Number of slots of the area.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The area's counters.
    pub fn counters(&self) -> AreaCounters {
        self.counters
    }

    /// Slots in use (exact, read under the area lock).
    pub fn used_slots(&self) -> usize {
        self.used
    }

    /// Free slots.
    pub fn free_slots(&self) -> usize {
        self.slots.len().saturating_sub(self.used)
    }

    /// Length of the longest free run of slots (any segment); O(slots),
    /// for diagnostics.
    pub fn max_free_run(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.kind == Kind::Free)
            .map(|s| usize::from(s.run))
            .max()
            .unwrap_or(0)
    }

    /// Gives the storage back.
    pub fn into_storage(self) -> S {
        self.slots
    }

    /// Lists the live mappings (for leak reports at teardown).
    pub fn live_mappings(&self) -> LiveMappings<'_> {
        LiveMappings {
            slots: &self.slots,
            geo: self.geo,
            first: self.first,
            pos: 0,
        }
    }

    fn slot(&self, i: usize) -> Result<&Slot, Corrupt> {
        self.slots.get(i).ok_or(Corrupt)
    }

    fn slot_mut(&mut self, i: usize) -> Result<&mut Slot, Corrupt> {
        self.slots.get_mut(i).ok_or(Corrupt)
    }

    /// Local bounds `[start, end)` of the segment holding local slot `i`.
    fn seg_bounds(&self, i: usize) -> (usize, usize) {
        // Checked: no division panic path in the kernel build (`seg` is never zero).
        let seg = self.geo.seg;
        let start = if seg.is_power_of_two() {
            i & !(seg - 1)
        } else {
            i - i.checked_rem(seg).unwrap_or(0)
        };
        let end = start.saturating_add(self.geo.seg).min(self.slots.len());
        (start, end)
    }

    /// Local index of the slot holding `addr`, if it is in this area.
    fn local_of(&self, addr: u64) -> Option<usize> {
        let idx = self.geo.slot_of(addr)?;
        let local = idx.checked_sub(self.first)?;
        (local < self.slots.len()).then_some(local)
    }

    /// Smallest pool index `>= x` whose slot may start a block of `plan`.
    fn align_up(plan: &Plan, x: usize) -> Option<usize> {
        let x64 = to_u64(x);
        let step = plan.residue.wrapping_sub(x64) & plan.align;
        usize::try_from(x64.checked_add(step)?).ok()
    }

    /// Whether the block of `plan` at pool index `c` crosses a segment boundary of the plan:
    /// `Some(None)` if not, `Some(Some(b))` with the pool index `b` of the last boundary it
    /// crosses, `None` if the addresses do not compute.
    #[inline(always)]
    fn boundary_in(plan: &Plan, c: usize) -> Option<Option<usize>> {
        let Some(period) = plan.boundary else {
            return Some(None);
        };
        let base_slot = plan.geo.base >> plan.geo.slot_shift;
        let s = base_slot.checked_add(to_u64(c))?;
        let e = s.checked_add(to_u64(plan.nslots).checked_sub(1)?)?;
        // The period is a power of two (a low mask plus one).
        let shift = period.trailing_zeros();
        if s >> shift == e >> shift {
            return Some(None);
        }
        let b = (e >> shift) << shift;
        Some(Some(usize::try_from(b.checked_sub(base_slot)?).ok()?))
    }

    /// First admissible start of a block of `plan` inside the free run of
    /// pool indices `[rs, re)`.
    #[inline(always)]
    fn fit_in_run(plan: &Plan, rs: usize, re: usize) -> Option<usize> {
        let mut c = Self::align_up(plan, rs)?;
        loop {
            let end = c.checked_add(plan.nslots)?;
            if end > re {
                return None;
            }
            match Self::boundary_in(plan, c)? {
                None => return Some(c),
                // Move to the boundary and align again.
                Some(b) => c = Self::align_up(plan, b)?,
            }
        }
    }

    /// Last admissible start of a block of `plan` in the free run `[from, re)` of pool indices,
    /// `from` being the run's first admissible start; `None` if the block's segment boundary
    /// leaves none at or after `from`.
    fn last_fit_in_run(plan: &Plan, from: usize, re: usize) -> Option<usize> {
        let mut t = re.checked_sub(plan.nslots)?;
        // Bounded: a block that fits between two boundaries is placed in the second round.
        for _ in 0..2 {
            let t64 = to_u64(t);
            let down = t64.wrapping_sub(plan.residue) & plan.align;
            t = usize::try_from(t64.checked_sub(down)?).ok()?;
            if t < from {
                return None;
            }
            match Self::boundary_in(plan, t)? {
                None => return Some(t),
                // Move below the boundary and align again.
                Some(b) => t = b.checked_sub(plan.nslots)?,
            }
        }
        None
    }

    /// Finds a start (local index) for `plan`: segments in address order,
    /// skipping a segment in O(1) when its longest free run is too short;
    /// inside a segment, the tighter of the first [`FIT_CANDIDATES`] free
    /// runs that can hold the block (bounded best fit), placed at its first
    /// admissible slot; while the area is less than
    /// [`ALIAS_AVOID_BELOW_PERCENT`] used, at the other end of the run instead
    /// where that end does not alias its original ([`ALIAS_PAGES`]) and this
    /// one does, or overlaps it less in the TLB ([`Area::place`]). Room that
    /// only aliases is taken when no other is found in it and in the next
    /// [`ALIAS_EXTRA_SEGMENTS`] segments with room.
    ///
    /// `seg_max` is an upper bound of the longest free run; a walk that
    /// covers a whole segment without finding room tightens it to the
    /// longest run seen, so that the next request of that size skips the
    /// segment in O(1).
    fn search(&mut self, plan: &Plan) -> Result<Option<(usize, bool)>, Corrupt> {
        let n = plan.nslots;
        let len = self.slots.len();
        let mut seg_start = 0;
        let mut fallback: Option<usize> = None;
        let mut extra = 0usize;
        let avoid = self.used.saturating_mul(100) < len.saturating_mul(ALIAS_AVOID_BELOW_PERCENT);
        while seg_start < len {
            let seg_end = seg_start.saturating_add(self.geo.seg).min(len);
            let head = self.slot(seg_start)?;
            if usize::from(head.seg_max) >= n {
                let mut best: Option<(usize, usize)> = None;
                let mut seen = 0usize;
                let mut longest = 0u16;
                let mut i = seg_start.saturating_add(usize::from(head.seg_free));
                while i < seg_end {
                    let s = self.slot(i)?;
                    let run = usize::from(s.run).max(1);
                    if s.kind == Kind::Free {
                        longest = longest.max(s.run);
                    }
                    if s.kind == Kind::Free && run >= n && !matches!(best, Some((l, _)) if run >= l)
                    {
                        let rs = self.first.checked_add(i).ok_or(Corrupt)?;
                        let re = rs.checked_add(run).ok_or(Corrupt)?;
                        if let Some(c) = Self::fit_in_run(plan, rs, re) {
                            let (c, aliased) = if avoid {
                                Self::place(plan, rs, c, re)
                            } else {
                                (c, false)
                            };
                            if aliased {
                                fallback.get_or_insert(c - self.first);
                            } else {
                                best = Some((run, c - self.first));
                                seen += 1;
                                if run == n || seen >= FIT_CANDIDATES {
                                    break;
                                }
                            }
                        }
                    }
                    i = i.saturating_add(run);
                }
                if let Some((_, c)) = best {
                    // Without the preference nothing was checked: say whether it aliases.
                    let aliased = !avoid && plan.aliases(self.first.saturating_add(c));
                    return Ok(Some((c, aliased)));
                }
                // Walked the whole segment without a placement that does not alias: the
                // longest run seen is exact, tighten the bound.
                self.slot_mut(seg_start)?.seg_max = longest;
                if fallback.is_some() {
                    extra += 1;
                    if extra > ALIAS_EXTRA_SEGMENTS {
                        break;
                    }
                }
            }
            seg_start = seg_end;
        }
        Ok(fallback.map(|c| (c, true)))
    }

    /// Where in the free run `[rs, re)` a block of `plan` whose first admissible start is `c`
    /// goes, and whether its mapping aliases its original ([`ALIAS_PAGES`]). Only the run's two
    /// ends are considered, so the free rest stays one run at least as long as first fit leaves:
    /// no placement costs room a later mapping could need. The left end is taken unless it
    /// aliases or, for a mapping of [`TLB_SPREAD_MIN_PAGES`] or more, the right end shares fewer
    /// TLB entries with the original ([`Plan::tlb_overlap`]).
    #[inline]
    fn place(plan: &Plan, rs: usize, c: usize, re: usize) -> (usize, bool) {
        let left_aliases = plan.aliases(c);
        let left_overlap = plan.tlb_overlap(c);
        if !left_aliases && matches!(left_overlap, None | Some(0)) {
            return (c, false);
        }
        // The right end, if it leaves the free rest at least as long as the left end does.
        let right = Self::last_fit_in_run(plan, c, re).filter(|&t| {
            t > c && re.saturating_sub(t.saturating_add(plan.nslots)) <= c.saturating_sub(rs)
        });
        let Some(t) = right else {
            return (c, left_aliases);
        };
        let right_aliases = plan.aliases(t);
        let better = match (left_aliases, right_aliases) {
            (true, false) => true,
            (false, true) => false,
            _ => plan.tlb_overlap(t) < left_overlap,
        };
        if better {
            (t, right_aliases)
        } else {
            (c, left_aliases)
        }
    }

    /// Marks the block of `plan` at local index `c` as used.
    #[inline(always)]
    fn take(&mut self, c: usize, plan: &Plan) -> Result<(), Corrupt> {
        let n = plan.nslots;
        let (ss, se) = self.seg_bounds(c);
        let end = c.checked_add(n).ok_or(Corrupt)?;
        let first = self.slot(c)?;
        if first.kind != Kind::Free || usize::from(first.run) < n || end > se {
            return Err(Corrupt);
        }
        let n16 = slot_u16(n)?;
        let pad16 = slot_u16(plan.pad)?;
        if pad16 >= n16 {
            return Err(Corrupt);
        }
        // Only the head describes the mapping; padding and body slots carry their kind, run and
        // link (what is left in their other fields is never read).
        let block = self.slots.get_mut(c..end).ok_or(Corrupt)?;
        let mut k16 = 0u16;
        for s in block.iter_mut() {
            // `k16 < n16` here, and each subtraction is of the smaller value: none wraps.
            s.run = n16.wrapping_sub(k16);
            if k16 < pad16 {
                s.kind = Kind::Pad;
                s.link = pad16.wrapping_sub(k16);
            } else if k16 == pad16 {
                *s = Slot {
                    orig: plan.orig,
                    size: plan.size,
                    run: n16.wrapping_sub(k16),
                    link: pad16,
                    offset: plan.offset,
                    seg_max: s.seg_max,
                    seg_free: s.seg_free,
                    kind: Kind::Head,
                };
            } else {
                s.kind = Kind::Body;
                s.link = k16.wrapping_sub(pad16);
            }
            k16 = k16.wrapping_add(1);
        }
        let mut count = 0u16;
        let mut i = c;
        while i > ss {
            i -= 1;
            let s = self.slot_mut(i)?;
            if s.kind != Kind::Free {
                break;
            }
            count = count.checked_add(1).ok_or(Corrupt)?;
            s.run = count;
        }
        // seg_max stays an upper bound; search() tightens it lazily.
        if c == ss.saturating_add(usize::from(self.slot(ss)?.seg_free)) {
            // The block took the first free slot: find the next one.
            let mut j = end;
            while j < se {
                let s = self.slot(j)?;
                if s.kind == Kind::Free {
                    break;
                }
                j = j.saturating_add(usize::from(s.run).max(1));
            }
            self.slot_mut(ss)?.seg_free = slot_u16(j.min(se) - ss)?;
        }
        self.used = self.used.checked_add(n).ok_or(Corrupt)?;
        Ok(())
    }

    /// Tries to allocate a block for `plan` in this area. `Ok(None)` means
    /// the area has no room; the caller goes on with the next area.
    pub fn try_alloc(&mut self, plan: &Plan) -> Result<Option<Block>, MapError> {
        if plan.geo != self.geo {
            return Err(MapError::WrongPool);
        }
        if self.free_slots() < plan.nslots {
            return Ok(None);
        }
        let Some((c, aliased)) = self.search(plan)? else {
            return Ok(None);
        };
        self.take(c, plan)?;
        self.counters.aliased = self.counters.aliased.wrapping_add(u64::from(aliased));
        let first_slot = self.first.checked_add(c).ok_or(MapError::Corrupted)?;
        let head = first_slot
            .checked_add(plan.pad)
            .ok_or(MapError::Corrupted)?;
        let addr = self
            .geo
            .slot_addr(head)
            .and_then(|a| a.checked_add(u64::from(plan.offset)))
            .ok_or(MapError::Corrupted)?;
        Ok(Some(Block {
            addr,
            area: self.index,
            first_slot,
            nslots: plan.nslots,
            pad_slots: plan.pad,
        }))
    }

    /// Local index of the head of the mapping covering local slot `local`.
    fn head_of(&self, local: usize) -> Result<usize, UnmapError> {
        let s = self.slot(local)?;
        match s.kind {
            Kind::Free => Err(UnmapError::NotMapped),
            Kind::Pad => Err(UnmapError::NotMapped),
            Kind::Head => Ok(local),
            Kind::Body => local
                .checked_sub(usize::from(s.link))
                .ok_or(UnmapError::Corrupted),
        }
    }

    /// Finds the bytes to copy for `size` bytes at bounce address `addr`,
    /// which may point anywhere inside a live mapping (sync of a sub-range).
    pub fn lookup(&self, addr: u64, size: usize) -> Result<SyncRange, UnmapError> {
        let local = self.local_of(addr).ok_or(UnmapError::NotBounceAddress)?;
        let h = self.head_of(local)?;
        let head = self.slot(h)?;
        if head.kind != Kind::Head {
            return Err(UnmapError::Corrupted);
        }
        let start = self
            .first
            .checked_add(h)
            .and_then(|i| self.geo.slot_addr(i))
            .and_then(|a| a.checked_add(u64::from(head.offset)))
            .ok_or(UnmapError::Corrupted)?;
        let delta = addr.checked_sub(start).ok_or(UnmapError::NotMapped)?;
        if delta >= u64::from(head.size) {
            return Err(UnmapError::NotMapped);
        }
        let delta_us = usize::try_from(delta).map_err(|_| UnmapError::Corrupted)?;
        let mapped = usize::try_from(head.size).map_err(|_| UnmapError::Corrupted)?;
        let avail = mapped - delta_us;
        let orig = head.orig.checked_add(delta).ok_or(UnmapError::Corrupted)?;
        Ok(SyncRange {
            orig,
            bounce: addr,
            len: size.min(avail),
            truncated: size > avail,
            offset_in_mapping: delta_us,
        })
    }

    /// Frees the mapping that [`map`] returned at `addr` with `size` bytes.
    /// Anything else (an address never handed out, a second free, an
    /// address inside a mapping, another size) is refused and leaves the
    /// area untouched.
    pub fn release(&mut self, addr: u64, size: usize) -> Result<Released, UnmapError> {
        self.release_with(addr, size, |_| {})
    }

    /// [`Area::release`], calling `before_free` with the whole mapping's range once the
    /// request is known to be exactly a live mapping, before its slots are freed: the caller
    /// copies the bounce buffer back there, with the area still locked. Nothing is called for
    /// a refused request.
    #[inline(always)]
    pub fn release_with<F>(
        &mut self,
        addr: u64,
        size: usize,
        before_free: F,
    ) -> Result<Released, UnmapError>
    where
        F: FnOnce(&SyncRange),
    {
        let local = self.local_of(addr).ok_or(UnmapError::NotBounceAddress)?;
        let s = *self.slot(local)?;
        match s.kind {
            Kind::Head => {}
            Kind::Free => return Err(UnmapError::NotMapped),
            Kind::Pad => return Err(UnmapError::NotMapped),
            Kind::Body => return Err(UnmapError::NotMappingStart),
        }
        if addr & self.geo.slot_mask() != u64::from(s.offset) {
            return Err(UnmapError::NotMappingStart);
        }
        let mapped = usize::try_from(s.size).map_err(|_| UnmapError::Corrupted)?;
        if size != mapped {
            return Err(UnmapError::SizeMismatch {
                mapped,
                given: size,
            });
        }
        let pad = usize::from(s.link);
        let n = pad.checked_add(usize::from(s.run)).ok_or(Corrupt)?;
        let start = local.checked_sub(pad).ok_or(Corrupt)?;
        let end = start.checked_add(n).ok_or(Corrupt)?;
        let (ss, se) = self.seg_bounds(local);
        if start < ss || end > se {
            return Err(UnmapError::Corrupted);
        }
        // Check the block's ends before changing anything (the whole block is checked by
        // `check`, in the tests and the fuzzer).
        let (first, last) = (self.slot(start)?, self.slot(end - 1)?);
        if first.kind == Kind::Free
            || usize::from(first.run) != n
            || last.kind == Kind::Free
            || last.run != 1
        {
            return Err(UnmapError::Corrupted);
        }
        before_free(&SyncRange {
            orig: s.orig,
            bounce: addr,
            len: mapped,
            truncated: false,
            offset_in_mapping: 0,
        });
        let after: u16 = match self.slots.get(end) {
            Some(next) if end < se && next.kind == Kind::Free => next.run,
            _ => 0,
        };
        // The merged run stays inside the segment, so the counts fit (checked once).
        let mut count = after.checked_add(slot_u16(n)?).ok_or(Corrupt)?;
        self.slot_mut(local)?.set_free(0);
        let block = self.slots.get_mut(start..end).ok_or(Corrupt)?;
        let mut run = count;
        for s in block.iter_mut() {
            // From `count` down to `after + 1`: never below 1.
            s.run = run;
            s.kind = Kind::Free;
            run = run.wrapping_sub(1);
        }
        let mut i = start;
        while i > ss {
            i -= 1;
            let p = self.slot_mut(i)?;
            if p.kind != Kind::Free {
                break;
            }
            count = count.checked_add(1).ok_or(Corrupt)?;
            p.run = count;
        }
        // `i` is now the first slot of the merged free run (or the used
        // slot just before it).
        let run_start = if self.slot(i)?.kind == Kind::Free {
            i
        } else {
            i + 1
        };
        let seg_head = self.slot_mut(ss)?;
        seg_head.seg_max = seg_head.seg_max.max(count);
        seg_head.seg_free = seg_head.seg_free.min(slot_u16(run_start - ss)?);
        self.used = self.used.checked_sub(n).ok_or(Corrupt)?;
        Ok(Released {
            orig: s.orig,
            size: mapped,
            area: self.index,
            nslots: n,
        })
    }

    /// Verifies every invariant of the area (O(slots)); returns the number
    /// of used slots. Meant for tests, fuzzing and debug checks.
    pub fn check(&self) -> Result<usize, InvariantViolation> {
        let bad = |slot: usize, what: &'static str| InvariantViolation { slot, what };
        let len = self.slots.len();
        let mut used = 0usize;
        let mut seg_start = 0;
        while seg_start < len {
            let seg_end = seg_start.saturating_add(self.geo.seg).min(len);
            let mut longest = 0u16;
            let mut i = seg_start;
            while i < seg_end {
                let s = self.slots.get(i).ok_or(bad(i, "index"))?;
                match s.kind {
                    Kind::Free => {
                        let run = usize::from(s.run);
                        if run == 0 || i + run > seg_end {
                            return Err(bad(i, "free run leaves segment"));
                        }
                        for k in i..i + run {
                            let f = self.slots.get(k).ok_or(bad(k, "index"))?;
                            if f.kind != Kind::Free || usize::from(f.run) != i + run - k {
                                return Err(bad(k, "free run count"));
                            }
                        }
                        if let Some(next) = self.slots.get(i + run) {
                            if i + run < seg_end && next.kind == Kind::Free {
                                return Err(bad(i + run, "free run not maximal"));
                            }
                        }
                        longest = longest.max(s.run);
                        i += run;
                    }
                    Kind::Pad | Kind::Head => {
                        let pad = if s.kind == Kind::Pad {
                            usize::from(s.link)
                        } else {
                            0
                        };
                        let h = i + pad;
                        let head = self.slots.get(h).ok_or(bad(h, "pad past area"))?;
                        if head.kind != Kind::Head {
                            return Err(bad(h, "pad does not lead to head"));
                        }
                        let hpad = usize::from(head.link);
                        let start = h.checked_sub(hpad).ok_or(bad(h, "head pad"))?;
                        if start != i {
                            return Err(bad(h, "head pad count"));
                        }
                        let n = hpad + usize::from(head.run);
                        if usize::from(head.run) == 0 || start + n > seg_end {
                            return Err(bad(h, "block leaves segment"));
                        }
                        if u64::from(head.offset) > self.geo.slot_mask() || head.size == 0 {
                            return Err(bad(h, "head fields"));
                        }
                        let bytes = u64::from(head.offset) + u64::from(head.size);
                        let room = to_u64(usize::from(head.run)) << self.geo.slot_shift;
                        if bytes > room {
                            return Err(bad(h, "mapping exceeds block"));
                        }
                        for k in start..start + n {
                            let b = self.slots.get(k).ok_or(bad(k, "index"))?;
                            let ok = if k < h {
                                b.kind == Kind::Pad && usize::from(b.link) == h - k
                            } else if k == h {
                                true
                            } else {
                                b.kind == Kind::Body && usize::from(b.link) == k - h
                            };
                            if !ok || usize::from(b.run) != start + n - k {
                                return Err(bad(k, "block slot"));
                            }
                        }
                        used += n;
                        i = start + n;
                    }
                    Kind::Body => return Err(bad(i, "body without head")),
                }
            }
            let head = self.slots.get(seg_start).ok_or(bad(seg_start, "index"))?;
            if head.seg_max < longest || usize::from(head.seg_max) > seg_end - seg_start {
                return Err(bad(seg_start, "segment longest-run bound"));
            }
            let first_free = (seg_start..seg_end)
                .find(|&k| self.slots.get(k).is_some_and(|s| s.kind == Kind::Free))
                .unwrap_or(seg_end);
            if usize::from(head.seg_free) != first_free - seg_start {
                return Err(bad(seg_start, "segment first free slot"));
            }
            seg_start = seg_end;
        }
        if used != self.used {
            return Err(bad(0, "used count"));
        }
        Ok(used)
    }
}

// ---------------------------------------------------------------------------
// Sets of pools
// ---------------------------------------------------------------------------

/// The caller's pools, each with its areas behind locks of the caller's.
///
/// Pools are tried in index order for new mappings (pool 0 first, then the
/// pools added later by growth); unmap and lookup route by address. A set
/// may grow while in use if the caller makes [`PoolSet::pool_count`] and
/// [`PoolSet::pool`] safe against a concurrent append (an append-only array
/// published with release ordering); a pool may only be retired once it is
/// out of the set for every CPU and [`pool_slots_in_use`] is 0.
pub trait PoolSet {
    /// Storage of the slot metadata of one area.
    type Storage: DerefMut<Target = [Slot]>;

    /// Counters of the set.
    fn stats(&self) -> &Stats;

    /// Number of pools.
    fn pool_count(&self) -> usize;

    /// Pool `index`, if present.
    fn pool(&self, index: usize) -> Option<&Pool>;

    /// Locks area `area` of pool `pool`, runs `f` on it and unlocks.
    /// Returns `None` if there is no such area. `f` never calls back into
    /// the set.
    fn with_area<R, F>(&self, pool: usize, area: usize, f: F) -> Option<R>
    where
        F: FnOnce(&mut Area<Self::Storage>) -> R;
}

/// Allocates bounce slots for `req` (upstream `swiotlb_tbl_map_single`
/// without the copy): pools in index order; in each pool, the areas starting
/// with `cpu % area_count`, wrapping around, one area lock at a time.
///
/// The caller then copies the original data into the bounce buffer
/// (always, as upstream, so that a partial device write leaves the rest
/// intact): the mapping's bytes are counted as bounced here, in the area's
/// critical section ([`AreaCounters`]), with the allocation.
///
/// This and the functions of the one-page fast path (`plan`, `take`, `fit_in_run`, `release`)
/// are always inlined into the ops table's trampolines: the profile of `make bench` counts each
/// call and return as a separate indirect jump, and without them the path made 13 more calls
/// per map+unmap than the kernel's swiotlb (Documentation/bench.rst, "The fast path").
#[inline(always)]
pub fn map<P: PoolSet>(set: &P, cpu: usize, req: &MapRequest) -> Result<SlotMapping, MapError> {
    let mut examined = false;
    let mut fits_somewhere = false;
    let mut first_err = None;
    for p in 0..set.pool_count() {
        let Some(pool) = set.pool(p) else {
            continue;
        };
        examined = true;
        let plan = match pool.plan(req) {
            Ok(plan) => plan,
            Err(MapError::TooLarge) => continue,
            Err(e) => {
                first_err.get_or_insert(e);
                break;
            }
        };
        fits_somewhere = true;
        let nareas = pool.area_count();
        let start = if nareas.is_power_of_two() {
            cpu & (nareas - 1)
        } else {
            cpu.checked_rem(nareas).unwrap_or(0)
        };
        for k in 0..nareas {
            let a = if start + k >= nareas {
                start + k - nareas
            } else {
                start + k
            };
            let got = set
                .with_area(p, a, |area| {
                    let got = area.try_alloc(&plan);
                    if let Ok(Some(_)) = got {
                        area.counters.allocs = area.counters.allocs.wrapping_add(1);
                        area.counters.bounced_bytes = area
                            .counters
                            .bounced_bytes
                            .wrapping_add(u64::from(plan.size));
                    }
                    got
                })
                .ok_or(MapError::MissingArea)??;
            if let Some(block) = got {
                set.stats().record_alloc(block.nslots);
                return Ok(SlotMapping { pool: p, block });
            }
        }
    }
    let err = match first_err {
        Some(e) => e,
        None if fits_somewhere || !examined => MapError::NoSpace,
        None => MapError::TooLarge,
    };
    if matches!(err, MapError::NoSpace | MapError::TooLarge) {
        set.stats().record_failure();
    }
    Err(err)
}

/// All counters of `set`: its [`Stats`] and the [`AreaCounters`] of every
/// area, each area locked in turn (exact only when the set is quiet).
pub fn snapshot<P: PoolSet>(set: &P) -> StatsSnapshot {
    let mut s = set.stats().snapshot();
    for p in 0..set.pool_count() {
        let n = set.pool(p).map_or(0, Pool::area_count);
        for a in 0..n {
            if let Some(c) = set.with_area(p, a, |area| area.counters()) {
                s.allocs = s.allocs.wrapping_add(c.allocs);
                s.bounced_bytes = s.bounced_bytes.wrapping_add(c.bounced_bytes);
                s.aliased_maps = s.aliased_maps.wrapping_add(c.aliased);
            }
        }
    }
    s
}

/// Pool and area holding bounce address `addr`.
#[inline]
pub fn locate<P: PoolSet>(set: &P, addr: u64) -> Option<(usize, usize)> {
    (0..set.pool_count()).find_map(|p| {
        let pool = set.pool(p)?;
        Some((p, pool.area_of(addr)?))
    })
}

/// True if `addr` lies in one of the pools (upstream `is_swiotlb_buffer`).
pub fn is_bounce_addr<P: PoolSet>(set: &P, addr: u64) -> bool {
    locate(set, addr).is_some()
}

/// Slots in use in pool `pool`, summed over its areas (each area locked in
/// turn, so exact only when the pool is quiet). A grown pool whose count is
/// 0 and that no CPU can reach any more may be retired by the caller.
pub fn pool_slots_in_use<P: PoolSet>(set: &P, pool: usize) -> Option<usize> {
    let n = set.pool(pool)?.area_count();
    let mut used = 0usize;
    for a in 0..n {
        used = used.checked_add(set.with_area(pool, a, |area| area.used_slots())?)?;
    }
    Some(used)
}

/// Finds the original bytes matching `size` bytes at bounce address `addr`
/// (which may lie anywhere inside a live mapping). Used before a sync copy
/// and, with the mapping's own address and size, before the copy-back of an
/// unmap: the caller must copy *before* calling [`unmap`], since the slots
/// may be reused as soon as they are freed.
pub fn lookup<P: PoolSet>(set: &P, addr: u64, size: usize) -> Result<SyncRange, UnmapError> {
    let (p, a) = locate(set, addr).ok_or(UnmapError::NotBounceAddress)?;
    set.with_area(p, a, |area| area.lookup(addr, size))
        .ok_or(UnmapError::MissingArea)?
}

/// Frees the mapping returned by [`map`] at `addr` with `size` bytes
/// (upstream `swiotlb_release_slots`, with every misuse detected and
/// refused instead of corrupting the pool).
pub fn unmap<P: PoolSet>(set: &P, addr: u64, size: usize) -> Result<Released, UnmapError> {
    release(set, addr, size, None::<fn(&SyncRange)>)
}

/// [`unmap`] with one area lock for the copy-back and the free: `before_free` is called with
/// the mapping's range while its area is locked, after the request was found to be exactly a
/// live mapping and before its slots can be reused ([`Area::release_with`]), and copies it
/// back: its bytes are counted as bounced in the same critical section. Meant for small
/// copies; a long copy would hold the area lock for its whole length, so the caller should
/// copy larger mappings between [`lookup`] and [`unmap`] instead.
#[inline(always)]
pub fn unmap_with<P: PoolSet, F: FnOnce(&SyncRange)>(
    set: &P,
    addr: u64,
    size: usize,
    before_free: F,
) -> Result<Released, UnmapError> {
    release(set, addr, size, Some(before_free))
}

/// Takes back a mapping that [`map`] returned but the caller could not hand out (its bounce
/// address turned out to be unusable for the device): frees it as [`unmap`] does and, in the same
/// critical section, removes it from the area's counters, so that `allocs` and `bounced_bytes`
/// count only the mappings that were made. Refused, and nothing changed, unless `addr` and `size`
/// are exactly a live mapping's.
pub fn withdraw<P: PoolSet>(set: &P, addr: u64, size: usize) -> Result<Released, UnmapError> {
    free_in_area(set, addr, |area| {
        let r = area.release(addr, size);
        if let Ok(rel) = &r {
            area.counters.allocs = area.counters.allocs.wrapping_sub(1);
            area.counters.bounced_bytes =
                area.counters.bounced_bytes.wrapping_sub(to_u64(rel.size));
            let aliased = is_alias(page_distance(addr, rel.orig, area.geo.page_shift));
            area.counters.aliased = area.counters.aliased.wrapping_sub(u64::from(aliased));
        }
        r
    })
}

/// [`unmap`], and [`unmap_with`] if `copy_back` is given.
#[inline(always)]
fn release<P: PoolSet, F: FnOnce(&SyncRange)>(
    set: &P,
    addr: u64,
    size: usize,
    copy_back: Option<F>,
) -> Result<Released, UnmapError> {
    free_in_area(set, addr, |area| match copy_back {
        None => area.release(addr, size),
        Some(f) => {
            let r = area.release_with(addr, size, f);
            if let Ok(rel) = &r {
                area.counters.bounced_bytes =
                    area.counters.bounced_bytes.wrapping_add(to_u64(rel.size));
            }
            r
        }
    })
}

/// Runs `free` on the area holding `addr`, under its lock, and records the slots it released
/// in the set's statistics.
#[inline(always)]
fn free_in_area<P: PoolSet, F>(set: &P, addr: u64, free: F) -> Result<Released, UnmapError>
where
    F: FnOnce(&mut Area<P::Storage>) -> Result<Released, UnmapError>,
{
    let (p, a) = locate(set, addr).ok_or(UnmapError::NotBounceAddress)?;
    let released = set.with_area(p, a, free).ok_or(UnmapError::MissingArea)??;
    set.stats().record_free(released.nslots);
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn withdraw_undoes_the_counts_of_a_map() {
        let set = TestSet::new(&[PoolConfig::new(0x10_0000, 1024).with_cpus(2)]);
        let m = map(&set, 0, &MapRequest::new(0x1234_5000, 3000)).unwrap();
        let before = snapshot(&set);
        assert_eq!(before.allocs, 1);
        assert_eq!(before.bounced_bytes, 3000);
        // Only the exact mapping is taken back.
        assert_eq!(
            withdraw(&set, m.addr(), 2999),
            Err(UnmapError::SizeMismatch {
                mapped: 3000,
                given: 2999
            })
        );
        assert_eq!(snapshot(&set).allocs, 1);
        let r = withdraw(&set, m.addr(), 3000).unwrap();
        assert_eq!(r.orig, 0x1234_5000);
        let after = snapshot(&set);
        assert_eq!(after.allocs, 0);
        assert_eq!(after.bounced_bytes, 0);
        assert_eq!(after.used_slots, 0);
        assert_eq!(withdraw(&set, m.addr(), 3000), Err(UnmapError::NotMapped));
        assert_eq!(snapshot(&set).allocs, 0);
    }

    #[test]
    fn high_water_resets_to_current_use() {
        let st = Stats::new();
        st.record_alloc(10);
        st.record_alloc(5);
        st.record_free(12);
        assert_eq!(st.snapshot().high_water, 15);
        st.reset_high_water();
        assert_eq!(st.snapshot().high_water, 3);
        st.record_alloc(1);
        assert_eq!(st.snapshot().high_water, 4);
    }

    fn area_for(cfg: PoolConfig) -> (Pool, Area<Vec<Slot>>) {
        let pool = Pool::new(&cfg).unwrap();
        let len = pool.area_slots(0).unwrap();
        let area = pool.new_area(0, vec![Slot::new(); len]).unwrap();
        (pool, area)
    }

    fn alloc(pool: &Pool, area: &mut Area<Vec<Slot>>, req: MapRequest) -> Option<Block> {
        let plan = pool.plan(&req).unwrap();
        let b = area.try_alloc(&plan).unwrap();
        area.check().unwrap();
        b
    }

    #[test]
    fn config_validation() {
        let ok = PoolConfig::new(0x1000, 256);
        assert!(Pool::new(&ok).is_ok());
        assert_eq!(
            Pool::new(&ok.with_slot_shift(0)).unwrap_err(),
            ConfigError::BadSlotShift
        );
        assert_eq!(
            Pool::new(&ok.with_slot_shift(17)).unwrap_err(),
            ConfigError::BadSlotShift
        );
        assert_eq!(
            Pool::new(&ok.with_page_shift(10)).unwrap_err(),
            ConfigError::BadPageShift
        );
        assert_eq!(
            Pool::new(&ok.with_segment_slots(0)).unwrap_err(),
            ConfigError::BadSegmentSize
        );
        assert_eq!(
            Pool::new(&PoolConfig::new(0x1000, 0)).unwrap_err(),
            ConfigError::Empty
        );
        assert_eq!(
            Pool::new(&PoolConfig::new(0x800, 8)).unwrap_err(),
            ConfigError::Misaligned
        );
        assert_eq!(
            Pool::new(&PoolConfig::new(!0xfff, 8)).unwrap_err(),
            ConfigError::AddressOverflow
        );
    }

    #[test]
    fn area_layout() {
        // 10 segments, 8 CPUs -> 8 areas: two of 2 segments, six of 1.
        let pool = Pool::new(&PoolConfig::new(0, 1280).with_cpus(5)).unwrap();
        assert_eq!(pool.area_count(), 8);
        let sizes: Vec<usize> = (0..8).map(|a| pool.area_slots(a).unwrap()).collect();
        assert_eq!(sizes, [256, 256, 128, 128, 128, 128, 128, 128]);
        assert_eq!(pool.area_slots(8), None);
        for idx in [0usize, 255, 256, 511, 512, 640, 1279] {
            let a = pool.area_of_slot(idx).unwrap();
            let f = pool.area_first_slot(a).unwrap();
            assert!(idx >= f && idx < f + pool.area_slots(a).unwrap());
        }
        // Small pool: areas reduced to the number of segments.
        let small = Pool::new(&PoolConfig::new(0, 300).with_cpus(64)).unwrap();
        assert_eq!(small.area_count(), 3);
        assert_eq!(small.area_slots(2), Some(44));
    }

    #[test]
    fn area_of_shift_matches_divisions() {
        // Uniform power-of-two areas take the shift; the others the divisions.
        for (nslabs, cpus, seg) in [
            (2048, 2, 128),
            (4096, 4, 256),
            (1280, 5, 128),
            (300, 64, 128),
        ] {
            let pool = Pool::new(
                &PoolConfig::new(0, nslabs)
                    .with_cpus(cpus)
                    .with_segment_slots(seg),
            )
            .unwrap();
            assert_eq!(pool.area_shift.is_some(), nslabs != 1280 && nslabs != 300);
            for idx in 0..nslabs {
                let a = pool.area_of_slot(idx).unwrap();
                let f = pool.area_first_slot(a).unwrap();
                assert!(
                    idx >= f && idx < f + pool.area_slots(a).unwrap(),
                    "{nslabs} {idx}"
                );
            }
            assert_eq!(pool.area_of_slot(nslabs), None);
        }
    }

    #[test]
    fn release_with_sees_exact_mappings_only() {
        let (pool, mut area) = area_for(PoolConfig::new(0x4000_0000, 128));
        let b = alloc(&pool, &mut area, MapRequest::new(0x1234_5000, 5000)).unwrap();
        let mut seen = Vec::new();
        // Wrong size, inside the mapping: refused, nothing called.
        let r = area.release_with(b.addr, 4999, |r| seen.push(*r));
        assert!(matches!(r, Err(UnmapError::SizeMismatch { .. })));
        let r = area.release_with(b.addr + 2048, 2952, |r| seen.push(*r));
        assert_eq!(r, Err(UnmapError::NotMappingStart));
        assert!(seen.is_empty());
        let r = area.release_with(b.addr, 5000, |r| seen.push(*r)).unwrap();
        assert_eq!(r.orig, 0x1234_5000);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0].orig, seen[0].bounce, seen[0].len),
            (0x1234_5000, b.addr, 5000)
        );
        assert!(!seen[0].truncated && seen[0].offset_in_mapping == 0);
        // Freed: a second release is refused without a call.
        assert_eq!(
            area.release_with(b.addr, 5000, |r| seen.push(*r)),
            Err(UnmapError::NotMapped)
        );
        assert_eq!(seen.len(), 1);
        assert_eq!(area.used_slots(), 0);
    }

    #[test]
    fn storage_length_checked() {
        let pool = Pool::new(&PoolConfig::new(0, 128)).unwrap();
        assert_eq!(
            pool.new_area(0, vec![Slot::new(); 127]).unwrap_err(),
            ConfigError::StorageLength {
                expected: 128,
                got: 127
            }
        );
        assert_eq!(
            pool.new_area(1, vec![Slot::new(); 128]).unwrap_err(),
            ConfigError::NoSuchArea
        );
    }

    #[test]
    fn offset_kept_and_lookup() {
        let (pool, mut area) = area_for(PoolConfig::new(0x4000_0000, 128));
        let b = alloc(&pool, &mut area, MapRequest::new(0x1234_5678, 100)).unwrap();
        // No min_align_mask: data starts at the slot start.
        assert_eq!(b.addr & 0x7ff, 0);
        let r = area.lookup(b.addr + 10, 200).unwrap();
        assert_eq!(r.orig, 0x1234_5678 + 10);
        assert_eq!(r.len, 90);
        assert!(r.truncated);
        assert_eq!(area.lookup(b.addr + 100, 1), Err(UnmapError::NotMapped));
    }

    #[test]
    fn placements_that_alias_the_original_are_avoided() {
        // Pool at 0, original at 2 MiB: slot 0 (page 0) aliases, so the mapping goes to the
        // other end of the free run (slots 0..128 of segment 0): slot 126, page 63.
        let (pool, mut area) = area_for(PoolConfig::new(0, 512));
        let b = alloc(&pool, &mut area, MapRequest::new(0x20_0000, 4096)).unwrap();
        assert_eq!(b.first_slot, 126);
        // A whole segment whose original is at page 576 (512 + 64): segment 1 (page 64)
        // aliases, segment 2 is taken (segment 0 is in use).
        let seg = alloc(&pool, &mut area, MapRequest::new(0x24_0000, 128 * 2048)).unwrap();
        assert_eq!(seg.first_slot, 256);
        // The original at page 1: now slot 0 is fine.
        let c = alloc(&pool, &mut area, MapRequest::new(0x1000, 2048)).unwrap();
        assert_eq!(c.first_slot, 0);
        // Under pressure (half the area used or more) placement ignores aliasing.
        let (pool, mut area) = area_for(PoolConfig::new(0, 256));
        alloc(&pool, &mut area, MapRequest::new(0x5000, 128 * 2048)).unwrap();
        let p = alloc(
            &pool,
            &mut area,
            MapRequest::new(0x20_0000 + 0x4_0000, 4096),
        )
        .unwrap();
        assert_eq!(p.first_slot, 128);
        // Only aliasing room left is still used: no failure for it.
        let (pool, mut area) = area_for(PoolConfig::new(0, 128));
        let only = alloc(&pool, &mut area, MapRequest::new(0x40_0000, 128 * 2048)).unwrap();
        assert_eq!(only.first_slot, 0);
        // A moved placement leaves no gap: four 16-page mappings whose originals alias fill an
        // area of one segment (128 slots) exactly, from both ends.
        let (pool, mut area) = area_for(PoolConfig::new(0, 128));
        let mut firsts = Vec::new();
        for k in 0..4u64 {
            let b = alloc(
                &pool,
                &mut area,
                MapRequest::new(0x20_0000 + k * 0x1_0000, 16 * 4096),
            )
            .unwrap();
            firsts.push(b.first_slot);
        }
        assert_eq!(area.free_slots(), 0);
        assert_eq!(firsts, [96, 0, 32, 64]);
    }

    #[test]
    fn aliased_maps_are_counted() {
        // One segment of 128 slots at 0: a whole-segment mapping whose original lies at 2 MiB
        // can only alias; one at page 1 does not.
        let set = TestSet::new(&[PoolConfig::new(0, 128)]);
        let whole = MapRequest::new(0x20_0000, 128 * 2048);
        let m = map(&set, 0, &whole).unwrap();
        assert_eq!(snapshot(&set).aliased_maps, 1);
        unmap(&set, m.addr(), 128 * 2048).unwrap();
        let m = map(&set, 0, &MapRequest::new(0x1000, 128 * 2048)).unwrap();
        let s = snapshot(&set);
        assert_eq!((s.aliased_maps, s.allocs), (1, 2));
        unmap(&set, m.addr(), 128 * 2048).unwrap();
        // A withdrawn mapping was never made: neither counter keeps it.
        let m = map(&set, 0, &whole).unwrap();
        assert_eq!(snapshot(&set).aliased_maps, 2);
        withdraw(&set, m.addr(), 128 * 2048).unwrap();
        let s = snapshot(&set);
        assert_eq!((s.aliased_maps, s.allocs), (1, 2));
        // A small mapping finds room that does not alias.
        map(&set, 0, &MapRequest::new(0x20_0000, 4096)).unwrap();
        assert_eq!(snapshot(&set).aliased_maps, 1);
        // It went to slots 126..128. Slots 0..64 next, then the area is half used: the next
        // mapping takes slot 64 (page 32), which aliases an original at page 512 + 32.
        let b = map(&set, 0, &MapRequest::new(0x3000, 64 * 2048)).unwrap();
        assert_eq!(b.block.first_slot, 0);
        let b = map(&set, 0, &MapRequest::new(0x22_0000, 2048)).unwrap();
        assert_eq!(b.block.first_slot, 64);
        assert_eq!(snapshot(&set).aliased_maps, 2);
    }

    #[test]
    fn placements_cost_no_room() {
        // Two 2 MiB mappings per 4 MiB segment, whatever their originals: aligned to 2 MiB (every
        // placement aliases), on either half of 4 MiB, or at odd pages.
        for step in [0x20_0000u64, 0x40_0000, 0x12_3000, 0x7_f000] {
            let (pool, mut area) =
                area_for(PoolConfig::new(0x1_0000_0000, 4 * 2048).with_segment_slots(2048));
            let mut live = Vec::new();
            for k in 0..8u64 {
                let b = alloc(
                    &pool,
                    &mut area,
                    MapRequest::new(0x4000_0000 + k * step, 2 << 20),
                );
                live.push(b.unwrap_or_else(|| panic!("step {step:#x}: mapping {k} failed")));
            }
            assert_eq!(area.free_slots(), 0, "step {step:#x}");
            assert!(alloc(&pool, &mut area, MapRequest::new(0x4000_0000, 4096)).is_none());
        }
        // 64-page mappings with originals that move by odd page counts: 8 per 2 MiB segment.
        let (pool, mut area) = area_for(PoolConfig::new(0, 4 * 1024).with_segment_slots(1024));
        for k in 0..32u64 {
            let orig = 0x10_0000 + k * 0x2_3000;
            assert!(
                alloc(&pool, &mut area, MapRequest::new(orig, 64 * 4096)).is_some(),
                "mapping {k}"
            );
        }
        assert_eq!(area.free_slots(), 0);
    }

    #[test]
    fn first_and_last_fit_in_a_run() {
        type A = Area<Vec<Slot>>;
        let pool = Pool::new(&PoolConfig::new(0, 4096).with_segment_slots(2048)).unwrap();
        // 64 pages: 128 slots, starting on an even slot (a page).
        let plain = pool.plan(&MapRequest::new(0x10_0000, 64 * 4096)).unwrap();
        assert_eq!(A::last_fit_in_run(&plain, 0, 2000), Some(1872));
        assert_eq!(A::last_fit_in_run(&plain, 0, 1999), Some(1870));
        assert_eq!(A::last_fit_in_run(&plain, 1871, 1999), None);
        assert_eq!(A::last_fit_in_run(&plain, 0, 127), None);
        // Boundaries every 1 MiB (512 slots): a block may not cross slot 1536.
        let bounded = pool
            .plan(&MapRequest::new(0x10_0000, 64 * 4096).with_seg_boundary_mask(0xf_ffff))
            .unwrap();
        assert_eq!(A::last_fit_in_run(&bounded, 0, 1600), Some(1408));
        assert_eq!(A::last_fit_in_run(&bounded, 1450, 1600), None);
        assert_eq!(A::last_fit_in_run(&bounded, 0, 2000), Some(1872));
        assert_eq!(A::fit_in_run(&bounded, 1450, 1700), Some(1536));
        assert_eq!(A::fit_in_run(&bounded, 1450, 1660), None);
        assert_eq!(A::fit_in_run(&plain, 1450, 1600), Some(1450));
    }

    #[test]
    fn large_mappings_go_to_the_end_that_overlaps_the_tlb_less() {
        let page = |a: u64| a >> DEFAULT_PAGE_SHIFT;
        let overlap = |addr: u64, orig: u64, n: u64| {
            let w = 2 * n.next_power_of_two();
            let x = page(addr).wrapping_sub(page(orig)) & (w - 1);
            n.saturating_sub(x.min(w - x))
        };
        // 2 MiB mappings in 4 MiB segments, originals aligned to 2 MiB: the mapping's first page
        // lies 512 pages (mod 1024) from the original's, so that no page of the two shares an
        // entry of a TLB of 1024 entries or more (0 pages would share all of them).
        for orig in [0x4000_0000u64, 0x4020_0000, 0x4060_0000] {
            let (pool, mut area) =
                area_for(PoolConfig::new(0x1_0000_0000, 4096).with_segment_slots(2048));
            let b = alloc(&pool, &mut area, MapRequest::new(orig, 2 << 20)).unwrap();
            let d = page(b.addr).wrapping_sub(page(orig)) & 1023;
            assert_eq!(d, 512, "orig {orig:#x}");
        }
        // 64 pages in 2 MiB segments: the two ends of an empty segment lie 448 pages apart
        // (64 mod 128), so the better one shares at most 32 pages in a 128-entry TLB, and none
        // when the original is 64 pages from either end (mod 128).
        for (orig, most) in [
            (0x10_0000u64, 0),
            (0x10_5000, 5),
            (0x12_3000, 29),
            (0x12_0000, 32),
            (0x14_0000, 0),
            (0x7f_f000, 1),
        ] {
            let (pool, mut area) = area_for(PoolConfig::new(0, 4096).with_segment_slots(1024));
            let b = alloc(&pool, &mut area, MapRequest::new(orig, 64 * 4096)).unwrap();
            assert!(
                b.first_slot == 0 || b.first_slot == 1024 - 128,
                "orig {orig:#x}"
            );
            assert_eq!(overlap(b.addr, orig, 64), most, "orig {orig:#x}");
        }
        // Equal overlap at both ends: the first end, as first fit.
        let (pool, mut area) = area_for(PoolConfig::new(0, 4096).with_segment_slots(2048));
        let b = alloc(&pool, &mut area, MapRequest::new(0x4010_0000, 2 << 20)).unwrap();
        assert_eq!(b.first_slot, 0);
        // Below TLB_SPREAD_MIN_PAGES: first fit, as before.
        let (pool, mut area) = area_for(PoolConfig::new(0, 4096).with_segment_slots(1024));
        let s = alloc(&pool, &mut area, MapRequest::new(0x12_3000, 63 * 4096)).unwrap();
        assert_eq!(s.first_slot, 0);
        // A whole-segment mapping cannot move inside its segment: the first segment that does not
        // alias, as before.
        let (pool, mut area) = area_for(PoolConfig::new(0, 512));
        let w = alloc(&pool, &mut area, MapRequest::new(0x20_0000, 128 * 2048)).unwrap();
        assert_eq!(w.first_slot, 128);
    }

    #[test]
    fn page_alignment_for_page_sizes() {
        // Originals at page 5: no placement aliases (ALIAS_PAGES).
        let (pool, mut area) = area_for(PoolConfig::new(0, 128));
        let small = alloc(&pool, &mut area, MapRequest::new(0x5000, 2048)).unwrap();
        assert_eq!(small.first_slot, 0);
        let big = alloc(&pool, &mut area, MapRequest::new(0x5000, 4096)).unwrap();
        assert_eq!(big.addr % 4096, 0);
        assert_eq!(big.first_slot, 2);
    }

    #[test]
    fn min_align_mask_larger_than_slot() {
        let (pool, mut area) = area_for(PoolConfig::new(0, 128));
        // Occupy slot 0 so the next free slot has bit 11 set.
        alloc(&pool, &mut area, MapRequest::new(0, 1)).unwrap();
        let orig = 0x9_0345; // bit 11 clear, in-page offset 0x345
        let b = alloc(
            &pool,
            &mut area,
            MapRequest::new(orig, 5000).with_min_align_mask(0xfff),
        )
        .unwrap();
        assert_eq!(b.addr & 0xfff, orig & 0xfff);
        assert_eq!(b.pad_slots, 0);
        let orig2 = 0x9_0b45; // bit 11 set
        let b2 = alloc(
            &pool,
            &mut area,
            MapRequest::new(orig2, 10).with_min_align_mask(0xfff),
        )
        .unwrap();
        assert_eq!(b2.addr & 0xfff, 0xb45);
    }

    #[test]
    fn pad_slots_with_alloc_align() {
        let (pool, mut area) = area_for(PoolConfig::new(0, 128));
        let orig = 0x7_1a45;
        let req = MapRequest::new(orig, 3000)
            .with_min_align_mask(0xfff)
            .with_alloc_align_mask(0xfff);
        let b = alloc(&pool, &mut area, req).unwrap();
        assert_eq!(b.pad_slots, 1);
        assert_eq!(b.addr & 0xfff, 0xa45);
        assert_eq!((b.addr - (b.addr & 0xfff)) % 4096, 0);
        // Block: align_up(3000 + 0xa45, 4096) = 8192 -> 4 slots.
        assert_eq!(b.nslots, 4);
        // Unmap by the returned address finds the padding again.
        assert_eq!(
            area.release(b.addr - 0x800, 3000),
            Err(UnmapError::NotMapped)
        );
        let r = area.release(b.addr, 3000).unwrap();
        assert_eq!(r.nslots, 4);
        area.check().unwrap();
        assert_eq!(area.used_slots(), 0);
    }

    #[test]
    fn segment_edges_and_last_slot() {
        let (pool, mut area) = area_for(PoolConfig::new(0, 200).with_segment_slots(64));
        // 64 slots fill a full segment exactly.
        let full = alloc(&pool, &mut area, MapRequest::new(0x5000, 64 * 2048)).unwrap();
        assert_eq!(full.first_slot, 0);
        // 65 slots never fit.
        assert_eq!(
            pool.plan(&MapRequest::new(0, 64 * 2048 + 1)),
            Err(MapError::TooLarge)
        );
        // Last segment has 8 slots (192..200); fill the others first.
        alloc(&pool, &mut area, MapRequest::new(0, 64 * 2048)).unwrap();
        alloc(&pool, &mut area, MapRequest::new(0, 64 * 2048)).unwrap();
        let last = alloc(&pool, &mut area, MapRequest::new(0, 8 * 2048)).unwrap();
        assert_eq!(last.first_slot, 192);
        assert!(alloc(&pool, &mut area, MapRequest::new(0, 1)).is_none());
        area.release(last.addr, 8 * 2048).unwrap();
        let one = alloc(&pool, &mut area, MapRequest::new(0, 1)).unwrap();
        assert_eq!(one.first_slot, 192);
        // Page-sized blocks start on a page: slot 194, not 193.
        let two = alloc(&pool, &mut area, MapRequest::new(0, 6 * 2048)).unwrap();
        assert_eq!(two.first_slot, 194);
        assert_eq!(two.first_slot + two.nslots, 200);
        // The hole left at 193 is the tightest fit for a small block.
        let three = alloc(&pool, &mut area, MapRequest::new(0, 2048)).unwrap();
        assert_eq!(three.first_slot, 193);
    }

    #[test]
    fn errors_leave_area_intact() {
        let (pool, mut area) = area_for(PoolConfig::new(0x10_0000, 128));
        assert_eq!(pool.plan(&MapRequest::new(0, 0)), Err(MapError::ZeroSize));
        assert_eq!(
            pool.plan(&MapRequest::new(0, 1).with_min_align_mask(0x5)),
            Err(MapError::BadMask)
        );
        let b = alloc(&pool, &mut area, MapRequest::new(0x55, 3000)).unwrap();
        let before: Vec<Slot> = area.slots.clone();
        assert_eq!(
            area.release(b.addr, 2999),
            Err(UnmapError::SizeMismatch {
                mapped: 3000,
                given: 2999
            })
        );
        assert_eq!(
            area.release(b.addr + 1, 3000),
            Err(UnmapError::NotMappingStart)
        );
        assert_eq!(
            area.release(b.addr + 2048, 3000),
            Err(UnmapError::NotMappingStart)
        );
        assert_eq!(
            area.release(b.addr + 4096, 3000),
            Err(UnmapError::NotMapped)
        );
        assert_eq!(area.release(0, 3000), Err(UnmapError::NotBounceAddress));
        assert_eq!(area.slots, before);
        area.release(b.addr, 3000).unwrap();
        assert_eq!(area.release(b.addr, 3000), Err(UnmapError::NotMapped));
        area.check().unwrap();
    }

    #[test]
    fn boundary_mask() {
        let (pool, mut area) = area_for(PoolConfig::new(0, 128));
        alloc(&pool, &mut area, MapRequest::new(0x5000, 2048 * 3)).unwrap();
        // 8 KiB boundary: 2-slot blocks must not start at an odd slot 3.
        let b = alloc(
            &pool,
            &mut area,
            MapRequest::new(0x5000, 4000).with_seg_boundary_mask(0x1fff),
        )
        .unwrap();
        assert_eq!(b.first_slot, 4);
        assert_eq!(
            pool.plan(&MapRequest::new(0, 9000).with_seg_boundary_mask(0x1fff)),
            Err(MapError::TooLarge)
        );
    }

    #[test]
    fn alloc_align_mask_alone() {
        let (pool, mut area) = area_for(PoolConfig::new(0, 128));
        alloc(&pool, &mut area, MapRequest::new(0x1000, 1)).unwrap();
        // 16 KiB alignment, small request: block starts on slot 8.
        let b = alloc(
            &pool,
            &mut area,
            MapRequest::new(0x1234, 100).with_alloc_align_mask(0x3fff),
        )
        .unwrap();
        assert_eq!(b.addr, 8 * 2048);
        assert_eq!(b.pad_slots, 0);
        // The block is rounded up to the alignment: 16 KiB = 8 slots.
        assert_eq!(b.nslots, 8);
    }

    #[test]
    fn small_min_align_mask_keeps_in_slot_offset() {
        let (pool, mut area) = area_for(PoolConfig::new(0, 128));
        let orig = 0xabc_d123;
        let b = alloc(
            &pool,
            &mut area,
            MapRequest::new(orig, 5000).with_min_align_mask(0x3f),
        )
        .unwrap();
        assert_eq!(b.addr & 0x3f, orig & 0x3f);
        assert_eq!(b.addr & !0x7ff, b.first_slot as u64 * 2048);
        // With a min_align_mask the page-alignment default does not apply:
        // the block (3 slots) may start on an odd slot.
        let c = alloc(
            &pool,
            &mut area,
            MapRequest::new(0x40, 5000).with_min_align_mask(0x7ff),
        )
        .unwrap();
        assert_eq!(c.first_slot, 3);
        assert_eq!(c.addr & 0x7ff, 0x40);
    }

    #[test]
    fn lookup_inside_body_slots() {
        let (pool, mut area) = area_for(PoolConfig::new(0x10_0000, 128));
        let b = alloc(
            &pool,
            &mut area,
            MapRequest::new(0x5_0100, 9000).with_min_align_mask(0xfff),
        )
        .unwrap();
        let r = area.lookup(b.addr + 6000, 5000).unwrap();
        assert_eq!(r.orig, 0x5_0100 + 6000);
        assert_eq!(
            (r.len, r.truncated, r.offset_in_mapping),
            (3000, true, 6000)
        );
        assert_eq!(area.lookup(b.addr - 1, 1), Err(UnmapError::NotMapped));
        let live: Vec<LiveMapping> = area.live_mappings().collect();
        assert_eq!(
            live,
            [LiveMapping {
                addr: b.addr,
                orig: 0x5_0100,
                size: 9000
            }]
        );
    }

    type TestAreas = Vec<core::cell::RefCell<Area<Vec<Slot>>>>;

    struct TestSet {
        stats: Stats,
        pools: Vec<(Pool, TestAreas)>,
    }

    impl TestSet {
        fn new(cfgs: &[PoolConfig]) -> Self {
            let mut set = TestSet {
                stats: Stats::new(),
                pools: Vec::new(),
            };
            for cfg in cfgs {
                let pool = check_new_pool(&set, cfg).unwrap();
                let areas = (0..pool.area_count())
                    .map(|i| {
                        let len = pool.area_slots(i).unwrap();
                        core::cell::RefCell::new(pool.new_area(i, vec![Slot::new(); len]).unwrap())
                    })
                    .collect();
                set.pools.push((pool, areas));
            }
            set
        }
    }

    impl PoolSet for TestSet {
        type Storage = Vec<Slot>;
        fn stats(&self) -> &Stats {
            &self.stats
        }
        fn pool_count(&self) -> usize {
            self.pools.len()
        }
        fn pool(&self, index: usize) -> Option<&Pool> {
            self.pools.get(index).map(|p| &p.0)
        }
        fn with_area<R, F>(&self, pool: usize, area: usize, f: F) -> Option<R>
        where
            F: FnOnce(&mut Area<Vec<Slot>>) -> R,
        {
            let cell = self.pools.get(pool)?.1.get(area)?;
            Some(f(&mut cell.borrow_mut()))
        }
    }

    #[test]
    fn areas_tried_from_cpu_then_wrapping() {
        let set = TestSet::new(&[PoolConfig::new(0, 512).with_cpus(4)]);
        let m = map(&set, 6, &MapRequest::new(0, 64 * 2048)).unwrap();
        assert_eq!(m.block.area, 2);
        // Fill area 3, then a request from CPU 3 wraps to area 0.
        map(&set, 3, &MapRequest::new(0, 128 * 2048)).unwrap();
        let w = map(&set, 3, &MapRequest::new(0, 2048)).unwrap();
        assert_eq!(w.block.area, 0);
        assert_eq!(set.stats.snapshot().used_slots, 64 + 128 + 1);
        assert_eq!(pool_slots_in_use(&set, 0), Some(193));
    }

    #[test]
    fn growth_routes_by_address() {
        let mut set = TestSet::new(&[PoolConfig::new(0, 128)]);
        let a = map(&set, 0, &MapRequest::new(7, 128 * 2048)).unwrap();
        assert_eq!(
            map(&set, 0, &MapRequest::new(0, 1)).unwrap_err(),
            MapError::NoSpace
        );
        assert_eq!(
            check_new_pool(&set, &PoolConfig::new(0x1000, 8)).unwrap_err(),
            ConfigError::Overlap
        );
        let grown = TestSet::new(&[PoolConfig::new(0x10_0000, 64)]);
        set.pools.extend(grown.pools);
        let b = map(&set, 0, &MapRequest::new(9, 3000)).unwrap();
        assert_eq!(b.pool, 1);
        assert!(is_bounce_addr(&set, b.addr()));
        assert_eq!(locate(&set, b.addr()), Some((1, 0)));
        assert_eq!(lookup(&set, b.addr(), 3000).unwrap().orig, 9);
        assert_eq!(unmap(&set, b.addr(), 3000).unwrap().orig, 9);
        assert_eq!(unmap(&set, a.addr(), 128 * 2048).unwrap().orig, 7);
        assert_eq!(unmap(&set, 0x20_0000, 1), Err(UnmapError::NotBounceAddress));
        let s = set.stats.snapshot();
        assert_eq!((s.used_slots, s.high_water, s.failed_allocs), (0, 130, 1));
    }

    #[test]
    fn area_counters_count_allocations_and_copies() {
        let set = TestSet::new(&[PoolConfig::new(0, 256).with_cpus(2)]);
        let a = map(&set, 0, &MapRequest::new(0x1000, 4096)).unwrap();
        let b = map(&set, 1, &MapRequest::new(0x9000, 100)).unwrap();
        assert_ne!(a.block.area, b.block.area);
        let mut copied = 0;
        unmap_with(&set, a.addr(), 4096, |r| copied += r.len).unwrap();
        assert_eq!(copied, 4096);
        // Refused requests count nothing.
        assert!(unmap_with(&set, b.addr(), 99, |_| panic!("called")).is_err());
        unmap(&set, b.addr(), 100).unwrap();
        let s = snapshot(&set);
        assert_eq!((s.allocs, s.bounced_bytes), (2, 4096 + 100 + 4096));
        set.stats.add_bounced(7);
        assert_eq!(snapshot(&set).bounced_bytes, 4096 + 100 + 4096 + 7);
        assert_eq!(set.stats.snapshot().allocs, 0);
    }

    #[test]
    fn too_large_versus_no_space() {
        let set = TestSet::new(&[PoolConfig::new(0, 64).with_segment_slots(32)]);
        assert_eq!(
            map(&set, 0, &MapRequest::new(0, 32 * 2048 + 1)).unwrap_err(),
            MapError::TooLarge
        );
        assert_eq!(
            map(&set, 0, &MapRequest::new(u64::MAX, 2)).unwrap_err(),
            MapError::BadRange
        );
        let empty = TestSet::new(&[]);
        assert_eq!(
            map(&empty, 0, &MapRequest::new(0, 1)).unwrap_err(),
            MapError::NoSpace
        );
        assert_eq!(set.stats.snapshot().failed_allocs, 1);
    }

    #[test]
    fn max_mapping_size_matches_upstream() {
        let pool = Pool::new(&PoolConfig::new(0, 1024)).unwrap();
        assert_eq!(pool.max_mapping_size(0), 256 * 1024);
        assert_eq!(pool.max_mapping_size(0xfff), 256 * 1024 - 4096);
        assert_eq!(pool.max_mapping_size(0x3f), 256 * 1024 - 2048);
    }
}
