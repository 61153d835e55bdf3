// SPDX-License-Identifier: GPL-2.0

//! The umem: a range of a process's memory mirrored for a device.

use crate::kext;
use crate::kext::dma::{DmaDevice, MappedPage, PageMappings};
use crate::kext::mm::Mm;
use crate::kext::mmu_notifier::{IntervalNotifier, Invalidate, Locked, NotifierRange, StateGuard};
use crate::logic::odp::{chunks, Access, ArgError, DmaEntry, HmmPfn, Region, BASE_SIZE};
use crate::warn_ratelimited;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    error::code::{E2BIG, EBUSY, EFAULT, EINVAL, EIO, EPERM, ERANGE},
    prelude::*,
    sync::Arc,
};

/// How many times a fault starts over after colliding with invalidations before giving up with
/// `EBUSY`.
const MAX_ATTEMPTS: u32 = 1000;

/// Faults of at most this many pages keep their page words on the stack: no allocation.
const STACK_PFNS: usize = 16;

/// The errno of a refused argument.
pub fn arg_errno(e: ArgError) -> Error {
    match e {
        ArgError::Invalid => EINVAL,
        ArgError::Overflow => Error::from_errno(-(kernel::bindings::EOVERFLOW as i32)),
        ArgError::TooBig => E2BIG,
        ArgError::OutOfRange => ERANGE,
        ArgError::Denied => EPERM,
    }
}

/// Counters of one umem (and, summed, of the module: [`TOTALS`]).
#[derive(Default)]
pub struct UmemStats {
    /// Fault-ins (`map_and_lock` calls that reached `hmm_range_fault`).
    pub faults: AtomicU64,
    /// Invalidations that intersected the umem.
    pub invalidations: AtomicU64,
    /// Faults that started over because an invalidation collided.
    pub retries: AtomicU64,
    /// Base pages mapped now.
    pub pages_mapped: AtomicU64,
    /// Base pages mapped, in all.
    pub maps: AtomicU64,
    /// Base pages unmapped, in all.
    pub unmaps: AtomicU64,
}

impl UmemStats {
    const fn new() -> Self {
        Self {
            faults: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            pages_mapped: AtomicU64::new(0),
            maps: AtomicU64::new(0),
            unmaps: AtomicU64::new(0),
        }
    }

    fn add(&self, which: fn(&UmemStats) -> &AtomicU64, n: u64) {
        which(self).fetch_add(n, Ordering::Relaxed);
        which(&TOTALS).fetch_add(n, Ordering::Relaxed);
    }

    fn sub_mapped(&self, n: u64) {
        // Each update is two atomics (the umem's and the module's): none for nothing.
        if n == 0 {
            return;
        }
        self.pages_mapped.fetch_sub(n, Ordering::Relaxed);
        TOTALS.pages_mapped.fetch_sub(n, Ordering::Relaxed);
        self.add(|s| &s.unmaps, n);
    }

    /// A snapshot: faults, invalidations, retries, pages mapped, maps, unmaps.
    pub fn snapshot(&self) -> [u64; 6] {
        [
            self.faults.load(Ordering::Relaxed),
            self.invalidations.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.pages_mapped.load(Ordering::Relaxed),
            self.maps.load(Ordering::Relaxed),
            self.unmaps.load(Ordering::Relaxed),
        ]
    }
}

/// The module's counters, summed over every umem (debugfs `odp_umem/`).
pub static TOTALS: UmemStats = UmemStats::new();

/// The driver that owns a umem: told when pages leave the device's view.
pub trait Client: Send + Sync {
    /// The pages of `[start, end)` are about to be unmapped; called with the umem locked, before
    /// their DMA mappings go. On return the device must no longer access them: their bus
    /// addresses may be reused at once. Called from the mmu notifier, and from
    /// [`Umem::map_and_lock`] when it replaces a page's mapping (the CPU's rights on the page
    /// grew without an invalidation, so the page is mapped again for more access).
    fn invalidated(&self, start: u64, end: u64);
}

/// The per-page state of a umem, locked by faults and invalidations alike.
pub struct UmemState {
    entries: KVVec<DmaEntry>,
    /// The pages mapped for the device (one device reference for all of them).
    maps: PageMappings,
}

impl UmemState {
    /// The mapping of base page `i`, if any.
    pub fn map(&self, i: usize) -> Option<MappedPage<'_>> {
        self.maps.get(i)
    }

    /// The state word of base page `i`.
    pub fn entry(&self, i: usize) -> DmaEntry {
        self.entries.get(i).copied().unwrap_or(DmaEntry::EMPTY)
    }

    fn unmap_span(&mut self, first: usize, end: usize) -> u64 {
        let mut n = 0;
        for i in first..end.min(self.maps.len()) {
            if let Some((page, _)) = self.maps.unmap(i) {
                if self.entries[i].dirty_on_unmap() {
                    page.set_dirty();
                }
                self.entries[i] = DmaEntry::EMPTY;
                n += 1;
            }
        }
        n
    }
}

