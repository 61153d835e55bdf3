// SPDX-License-Identifier: GPL-2.0

//! Pages: owned blocks of contiguous pages from a chosen zone, references on pages of others.

use crate::kext::bindings as ffi;
#[cfg(xendma_odp)]
use crate::kext::dma::check_range;
use core::{
    ops::{Deref, DerefMut},
    ptr::NonNull,
};
use kernel::error::{
    code::{EINVAL, ENOMEM},
    Result,
};

/// The page size.
pub const PAGE_SIZE: usize = kernel::page::PAGE_SIZE;

/// The largest order of a page allocation (`MAX_PAGE_ORDER` on x86).
pub const MAX_ORDER: u32 = 10;

/// The largest buffer the page allocator (and so dma-direct, without CMA) can hand out.
pub const MAX_ALLOC: usize = PAGE_SIZE << MAX_ORDER;

/// Which zone [`Pages::alloc`] takes memory from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// Anywhere (`GFP_KERNEL`): above 4 GiB when there is memory there.
    Any,
    /// Below 4 GiB (`GFP_DMA32`).
    Dma32,
    /// The DMA zone, below 16 MiB on x86 (`GFP_DMA`).
    Dma,
}

/// An allocation context, as the C API's `gfp_t` (only its context and reclaim bits are used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gfp(u32);

impl Gfp {
    /// `GFP_KERNEL`: may sleep.
    pub const KERNEL: Self = Self(kernel::bindings::GFP_KERNEL);

    /// From a raw `gfp_t`, such as a DMA operation receives.
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw `gfp_t`.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// True if the context may sleep (`__GFP_DIRECT_RECLAIM`).
    pub const fn may_sleep(self) -> bool {
        self.0 & (1 << kernel::bindings::___GFP_DIRECT_RECLAIM_BIT) != 0
    }
}

/// `2^order` physically contiguous pages from the page allocator, zeroed, freed on drop; a byte
/// buffer for streaming and scatter-gather mappings.
///
/// # Invariants
///
/// `page` is the first of `2^order` pages allocated with `alloc_pages`, in the kernel's linear
/// map, owned by this object.
pub struct Pages {
    page: NonNull<ffi::page>,
    order: u32,
}

// SAFETY: owned memory.
unsafe impl Send for Pages {}
// SAFETY: shared access only reads.
unsafe impl Sync for Pages {}

impl Pages {
    /// Allocates `2^order` zeroed pages from `zone`; `EINVAL` for orders above [`MAX_ORDER`],
    /// `ENOMEM` when the zone has no such block (no warning is printed).
    pub fn alloc(order: u32, zone: Zone) -> Result<Self> {
        Self::alloc_gfp(order, zone, Gfp::KERNEL)
    }

    /// As [`Pages::alloc`], in the allocation context `gfp` says (for instance a DMA API
    /// caller's `GFP_ATOMIC`); the zone comes from `zone`, whatever zone bits `gfp` has.
    pub fn alloc_gfp(order: u32, zone: Zone, gfp: Gfp) -> Result<Self> {
        if order > MAX_ORDER {
            return Err(EINVAL);
        }
        let zone = match zone {
            Zone::Any => 0,
            Zone::Dma32 => 1,
            Zone::Dma => 2,
        };
        // SAFETY: plain page allocation; the C helper keeps only the context bits of `gfp`.
        let page = unsafe { ffi::xendma_alloc_pages_gfp(order, zone, gfp.0, true) };
        // INVARIANT: allocated just above; without __GFP_HIGHMEM the pages are in the linear map.
        Ok(Self {
            page: NonNull::new(page).ok_or(ENOMEM)?,
            order,
        })
    }

    /// The allocation order.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Gives up ownership: the caller must free the pages, normally by [`Pages::from_raw`].
    pub fn into_raw(self) -> NonNull<ffi::page> {
        let page = self.page;
        core::mem::forget(self);
        page
    }

    /// Takes back ownership of pages given up by [`Pages::into_raw`].
    ///
    /// # Safety
    ///
    /// `page` and `order` must come from one [`Pages`] object's [`Pages::into_raw`], and the
    /// pages must not be owned by anything else any more.
    pub unsafe fn from_raw(page: NonNull<ffi::page>, order: u32) -> Self {
        // INVARIANT: the caller returns what an object with this invariant gave up.
        Self { page, order }
    }

