// SPDX-License-Identifier: GPL-2.0

//! KUnit suites of the odp_umem test build.
//!
//! `odp_umem_ffi`: generated layouts against the C compiler. `odp_umem_core`: the range logic as
//! the kernel toolchain compiles it, the refusal of a umem without an mm, and — in the address
//! space of the process that loaded the module (`insmod`, attached with `kthread_use_mm`), with
//! the `edu` device — fault-in, invalidation and the deterministic race: a fault parked after `hmm_range_fault` while the test replaces the page
//! must retry and map the new page, never the old one; and a umem's page mappings on their own.

use crate::edu::{Edu, EduDriver, MAX_XFER};
use crate::kext::compat::user_slice;
use crate::kext::dma::{DmaDevice, DmaRegion, MappedPage, PageMappings, PAGE_SIZE};
use crate::kext::mm::{Mm, TestMm};
use crate::kext::odp_abi::CApiUmem;
use crate::kext::page::{Pages, Zone};
use crate::kext::{kunit::Test, pci::Registration};
use crate::logic::odp::{Access, ArgError, PageSize, Region};
use crate::{arg_errno, expect, expect_eq, testdev, Client, Umem, TOTALS};
use crate::{check_layout, kunit_suite};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    prelude::*,
    sync::Arc,
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

const PAGE: u64 = 4096;

/// The generated `hmm_range`, `miscdevice` and `pci_driver` match the C compiler's layout.
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
    check_layout!(t, miscdevice, [minor, name, fops, this_device, mode]);
    check_layout!(
        t,
        pci_driver,
        [
            name,
            id_table,
            probe,
            remove,
            driver,
            dynids,
            driver_managed_dma
        ]
    );
}

kunit_suite!(ffi_suite, c"odp_umem_ffi", [layouts_match_c]);

/// The range logic compiled by the kernel toolchain, and its errnos.
fn logic_in_kernel(t: &Test) {
    let r = Region::new(0x20_0000, 0x40_0000, PageSize::Huge, Access::RW);
    expect!(t, r.is_ok());
    if let Ok(r) = r {
        expect_eq!(t, r.base_pages(), 1024);
        expect_eq!(
            t,
            r.intersect(0x20_1000, 0x20_2000).map(|s| s.count),
            Some(512)
        );
    }
    expect_eq!(t, arg_errno(ArgError::Invalid).to_errno(), -22);
    expect_eq!(t, arg_errno(ArgError::Overflow).to_errno(), -75);
    expect_eq!(t, arg_errno(ArgError::TooBig).to_errno(), -7);
    expect_eq!(t, arg_errno(ArgError::OutOfRange).to_errno(), -34);
    expect_eq!(t, arg_errno(ArgError::Denied).to_errno(), -1);
}

/// Runs `f` with the `edu` device's DMA view (the driver bound for the call).
fn with_dma(t: &Test, f: impl FnOnce(&DmaDevice)) {
    let reg = match Registration::<EduDriver>::new(&crate::THIS_MODULE) {
        Ok(reg) => reg,
        Err(e) => {
            expect!(t, false, "registering the edu driver: {:?}", e);
            return;
        }
    };
    let bound = reg.with_bound(|_, edu| f(edu.dma()));
    expect!(t, bound.is_some(), "the edu driver did not bind");
}

/// A kernel thread has no mm: registration is refused, through Rust and through the C API.
fn no_mm_no_umem(t: &Test) {
    expect!(t, Mm::current().is_none());
    with_dma(t, |dma| {
        let region = Region::new(0x10_0000, PAGE, PageSize::Base, Access::READ);
        if let Ok(region) = region {
            expect_eq!(t, Umem::new(region, dma, None).err(), Some(EINVAL));
        }
        // The exported C API refuses too (`odp_umem_get` returns ERR_PTR(-EINVAL)).
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let c = CApiUmem::get(dma.device(), 0x10_0000, PAGE, 12, 1, &COUNT);
        expect_eq!(t, c.err(), Some(EINVAL));
        let c = CApiUmem::get(dma.device(), 0x10_0000, PAGE, 13, 1, &COUNT);
        expect_eq!(t, c.err(), Some(EINVAL));
    });
}