/// What a umem knows besides its page state.
pub struct UmemData {
    region: Region,
    stats: UmemStats,
    client: Option<Arc<dyn Client>>,
}

impl Invalidate for UmemData {
    type State = UmemState;

    fn invalidate(&self, state: &mut UmemState, range: &NotifierRange) {
        let Some(span) = self.region.intersect(range.start(), range.end()) else {
            return;
        };
        self.stats.add(|s| &s.invalidations, 1);
        // The driver first: its device may hold the bus addresses until it is told, and a bounce
        // slot or an IOMMU entry that is unmapped can be handed to another mapping at once.
        if let Some(client) = &self.client {
            let start = self.region.page_addr(span.first);
            client.invalidated(start, self.region.page_addr(span.end()));
        }
        let n = state.unmap_span(span.first, span.end());
        self.stats.sub_mapped(n);
        kext::trace::odp_invalidate(range.start(), range.end(), range.event(), n);
    }
}

/// A range of a process's memory mirrored for a device.
pub struct Umem {
    n: Arc<IntervalNotifier<UmemData>>,
}

impl Umem {
    /// Registers `region` of the calling process's address space for `dev`. Nothing is faulted
    /// in yet. `EINVAL` from a kernel thread.
    pub fn new(region: Region, dev: &DmaDevice, client: Option<Arc<dyn Client>>) -> Result<Self> {
        let mm = Mm::current().ok_or(EINVAL)?;
        let pages = region.base_pages();
        let entries = KVVec::from_elem(DmaEntry::EMPTY, pages, GFP_KERNEL)?;
        let maps = PageMappings::new(dev, pages, GFP_KERNEL)?;
        let data = UmemData {
            region,
            stats: UmemStats::default(),
            client,
        };
        let state = UmemState { entries, maps };
        let n = Arc::pin_init(
            IntervalNotifier::new(&mm, region.start(), region.len(), data, state),
            GFP_KERNEL,
        )?;
        Ok(Self { n })
    }

    /// The registered range.
    pub fn region(&self) -> &Region {
        &self.n.data().region
    }

    /// The umem's counters.
    pub fn stats(&self) -> &UmemStats {
        &self.n.data().stats
    }

