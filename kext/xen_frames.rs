// SPDX-License-Identifier: GPL-2.0

//! Machine frames: `XENMEM_exchange` of pages we own for machine-contiguous extents (and back),
//! through the C helpers in `kext/helpers/xen.c`, and the chunks of memory made of them.

use crate::kext::bindings as ffi;
use crate::kext::bindings::{
    xendma_page_set_xen_remapped, xendma_page_test_clear_xen_remapped, xendma_xen_exchange_back,
    xendma_xen_exchange_contig, xendma_xen_max_ram_page, xendma_xen_reservation,
};
use crate::kext::page::{Gfp, Pages};
use core::ptr::NonNull;
use kernel::error::{code::*, Error};
use kernel::prelude::*;

/// A failed exchange: why, and the pages unless they had to be given up.
pub struct ExchangeFailed {
    /// The error: `ENOMEM` (or Xen's own error) when Xen had no fitting extent, `EINVAL` for a
    /// range outside the pages, `EOPNOTSUPP` outside a PV domain, `EIO` when the page tables
    /// could not be restored.
    pub error: Error,
    /// The pages, with their old frames back in place; `None` after `EIO`: their mappings are
    /// then unknown, so they are leaked rather than returned to the allocator.
    pub pages: Option<Pages>,
}

/// Checks that pages `first..first + 2^order` lie inside `pages`.
fn extent_inside(pages: &Pages, first: usize, order: u32) -> bool {
    order <= pages.order()
        && first
            .checked_add(1 << order)
            .is_some_and(|e| e <= 1 << pages.order())
}

/// The first page of the extent `first..first + 2^order` of `pages`, or `EINVAL` (and the pages
/// back) if the extent is not inside them.
fn extent_start(
    pages: Pages,
    first: usize,
    order: u32,
) -> Result<(Pages, NonNull<ffi::page>), ExchangeFailed> {
    match pages.nth_page(first) {
        Some(p) if extent_inside(&pages, first, order) => Ok((pages, p)),
        _ => Err(ExchangeFailed {
            error: EINVAL,
            pages: Some(pages),
        }),
    }
}

/// Trades the machine frames behind pages `first..first + 2^order` of `pages` for one
/// machine-contiguous extent below `2^address_bits` (`XENMEM_exchange`); the contents are zeroed.
/// Returns the pages and the extent's first machine frame. The linear map, the p2m and the m2p
/// all point at the new frames afterwards.
pub fn make_contiguous(
    pages: Pages,
    first: usize,
    order: u32,
    address_bits: u32,
    gfp: Gfp,
) -> Result<(Pages, u64), ExchangeFailed> {
    let (pages, page) = extent_start(pages, first, order)?;
    let mut mfn = 0u64;
    // SAFETY: the pages are ours and no one else touches them (`pages` is owned here); the range
    // is inside them (checked above). The helper rewrites their linear-map PTEs and p2m entries
    // only; on success or a clean failure they map valid frames again when it returns.
    let rc = unsafe {
        xendma_xen_exchange_contig(page.as_ptr(), order, address_bits, &mut mfn, gfp.raw())
    };
    match rc {
        0 => Ok((pages, mfn)),
        rc => Err(failed(pages, rc)),
    }
}

/// Gives the machine-contiguous extent behind pages `first..first + 2^order` back to Xen for
/// arbitrary frames (the contents are zeroed). On failure the contiguous frames stay in place
/// and the pages remain usable, except after `EIO` (see [`ExchangeFailed`]).
pub fn undo_contiguous(
    pages: Pages,
    first: usize,
    order: u32,
    gfp: Gfp,
) -> Result<Pages, ExchangeFailed> {
    let (pages, page) = extent_start(pages, first, order)?;
    // SAFETY: as in `make_contiguous`.
    let rc = unsafe { xendma_xen_exchange_back(page.as_ptr(), order, gfp.raw()) };
    match rc {
        0 => Ok(pages),
        rc => Err(failed(pages, rc)),
    }
}

fn failed(pages: Pages, rc: kernel::ffi::c_int) -> ExchangeFailed {
    let error = Error::from_errno(rc);
    let pages = if rc == -(kernel::bindings::EIO as kernel::ffi::c_int) {
        // The page tables of these pages are in an unknown state: never free them.
        let _ = pages.into_raw();
        None
    } else {
        Some(pages)
    };
    ExchangeFailed { error, pages }
}