fn fill_user(addr: u64, byte: u8) -> Result {
    let data = [byte; PAGE as usize];
    user_slice(addr as usize, PAGE as usize)
        .writer()
        .write_slice(&data)
}

fn read_mapped(umem: &Umem, addr: u64) -> Result<[u8; 8]> {
    let range = umem.map_and_lock(addr, 8, Access::READ)?;
    let (map, off) = range.page_at(addr)?;
    let mut out = [0u8; 8];
    map.page().read(off, &mut out)?;
    range.unlock();
    Ok(out)
}

/// Maps a page filled with `byte` in the address space of the process that loaded the module
/// (attached to the test's kernel thread), registers it read-write with the `edu` device bound,
/// runs `f` with the address space, the page's address and the umem, and unmaps the page.
fn with_user_umem(t: &Test, byte: u8, f: impl FnOnce(&TestMm, u64, Arc<Umem>)) {
    with_client_umem(t, byte, None, f)
}

/// [`with_user_umem`], the umem reporting its invalidations to `client`.
fn with_client_umem(
    t: &Test,
    byte: u8,
    client: Option<Arc<dyn Client>>,
    f: impl FnOnce(&TestMm, u64, Arc<Umem>),
) {
    let mm = match TestMm::enter() {
        Ok(mm) => mm,
        Err(e) => {
            expect!(
                t,
                false,
                "no address space captured at module load: {:?}",
                e
            );
            return;
        }
    };
    let Ok(addr) = mm.mmap(0, PAGE) else {
        expect!(t, false, "vm_mmap failed");
        return;
    };
    expect!(t, fill_user(addr, byte).is_ok());
    with_dma(t, |dma| {
        let umem = Region::new(addr, PAGE, PageSize::Base, Access::RW)
            .map_err(arg_errno)
            .and_then(|region| Umem::new(region, dma, client))
            .and_then(|u| Ok(Arc::new(u, GFP_KERNEL)?));
        match umem {
            Ok(umem) => f(&mm, addr, umem),
            Err(e) => expect!(t, false, "Umem::new: {:?}", e),
        }
    });
    expect!(t, mm.munmap(addr, PAGE).is_ok());
}

/// Fault-in on demand, then an invalidation by replacing the page: the next fault maps the new
/// page.
fn fault_and_invalidate(t: &Test) {
    with_user_umem(t, b'a', |mm, addr, umem| {
        expect_eq!(t, umem.stats().snapshot()[0], 0);
        expect_eq!(t, read_mapped(&umem, addr).ok(), Some([b'a'; 8]));
        expect_eq!(t, umem.stats().snapshot()[3], 1);
        expect!(t, mm.mmap(addr, PAGE) == Ok(addr));
        let [_, inval, _, mapped, _, _] = umem.stats().snapshot();
        expect!(
            t,
            inval >= 1 && mapped == 0,
            "{} invalidations, {} mapped",
            inval,
            mapped
        );
        expect!(t, fill_user(addr, b'b').is_ok());
        expect_eq!(t, read_mapped(&umem, addr).ok(), Some([b'b'; 8]));
        expect_eq!(
            t,
            umem.map_and_lock(addr + 8, PAGE, Access::READ).err(),
            Some(ERANGE)
        );
    });
}

/// Counts the calls and records the pages the module had mapped at the first.
struct SeenMapped {
    calls: AtomicU64,
    mapped_at_call: AtomicU64,
}

impl Client for SeenMapped {
    fn invalidated(&self, _start: u64, _end: u64) {
        if self.calls.fetch_add(1, Ordering::Relaxed) == 0 {
            self.mapped_at_call
                .store(TOTALS.snapshot()[3], Ordering::Relaxed);
        }
    }
}