    /// A reference on the page of a one-page allocation, which keeps the page allocated after
    /// `self` is dropped if need be; `None` for a larger allocation, whose pages after the first
    /// have no reference count of their own.
    #[cfg(xendma_odp)]
    pub fn page_ref(&self) -> Option<PageRef> {
        if self.order != 0 {
            return None;
        }
        // SAFETY: a page we own (type invariant): its count is at least one during the call.
        Some(unsafe { PageRef::get(self.page) })
    }

    /// The kernel virtual address of the first byte (in the linear map).
    pub fn virt(&self) -> *mut u8 {
        self.addr()
    }

    /// The physical address of the first byte.
    pub fn phys(&self) -> u64 {
        // SAFETY: a page we own (type invariant).
        unsafe { ffi::xendma_page_to_phys(self.page.as_ptr()) }
    }

    /// The physical address of the first byte as [`page_to_phys`] computes it, and as the
    /// kernel's `page_to_phys` does: for tests.
    #[cfg(all(xendma_kunit, xendma_swiotlb))]
    pub fn phys_both(&self) -> (u64, u64) {
        // SAFETY: a page we own (type invariant), so one of the memmap.
        (unsafe { page_to_phys(self.page.as_ptr()) }, self.phys())
    }

    /// The page frame number of the first page.
    pub fn pfn(&self) -> usize {
        (self.phys() >> kernel::page::PAGE_SHIFT) as usize
    }

    fn addr(&self) -> *mut u8 {
        // SAFETY: a page we own, in the linear map (type invariant).
        unsafe { ffi::xendma_page_address(self.page.as_ptr()) }.cast()
    }

    /// Page `n` of the block, `None` unless `n` is below `2^order`.
    #[cfg(any(xendma_swiotlb, xendma_testdev))]
    pub(crate) fn nth_page(&self, n: usize) -> Option<NonNull<ffi::page>> {
        if n >> self.order != 0 {
            return None;
        }
        // SAFETY: `n < 2^order` (checked above), so the page is one of the block's, which we own
        // (type invariant); `nth_page` only computes its address.
        NonNull::new(unsafe { ffi::xendma_nth_page(self.page.as_ptr(), n as kernel::ffi::c_ulong) })
    }
}

impl Deref for Pages {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `2^order` pages of initialised (zeroed) memory we own (type invariant).
        unsafe { core::slice::from_raw_parts(self.addr(), PAGE_SIZE << self.order) }
    }
}

impl DerefMut for Pages {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, exclusively borrowed.
        unsafe { core::slice::from_raw_parts_mut(self.addr(), PAGE_SIZE << self.order) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: allocated with this order (type invariant) and no longer referenced.
        unsafe { ffi::xendma_free_pages(self.page.as_ptr(), self.order) };
    }
}

/// A reference on a page that belongs to someone else, such as a page of a process's memory
/// (`get_page` / `put_page`): it keeps the page from being freed, not its contents from
/// changing or its user mapping from going away.
///
/// # Invariants
///
/// `page` is a valid `struct page` on which this object holds one reference.
#[cfg(xendma_odp)]
pub struct PageRef {
    page: NonNull<ffi::page>,
}

// SAFETY: a page reference may be dropped on any CPU.
#[cfg(xendma_odp)]
unsafe impl Send for PageRef {}
// SAFETY: shared access only reads the page.
#[cfg(xendma_odp)]
unsafe impl Sync for PageRef {}

#[cfg(xendma_odp)]
impl PageRef {
    /// The page, referenced while `self` lives (type invariant).
    pub(crate) fn as_raw(&self) -> *mut ffi::page {
        self.page.as_ptr()
    }

    /// Takes a reference on `page`.
    ///
    /// # Safety
    ///
    /// `page` is a valid `struct page` whose reference count cannot drop to zero during this
    /// call (for example: it is mapped in a process's page table that cannot change meanwhile).
    pub unsafe fn get(page: NonNull<ffi::page>) -> Self {
        // SAFETY: valid and referenced (caller's guarantee).
        unsafe { ffi::xendma_get_page(page.as_ptr()) };
        // INVARIANT: one reference taken just above.
        Self { page }
    }

    /// The page frame number.
    pub fn pfn(&self) -> usize {
        // SAFETY: a valid page (type invariant).
        unsafe { ffi::xendma_page_to_pfn(self.page.as_ptr()) as usize }
    }