    /// Faults in and DMA-maps the pages of `[addr, addr + len)` for `access`, rounded out to the
    /// umem's page size, and returns with the umem locked: the pages stay mapped, and are the
    /// ones the process maps, until the returned guard is dropped or unlocked. Errors: those of
    /// [`Region::fault_span`], `EFAULT` (a hole, or the process exited), `EPERM` (a write to
    /// read-only memory), `EINVAL` (a 2 MiB umem over memory not mapped by a huge page),
    /// `ENOMEM` (a page the DMA path cannot map), `EBUSY` (invalidations kept colliding).
    pub fn map_and_lock(&self, addr: u64, len: u64, access: Access) -> Result<MappedRange<'_>> {
        let data = self.n.data();
        let region = &data.region;
        let span = region.fault_span(addr, len, access).map_err(|e| {
            warn_ratelimited!(
                "access {:#x} to {:#x}+{:#x} of umem {:#x}+{:#x} refused: {:?}\n",
                access.bits(),
                addr,
                len,
                region.start(),
                region.len(),
                e
            );
            arg_errno(e)
        })?;
        let req = HmmPfn::request(access);
        let start = region.page_addr(span.first);
        let end = region.page_addr(span.end());
        let trace = |retries: u32, mapped: u64, ret: i32| {
            kext::trace::odp_fault(start, end, span.count as u64, retries, mapped, ret)
        };
        // The page words: on the stack for a small fault, else one allocation for all attempts
        // (`hmm_range_fault` rewrites every word, so a retry reuses them as they are).
        let mut stack = [req; STACK_PFNS];
        let mut heap;
        let pfns: &mut [u64] = if span.count <= STACK_PFNS {
            stack.get_mut(..span.count).ok_or(EINVAL)?
        } else {
            heap = KVVec::from_elem(req, span.count, GFP_KERNEL)?;
            &mut heap
        };
        data.stats.add(|s| &s.faults, 1);
        for attempt in 0..MAX_ATTEMPTS {
            let faulted = match self.n.fault(start, &mut *pfns, req) {
                Ok(f) => f,
                Err(e) if e == EBUSY => {
                    data.stats.add(|s| &s.retries, 1);
                    continue;
                }
                Err(e) => {
                    trace(attempt, 0, e.to_errno());
                    return Err(e);
                }
            };
            #[cfg(xendma_testdev)]
            crate::testdev::park_hook();
            match faulted.lock_if_current() {
                Ok(mut locked) => {
                    let (mapped, r) = self.install(&mut locked, span.first, access);
                    trace(attempt, mapped, r.err().map_or(0, |e| e.to_errno()));
                    r?;
                    // The page words are no longer needed: the mappings made from them stay
                    // current while the state stays locked.
                    return Ok(MappedRange {
                        locked: locked.into_guard(),
                        region: *region,
                    });
                }
                Err(_) => {
                    data.stats.add(|s| &s.retries, 1);
                }
            }
        }
        trace(MAX_ATTEMPTS, 0, EBUSY.to_errno());
        Err(EBUSY)
    }

    /// Maps the faulted pages that are not mapped as they should be; called locked and current.
    /// Returns the pages it mapped, and the result.
    fn install(
        &self,
        locked: &mut Locked<'_, '_, UmemData>,
        first: usize,
        access: Access,
    ) -> (u64, Result) {
        let data = self.n.data();
        let count = locked.faulted().pfns().len();
        let mut mapped = 0;
        let mut unmapped = 0;
        let mut result = Ok(());
        for k in 0..count {
            let word = HmmPfn(locked.faulted().pfns()[k]);
            if !word.satisfies(access, data.region.page_size()) {
                result = Err(if word.valid() && word.access().contains(access) {
                    EINVAL
                } else {
                    EFAULT
                });
                break;
            }
            let i = first + k;
            // The CPU mapping's rights, limited to the umem's.
            let rights = if word.access().writable() && data.region.access().writable() {
                Access::RW
            } else {
                Access::READ
            };
            let pfn = word.pfn() as usize;
            // A mapping of another page, or with fewer rights, is replaced; an unmapped page (the
            // common case of a fault) has nothing to undo.
            if let Some(m) = locked.map(i) {
                if m.page().pfn() == pfn && locked.entry(i).access().contains(rights) {
                    continue;
                }
                // The device may hold the old bus address: the driver lets go of it first.
                if let Some(client) = &data.client {
                    let at = data.region.page_addr(i);
                    client.invalidated(at, at + BASE_SIZE);
                }
                unmapped += locked.unmap_span(i, i + 1);
            }
            let Some(page) = locked.page(k) else {
                result = Err(EFAULT);
                break;
            };
            let bus = match locked.maps.map(i, page, rights.writable()) {
                Ok(bus) => bus,
                Err(e) => {
                    result = Err(e.error);
                    break;
                }
            };
            let Some(entry) = DmaEntry::new(bus, rights) else {
                warn_ratelimited!("bus address {:#x} is not page aligned\n", bus);
                drop(locked.maps.unmap(i));
                result = Err(EIO);
                break;
            };
            kext::trace::odp_map_page(data.region.page_addr(i), bus, rights.writable());
            locked.entries[i] = entry;
            mapped += 1;
        }
        data.stats.sub_mapped(unmapped);
        if mapped > 0 {
            data.stats.add(|s| &s.maps, mapped);
            data.stats.add(|s| &s.pages_mapped, mapped);
        }
        (mapped, result)
    }

    /// Unmaps every page of `[addr, addr + len)` (rounded out to the page size): the device gives
    /// the range up. `ERANGE` outside the umem.
    pub fn unmap(&self, addr: u64, len: u64) -> Result {
        let data = self.n.data();
        let span = data
            .region
            .fault_span(addr, len, Access::READ)
            .map_err(arg_errno)?;
        let n = self.n.lock().unmap_span(span.first, span.end());
        data.stats.sub_mapped(n);
        Ok(())
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // Unmap now rather than when the last reference goes, so that the device's driver can
        // unbind right after.
        let n = self.n.lock().unmap_span(0, usize::MAX);
        self.n.data().stats.sub_mapped(n);
    }
}

/// A faulted, mapped range with its umem locked (from [`Umem::map_and_lock`]). Invalidations of
/// the umem wait until it is dropped or [`MappedRange::unlock`]ed.
pub struct MappedRange<'a> {
    locked: StateGuard<'a, UmemData>,
    region: Region,
}

impl MappedRange<'_> {
    /// The mapping of the base page holding `addr` and the offset in it.
    pub fn page_at(&self, addr: u64) -> Result<(MappedPage<'_>, usize)> {
        let (i, off) = self.region.locate(addr).ok_or(ERANGE)?;
        Ok((self.locked.map(i).ok_or(EFAULT)?, off))
    }

    /// The state word of the base page holding `addr`.
    pub fn entry_at(&self, addr: u64) -> Result<DmaEntry> {
        let (i, _) = self.region.locate(addr).ok_or(ERANGE)?;
        Ok(self.locked.entry(i))
    }

    /// Syncs the mapped pages of `[addr, addr + len)` for the CPU (`for_cpu`, after the device
    /// wrote) or for the device (before it reads what the CPU wrote), page by page and only
    /// those bytes. Errors: those of [`Region::fault_span`], `EFAULT` at the first page that is
    /// not mapped (the ones before it were synced).
    pub fn sync(&self, addr: u64, len: u64, for_cpu: bool) -> Result {
        self.region
            .fault_span(addr, len, Access::READ)
            .map_err(arg_errno)?;
        for (a, n) in chunks(addr, len, BASE_SIZE) {
            let (map, off) = self.page_at(a)?;
            if for_cpu {
                map.sync_for_cpu(off, n as usize)?;
            } else {
                map.sync_for_device(off, n as usize)?;
            }
        }
        Ok(())
    }

    /// Releases the lock.
    pub fn unlock(self) {}
}