/// The driver is told of an invalidation while the pages are still mapped: its device may
/// hold their bus addresses until then, and an unmapped bounce slot or IOMMU entry can be
/// reused at once.
fn client_told_before_unmap(t: &Test) {
    let Ok(seen) = Arc::new(
        SeenMapped {
            calls: AtomicU64::new(0),
            mapped_at_call: AtomicU64::new(0),
        },
        GFP_KERNEL,
    ) else {
        expect!(t, false, "no memory");
        return;
    };
    let client: Arc<dyn Client> = seen.clone();
    with_client_umem(t, b'c', Some(client), |mm, addr, umem| {
        expect_eq!(t, read_mapped(&umem, addr).ok(), Some([b'c'; 8]));
        let before = TOTALS.snapshot()[3];
        expect!(t, before >= 1, "{} pages mapped", before);
        expect!(t, mm.mmap(addr, PAGE) == Ok(addr));
        let calls = seen.calls.load(Ordering::Relaxed);
        let at_call = seen.mapped_at_call.load(Ordering::Relaxed);
        expect!(
            t,
            calls >= 1 && at_call == before,
            "{} calls, {} of {} pages still mapped at the first",
            calls,
            at_call,
            before
        );
        expect_eq!(t, umem.stats().snapshot()[3], 0);
    });
}

/// The faulting side of the race, run from the system workqueue.
#[pin_data]
struct RaceFault {
    umem: Arc<Umem>,
    addr: u64,
    result: AtomicU64,
    failed: AtomicBool,
    done: AtomicBool,
    #[pin]
    work: Work<RaceFault>,
}

impl_has_work! {
    impl HasWork<Self> for RaceFault { self.work }
}

impl WorkItem for RaceFault {
    type Pointer = Arc<RaceFault>;

    fn run(this: Arc<RaceFault>) {
        match read_mapped(&this.umem, this.addr) {
            Ok(v) => this.result.store(u64::from_ne_bytes(v), Ordering::Relaxed),
            Err(_) => this.failed.store(true, Ordering::Relaxed),
        }
        this.done.store(true, Ordering::Release);
    }
}

/// The deterministic race: a fault is parked after `hmm_range_fault` (the test hook), the page
/// is replaced meanwhile, and the fault must retry and map the new page.
fn parked_fault_retries(t: &Test) {
    with_user_umem(t, b'O', |mm, addr, umem| {
        let faulter = umem.clone();
        let work = Arc::pin_init(
            pin_init!(RaceFault {
                umem: faulter,
                addr,
                result: AtomicU64::new(0),
                failed: AtomicBool::new(false),
                done: AtomicBool::new(false),
                work <- new_work!("odp_umem::race"),
            }),
            GFP_KERNEL,
        );
        let Ok(work) = work else {
            expect!(t, false, "allocating the work item");
            return;
        };
        expect!(t, testdev::park_arm().is_ok());
        let _ = workqueue::system().enqueue(work.clone());
        expect!(t, testdev::park_wait().is_ok(), "the fault did not park");
        // Replace the page while the fault holds its old pfn, unlocked.
        expect!(t, mm.mmap(addr, PAGE) == Ok(addr));
        expect!(t, fill_user(addr, b'N').is_ok());
        expect!(t, testdev::park_release().is_ok());
        let mut waited = 0;
        while !work.done.load(Ordering::Acquire) && waited < 10_000 {
            crate::kext::sync::msleep(1);
            waited += 1;
        }
        expect!(
            t,
            work.done.load(Ordering::Acquire),
            "the fault did not finish"
        );
        expect!(t, !work.failed.load(Ordering::Relaxed));
        expect_eq!(
            t,
            work.result.load(Ordering::Relaxed).to_ne_bytes(),
            [b'N'; 8]
        );
        let [faults, inval, retries, mapped, maps, _] = umem.stats().snapshot();
        expect_eq!(t, (faults, retries, mapped, maps), (1, 1, 1, 1));
        expect!(t, inval >= 1, "{} invalidations", inval);
        pr_info!(
            "race: faults {} invalidations {} retries {} maps {}\n",
            faults,
            inval,
            retries,
            maps
        );
        // The work item may drop the last reference after `done`, possibly after `edu` is
        // unbound: leave nothing mapped by then.
        expect!(t, umem.unmap(addr, PAGE).is_ok());
        drop(work);
    });
}