    /// Marks the page (its folio) dirty, so that what a device wrote is written back.
    pub fn set_dirty(&self) {
        // SAFETY: a valid page we hold a reference on (type invariant).
        unsafe { ffi::xendma_set_page_dirty(self.page.as_ptr()) };
    }

    /// Reads `out.len()` bytes at `offset` of the page with the CPU; `EINVAL` outside the page.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), PAGE_SIZE)?;
        // SAFETY: inside the page (checked), which stays allocated while we hold a reference;
        // `out` is a distinct kernel buffer.
        unsafe {
            ffi::xendma_copy_from_page(
                self.page.as_ptr(),
                offset,
                out.as_mut_ptr().cast(),
                out.len(),
            )
        };
        Ok(())
    }
}

#[cfg(xendma_odp)]
impl Drop for PageRef {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `get` (type invariant), dropped once.
        unsafe { ffi::xendma_put_page(self.page.as_ptr()) };
    }
}

/// Free pages of the page allocator.
#[cfg(xendma_swiotlb)]
pub fn free_pages() -> u64 {
    // SAFETY: reads a global counter.
    unsafe { ffi::xendma_nr_free_pages() as u64 }
}

/// The physical address of the last byte of RAM.
pub fn ram_end() -> u64 {
    // SAFETY: no requirements.
    unsafe { ffi::xendma_ram_end() }
}

/// The memmap's start (`vmemmap`), read once (0: not read yet).
#[cfg(all(xendma_swiotlb, CONFIG_X86_64, CONFIG_SPARSEMEM_VMEMMAP))]
static VMEMMAP: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// The physical address of `page` (`page_to_phys`).
///
/// With a virtually mapped memmap on x86-64 a page's frame number is its index in the memmap
/// (`page - vmemmap`), whose start is read once; the mapping path then computes it without a
/// call.
///
/// # Safety
///
/// `page` points to a `struct page` of the memmap.
#[cfg(xendma_swiotlb)]
#[inline]
pub unsafe fn page_to_phys(page: *mut ffi::page) -> u64 {
    #[cfg(all(CONFIG_X86_64, CONFIG_SPARSEMEM_VMEMMAP))]
    {
        use core::sync::atomic::Ordering;
        let mut start = VMEMMAP.load(Ordering::Relaxed);
        if start == 0 {
            // SAFETY: no requirements (it reads a variable).
            start = unsafe { ffi::xendma_vmemmap_start() } as usize;
            VMEMMAP.store(start, Ordering::Relaxed);
        }
        let pfn = (page as usize).wrapping_sub(start) / core::mem::size_of::<ffi::page>();
        (pfn as u64) << kernel::page::PAGE_SHIFT
    }
    #[cfg(not(all(CONFIG_X86_64, CONFIG_SPARSEMEM_VMEMMAP)))]
    // SAFETY: the caller passes a page of the memmap.
    unsafe {
        ffi::xendma_page_to_phys(page)
    }
}

/// The linear map's start (`PAGE_OFFSET`), read once (0: not read yet).
#[cfg(all(xendma_swiotlb, CONFIG_X86_64))]
static LINEAR_MAP: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// The kernel virtual address of `phys`, a physical address of the linear map (`phys_to_virt`).
///
/// On x86-64 the linear map holds all of RAM at one offset (`__va`: `phys + PAGE_OFFSET`), which
/// is read once; the mapping path then adds it without a call.
#[cfg(xendma_swiotlb)]
#[inline]
pub fn phys_to_virt(phys: u64) -> *mut u8 {
    #[cfg(CONFIG_X86_64)]
    {
        use core::sync::atomic::Ordering;
        let mut start = LINEAR_MAP.load(Ordering::Relaxed);
        if start == 0 {
            // SAFETY: `phys_to_virt` only computes an address (nothing is accessed).
            start = unsafe { ffi::xendma_phys_to_virt(0) } as usize;
            LINEAR_MAP.store(start, Ordering::Relaxed);
        }
        start.wrapping_add(phys as usize) as *mut u8
    }
    #[cfg(not(CONFIG_X86_64))]
    // SAFETY: `phys_to_virt` only computes an address (nothing is accessed).
    unsafe {
        ffi::xendma_phys_to_virt(phys).cast()
    }
}