/// Marks `pages` as exchanged by a coherent allocation (`PG_xen_remapped`, as swiotlb-xen does).
pub fn set_remapped(pages: &Pages) {
    if let Some(page) = pages.nth_page(0) {
        // SAFETY: the first page of a block we own; setting a page flag has no other
        // requirement.
        unsafe { xendma_page_set_xen_remapped(page.as_ptr()) }
    }
}

/// Clears the mark of [`set_remapped`]; true if it was set.
pub fn test_clear_remapped(pages: &Pages) -> bool {
    pages.nth_page(0).is_some_and(|page| {
        // SAFETY: the first page of a block we own; clearing a page flag has no other
        // requirement.
        unsafe { xendma_page_test_clear_xen_remapped(page.as_ptr()) }
    })
}

/// The highest machine frame of the host's RAM (`XENMEM_maximum_ram_page`), or `None` outside
/// Xen.
pub fn max_ram_page() -> Option<u64> {
    // SAFETY: a query hypercall, issued only under Xen.
    let n = unsafe { xendma_xen_max_ram_page() };
    u64::try_from(n).ok()
}

/// Pages this domain holds as Xen counts them (`XENMEM_current_reservation`), or `None` outside
/// Xen.
pub fn reservation() -> Option<u64> {
    // SAFETY: a query hypercall, issued only under Xen.
    let n = unsafe { xendma_xen_reservation() };
    u64::try_from(n).ok()
}

/// One segment of a pool chunk, traded for a machine-contiguous extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Index of the segment's first page in the chunk.
    pub first: usize,
    /// Pages in the segment, as an order.
    pub order: u32,
    /// First machine frame of the extent.
    pub mfn: u64,
    /// The address width it was obtained under.
    pub bits: u32,
}

/// Memory of one pool chunk: a block of pages whose segments, in a PV domain, were each traded
/// for a machine-contiguous extent. The extents are given back to Xen when the chunk is dropped,
/// so the domain keeps its frames.
///
/// # Invariants
///
/// `pages` is initialised until `drop`; every element of `extents` is currently exchanged.
/// `phys` and `virt` are the physical and linear-map addresses of the first byte of `pages` (an
/// exchange changes the machine frames behind the pages, not the pages).
pub struct ChunkMem {
    pages: core::mem::ManuallyDrop<Pages>,
    extents: KVec<Extent>,
    /// Read once, not on every copy (two C calls fewer per copy).
    phys: u64,
    virt: usize,
    /// The context the chunk was made in, also used to give it back.
    gfp: Gfp,
}

impl ChunkMem {
    /// Memory used as it is (outside a PV domain).
    pub fn plain(pages: Pages) -> Self {
        // INVARIANT: the addresses are read from the pages.
        Self {
            phys: pages.phys(),
            virt: pages.virt() as usize,
            pages: core::mem::ManuallyDrop::new(pages),
            extents: KVec::new(),
            gfp: Gfp::KERNEL,
        }
    }

    /// Exchanges each `2^seg_order`-page segment of `pages` for a machine-contiguous extent,
    /// trying address widths from `*bits` up to `max_bits` and leaving in `*bits` the width the
    /// last segment got (so the next segment starts there, as swiotlb-xen does). On failure
    /// the segments already exchanged are given back and the pages freed.
    pub fn exchanged(
        pages: Pages,
        seg_order: u32,
        bits: &mut u32,
        max_bits: u32,
        gfp: Gfp,
    ) -> Result<Self> {
        let nsegs = 1usize << pages.order().saturating_sub(seg_order);
        let seg_order = seg_order.min(pages.order());
        // INVARIANT: the addresses are read from the pages, which `make_contiguous` hands back
        // (the same pages, other machine frames).
        let mut this = Self {
            phys: pages.phys(),
            virt: pages.virt() as usize,
            pages: core::mem::ManuallyDrop::new(pages),
            extents: KVec::with_capacity(nsegs, gfp_flags(gfp))?,
            gfp,
        };
        for s in 0..nsegs {
            let first = s << seg_order;
            loop {
                let pages = this.take_pages();
                match make_contiguous(pages, first, seg_order, *bits, gfp) {
                    Ok((pages, mfn)) => {
                        this.put_pages(pages);
                        // INVARIANT: exchanged just now. Capacity was reserved for every
                        // segment, so the push cannot fail.
                        let _ = this.extents.push(
                            Extent {
                                first,
                                order: seg_order,
                                mfn,
                                bits: *bits,
                            },
                            gfp_flags(gfp),
                        );
                        break;
                    }
                    Err(ExchangeFailed {
                        error,
                        pages: Some(pages),
                    }) => {
                        this.put_pages(pages);
                        if *bits >= max_bits || error != ENOMEM {
                            return Err(error);
                        }
                        *bits += 1;
                    }
                    Err(ExchangeFailed { error, pages: None }) => {
                        // The pages are lost; so are the extents in them.
                        drop(core::mem::take(&mut this.extents));
                        core::mem::forget(this);
                        return Err(error);
                    }
                }
            }
        }
        Ok(this)
    }