/// A umem's page mappings on their own (`PageMappings`), with pages of the kernel's: mapped in
/// each direction for the `edu` device (28-bit mask: above 2^28 through the DMA path's bounce
/// buffers), the device's copy from one to the other found by the CPU after the sync, a place
/// outside the set or already mapped refused with the page given back, a place unmapped once,
/// and what is left unmapped with the set (DMA-API debugging reports a leak at the unbind).
fn page_mappings(t: &Test) {
    let reg = match Registration::<EduDriver>::new(&crate::THIS_MODULE) {
        Ok(reg) => reg,
        Err(e) => {
            expect!(t, false, "registering the edu driver: {:?}", e);
            return;
        }
    };
    let bound = reg.with_bound(|_, edu| {
        let r = page_mappings_on(t, edu);
        expect!(t, r.is_ok(), "{:?}", r.err());
    });
    expect!(t, bound.is_some(), "the edu driver did not bind");
}

fn page_mappings_on(t: &Test, edu: &Edu) -> Result {
    let mut src = Pages::alloc(0, Zone::Any)?;
    let dst = Pages::alloc(0, Zone::Any)?;
    for (i, b) in src.iter_mut().enumerate() {
        *b = (i % 251) as u8 + 1;
    }
    let src_ref = || src.page_ref().ok_or(EINVAL);
    let mut set = PageMappings::new(edu.dma(), 2, GFP_KERNEL)?;
    expect_eq!(t, set.len(), 2);
    match set.map(2, src_ref()?, false) {
        Err(e) => {
            expect_eq!(t, e.error, EINVAL);
            expect_eq!(t, e.buf.pfn(), src.pfn());
        }
        Ok(bus) => expect!(t, false, "place 2 of 2 mapped at {:#x}", bus),
    }
    let bus = set.map(0, src_ref()?, false).map_err(|e| e.error)?;
    match set.map(0, dst.page_ref().ok_or(EINVAL)?, true) {
        Err(e) => {
            expect_eq!(t, e.error, EBUSY);
            expect_eq!(t, e.buf.pfn(), dst.pfn());
        }
        Ok(bus) => expect!(t, false, "place 0 mapped twice, again at {:#x}", bus),
    }
    set.map(1, dst.page_ref().ok_or(EINVAL)?, true)
        .map_err(|e| e.error)?;
    let (Some(MappedPage::Read(from)), Some(MappedPage::Write(to))) = (set.get(0), set.get(1))
    else {
        expect!(
            t,
            false,
            "the places do not have the directions they were mapped with"
        );
        return Ok(());
    };
    expect_eq!(t, from.dma_handle(), bus);
    expect_eq!(t, from.page().pfn(), src.pfn());
    from.sync_for_device(0, PAGE_SIZE)?;
    for off in (0..PAGE_SIZE).step_by(MAX_XFER) {
        edu.read_from(&from, off, 0, MAX_XFER)?;
        edu.write_to(0, &to, off, MAX_XFER)?;
    }
    to.sync_for_cpu(0, PAGE_SIZE)?;
    let differs = dst.iter().zip(src.iter()).position(|(a, b)| a != b);
    expect!(
        t,
        differs.is_none(),
        "the device's copy differs at byte {:?}",
        differs
    );
    let gone = set.unmap(0).map(|(page, writable)| (page.pfn(), writable));
    expect_eq!(t, gone, Some((src.pfn(), false)));
    expect!(t, set.unmap(0).is_none());
    expect!(t, set.get(0).is_none());
    drop(set);
    Ok(())
}

kunit_suite!(
    core_suite,
    c"odp_umem_core",
    [
        logic_in_kernel,
        no_mm_no_umem,
        fault_and_invalidate,
        client_told_before_unmap,
        parked_fault_retries,
        page_mappings
    ]
);