    fn take_pages(&mut self) -> Pages {
        // SAFETY: the pages are initialised (type invariant); every caller puts them back with
        // `put_pages` (or forgets `self`) before anything else reads them.
        unsafe { core::mem::ManuallyDrop::take(&mut self.pages) }
    }

    fn put_pages(&mut self, pages: Pages) {
        self.pages = core::mem::ManuallyDrop::new(pages);
    }

    /// Copies `len` bytes between the chunk's bytes at offset `off` and the memory at physical
    /// address `orig`, towards `orig` if `to_orig`. Nothing is copied if the chunk's range is
    /// not inside the chunk, or if the two ranges overlap.
    ///
    /// `orig .. orig + len` must be memory of the linear map that a DMA API caller lent for a
    /// streaming mapping that is still live: the address of a
    /// [`CallerBuf`](crate::kext::dma::ops::CallerBuf) given to the ops table, or a part of it,
    /// which the DMA API contract keeps valid until the caller unmaps it. The bounce pool copies
    /// only to and from the original range of a mapping its slot allocator holds as live.
    pub fn copy(&self, off: usize, orig: u64, len: usize, to_orig: bool) {
        // The size from the order: `len()` would go through the slice `Deref` (a C call).
        let size = crate::kext::page::PAGE_SIZE << self.pages().order();
        let inside = off.checked_add(len).is_some_and(|end| end <= size);
        let phys = self.phys;
        let disjoint = orig
            .checked_add(len as u64)
            .is_some_and(|end| end <= phys || orig >= phys + size as u64);
        if !inside || !disjoint {
            return;
        }
        let bounce = (self.virt as *mut u8).wrapping_add(off);
        // `orig` is lent memory of the linear map (see above): its virtual address is valid.
        let orig = crate::kext::page::phys_to_virt(orig);
        let (src, dst) = if to_orig {
            (bounce.cast_const(), orig)
        } else {
            (orig.cast_const(), bounce)
        };
        // SAFETY: `bounce` is `len` bytes inside the chunk's pages, which we own (checked
        // above); the original range is `len` bytes of lent memory (the caller's contract,
        // above); the two are disjoint (checked above).
        unsafe { core::ptr::copy_nonoverlapping(src, dst, len) };
    }

    /// The pages.
    pub fn pages(&self) -> &Pages {
        &self.pages
    }

    /// The exchanged segments (empty outside a PV domain).
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }
}

impl Drop for ChunkMem {
    fn drop(&mut self) {
        let mut pages = self.take_pages();
        for &e in self.extents.iter().rev() {
            pages = match undo_contiguous(pages, e.first, e.order, self.gfp) {
                Ok(pages) => pages,
                Err(ExchangeFailed {
                    error,
                    pages: Some(pages),
                }) => {
                    // The contiguous frames stay: the domain still owns as many frames.
                    pr_warn!(
                        "xen_swiotlb_rs: extent at mfn {:#x} kept ({:?})\n",
                        e.mfn,
                        error
                    );
                    pages
                }
                Err(ExchangeFailed { pages: None, .. }) => return,
            };
        }
        drop(pages);
    }
}

/// The allocation flags matching a `gfp_t` context, for the kernel crate's allocators.
fn gfp_flags(gfp: Gfp) -> kernel::alloc::Flags {
    if gfp.may_sleep() {
        GFP_KERNEL
    } else {
        GFP_ATOMIC
    }
}
