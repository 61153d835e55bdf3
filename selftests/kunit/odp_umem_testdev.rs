// SPDX-License-Identifier: GPL-2.0

//! `/dev/odp_umem`: a test device in the spirit of `lib/test_hmm.c` (test builds only).
//!
//! A process registers ranges of its memory as umems and has the "device" read or write them
//! through their ODP mappings. The device really DMAs: QEMU's `edu` copies between the mapped
//! pages and its own buffer, and between that buffer and a coherent bounce buffer of the open
//! file, which the ioctl copies to or from the caller. The ioctl ABI is in
//! `Documentation/odp-umem.rst`; `selftests/progs/odp_umem_test.c` uses it.
//!
//! One file may be open at a time: each open binds the `edu` driver (as `/dev/xendma_edu` does)
//! and a second gets `EBUSY`.

use crate::edu::{EduDriver, MAX_XFER};
use crate::kext::compat::user_slice;
use crate::kext::dma::{Attrs, CoherentAllocation, DmaDevice, MappedPage, PAGE_SIZE};
use crate::kext::odp_abi::CApiUmem;
use crate::kext::{self, miscdev::MiscDevice, pci::Registration};
use crate::logic::odp::{check_op_len, chunks, Access, PageSize, Region, MAX_OP_LEN, MAX_REGIONS};
use crate::warn_ratelimited;
use crate::{arg_errno, Umem};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use kernel::{
    error::code::{EAGAIN, EBUSY, EEXIST, EINVAL, ENODEV, ENOENT, ENOSPC, ENOTTY, EPERM},
    ioctl::{_IO, _IOW, _IOWR},
    prelude::*,
    str::CStr,
    sync::{Arc, Mutex},
};

const TY: u32 = b'O' as u32;
/// `u64[5]`: start, len, page size, access (1 read, 3 read-write); the handle comes back in the
/// fifth word.
pub const IOC_REGISTER: u32 = _IOWR::<[u64; 5]>(TY, 1);
/// `u64`: the handle.
pub const IOC_UNREGISTER: u32 = _IOW::<u64>(TY, 2);
/// `u64[5]`: handle, address, length, user buffer, flags: the device reads the region into the
/// buffer.
pub const IOC_READ: u32 = _IOW::<[u64; 5]>(TY, 3);
/// `u64[5]` as for [`IOC_READ`]: the device writes the buffer into the region.
pub const IOC_WRITE: u32 = _IOW::<[u64; 5]>(TY, 4);
/// `u64[7]`: handle in, then faults, invalidations, retries, pages mapped, maps, unmaps out.
pub const IOC_STATS: u32 = _IOWR::<[u64; 7]>(TY, 5);
/// Arms the race hook: the next fault parks after `hmm_range_fault`.
pub const IOC_PARK_ARM: u32 = _IO(TY, 6);
/// Waits (at most 5 s, else `EAGAIN`) until a fault is parked.
pub const IOC_PARK_WAIT: u32 = _IO(TY, 7);
/// Lets the parked fault go on.
pub const IOC_PARK_RELEASE: u32 = _IO(TY, 8);

/// `u64[3]`: address, length, access: `odp_umem_get` through the exported C API (one per file).
pub const IOC_ABI_GET: u32 = _IOW::<[u64; 3]>(TY, 9);
/// `u64[4]`: address, length, access, and out: how many base pages `odp_umem_dma_addr` gave an
/// address for between `odp_umem_map_and_lock` and `odp_umem_unlock`.
pub const IOC_ABI_MAP: u32 = _IOWR::<[u64; 4]>(TY, 10);
/// `u64[2]`: address, length: `odp_umem_unmap`.
pub const IOC_ABI_UNMAP: u32 = _IOW::<[u64; 2]>(TY, 11);
/// `odp_umem_release`.
pub const IOC_ABI_RELEASE: u32 = _IO(TY, 12);
/// Returns how many times the C API's invalidate callback ran.
pub const IOC_ABI_INVALIDATIONS: u32 = _IO(TY, 13);

static ABI_INVALIDATIONS: AtomicU64 = AtomicU64::new(0);

/// [`IOC_READ`] flag: read through the mapping with the CPU instead of the `edu` device (the
/// same pages, found the same way; for stress loops, since every `edu` transfer takes 100 ms).
pub const XFER_CPU: u64 = 1;

const PARK_IDLE: u32 = 0;
const PARK_ARMED: u32 = 1;
const PARK_PARKED: u32 = 2;
const PARK_RELEASED: u32 = 3;
const PARK_TIMEOUT_MS: u32 = 5000;

static PARK: AtomicU32 = AtomicU32::new(PARK_IDLE);

/// The race hook, called by every fault between `hmm_range_fault` and the sequence check: when
/// armed, the fault waits there (at most 5 s) until released.
pub fn park_hook() {
    if PARK
        .compare_exchange(PARK_ARMED, PARK_PARKED, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let mut waited = 0;
    while PARK.load(Ordering::Acquire) == PARK_PARKED && waited < PARK_TIMEOUT_MS {
        kext::sync::msleep(1);
        waited += 1;
    }
    PARK.store(PARK_IDLE, Ordering::Release);
}

/// Arms the race hook; `EBUSY` if it is in use.
pub fn park_arm() -> Result<isize> {
    PARK.compare_exchange(PARK_IDLE, PARK_ARMED, Ordering::AcqRel, Ordering::Acquire)
        .map(|_| 0)
        .map_err(|_| EBUSY)
}

/// Lets the parked fault go on; `EINVAL` if none is parked.
pub fn park_release() -> Result<isize> {
    PARK.compare_exchange(
        PARK_PARKED,
        PARK_RELEASED,
        Ordering::AcqRel,
        Ordering::Acquire,
    )
    .map(|_| 0)
    .map_err(|_| EINVAL)
}

/// Waits (at most 5 s, else `EAGAIN`) until a fault is parked.
pub fn park_wait() -> Result<isize> {
    let mut waited = 0;
    while PARK.load(Ordering::Acquire) != PARK_PARKED {
        if waited >= PARK_TIMEOUT_MS {
            return Err(EAGAIN);
        }
        kext::sync::msleep(1);
        waited += 1;
    }
    Ok(0)
}

/// The misc device.
pub struct OdpMisc;

impl OdpMisc {
    /// The device state (none: everything is per open file).
    pub fn new() -> Self {
        Self
    }
}

impl Default for OdpMisc {
    fn default() -> Self {
        Self::new()
    }
}

/// The registered umems, by handle; `None` for a free slot.
type Slots = KVec<Option<(u64, Arc<Umem>)>>;

/// What a transfer uses, locked for its duration.
struct Io {
    coherent: CoherentAllocation<u8>,
    scratch: KVec<u8>,
}

/// The state of an open `/dev/odp_umem`. The fields drop in order: umems (unmapping their
/// pages), buffers, then the driver registration (unbinding `edu`).
pub struct OdpFile {
    regions: Pin<KBox<Mutex<Slots>>>,
    abi: Pin<KBox<Mutex<Option<CApiUmem>>>>,
    io: Pin<KBox<Mutex<Io>>>,
    next: AtomicU64,
    dma: DmaDevice,
    reg: Registration<EduDriver>,
}

fn warn(what: &str, e: Error) -> Error {
    warn_ratelimited!("{}: error {:?}\n", what, e);
    e
}

impl OdpFile {
    fn umem(&self, handle: u64) -> Result<Arc<Umem>> {
        let regions = self.regions.lock();
        regions
            .iter()
            .flatten()
            .find(|(h, _)| *h == handle)
            .map(|(_, u)| u.clone())
            .ok_or_else(|| warn("unknown handle", ENOENT))
    }

    fn register(&self, arg: usize) -> Result<isize> {
        let (mut r, mut w) = user_slice(arg, 40).reader_writer();
        let [start, len, page_size, access_in, _] = r.read::<[u64; 5]>()?;
        let page = PageSize::from_bytes(page_size).map_err(|e| {
            warn_ratelimited!("page size {:#x} refused: {:?}\n", page_size, e);
            arg_errno(e)
        })?;
        let access = u32::try_from(access_in)
            .map_err(|_| EINVAL)
            .and_then(|a| Access::from_user(a).map_err(arg_errno))
            .inspect_err(|e| {
                warn_ratelimited!("access {:#x} refused: error {:?}\n", access_in, e);
            })?;
        let region = Region::new(start, len, page, access).map_err(|e| {
            warn_ratelimited!("region {:#x}+{:#x} refused: {:?}\n", start, len, e);
            arg_errno(e)
        })?;
        Self::free_slot(&self.regions.lock(), &region)?;
        let umem = Arc::new(Umem::new(region, &self.dma, None)?, GFP_KERNEL)?;
        let handle = self.next.fetch_add(1, Ordering::Relaxed);
        let mut regions = self.regions.lock();
        // Checked again: another thread may have registered meanwhile.
        let slot = Self::free_slot(&regions, &region)?;
        regions[slot] = Some((handle, umem));
        drop(regions);
        if let Err(e) = w.write(&[start, len, page_size, u64::from(access.bits()), handle]) {
            // The caller never learns the handle: the region goes again, not at close.
            let taken = self.regions.lock().iter_mut().find_map(|s| match s {
                Some((h, _)) if *h == handle => s.take(),
                _ => None,
            });
            drop(taken);
            return Err(e);
        }
        Ok(0)
    }

    /// A free slot for `region`: `ENOSPC` when all are taken, `EEXIST` when it overlaps one.
    fn free_slot(regions: &[Option<(u64, Arc<Umem>)>], region: &Region) -> Result<usize> {
        if regions
            .iter()
            .flatten()
            .any(|(_, u)| u.region().overlaps(region))
        {
            return Err(warn("overlapping region", EEXIST));
        }
        regions
            .iter()
            .position(|s| s.is_none())
            .ok_or_else(|| warn("too many regions", ENOSPC))
    }

    fn unregister(&self, arg: usize) -> Result<isize> {
        let handle = user_slice(arg, 8).reader().read::<u64>()?;
        let mut regions = self.regions.lock();
        let slot = regions
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|(h, _)| *h == handle))
            .ok_or_else(|| warn("unknown handle", ENOENT))?;
        let gone = slot.take();
        drop(regions);
        drop(gone);
        Ok(0)
    }

    fn xfer(&self, arg: usize, write: bool) -> Result<isize> {
        let [handle, addr, len, buf, flags] = user_slice(arg, 40).reader().read::<[u64; 5]>()?;
        check_op_len(len).map_err(|e| warn("bad transfer length", arg_errno(e)))?;
        if flags & !XFER_CPU != 0 || (write && flags != 0) {
            return Err(warn("bad transfer flags", EINVAL));
        }
        let umem = self.umem(handle)?;
        let n = len as usize;
        let mut io = self.io.lock();
        if write {
            let io = &mut *io;
            user_slice(buf as usize, n)
                .reader()
                .read_slice(&mut io.scratch[..n])?;
            io.coherent.write_bytes(0, &io.scratch[..n])?;
            self.device_write(&umem, addr, len, &io.coherent)?;
        } else {
            if flags & XFER_CPU != 0 {
                cpu_read(&umem, addr, len, &mut io.scratch[..n])?;
            } else {
                self.device_read(&umem, addr, len, &io.coherent)?;
                let io = &mut *io;
                io.coherent.read_bytes(0, &mut io.scratch[..n])?;
            }
            user_slice(buf as usize, n)
                .writer()
                .write_slice(&io.scratch[..n])?;
        }
        Ok(0)
    }

    /// The device reads `[addr, addr + len)` of the umem into `out`.
    fn device_read(
        &self,
        umem: &Umem,
        addr: u64,
        len: u64,
        out: &CoherentAllocation<u8>,
    ) -> Result {
        self.reg
            .with_bound(|_, edu| {
                let range = umem.map_and_lock(addr, len, Access::READ)?;
                for (a, n) in chunks(addr, len, MAX_XFER as u64) {
                    let (map, off) = range.page_at(a)?;
                    let n = n as usize;
                    // The whole page, not just the chunk: a read-only range may map one page at
                    // several addresses (the shared zero page after MADV_DONTNEED), and then
                    // DMA-API debugging only finds the mapping of a sync that matches it exactly;
                    // a partial one is reported as a sync of memory never mapped.
                    map.sync_for_device(0, PAGE_SIZE)?;
                    match map {
                        MappedPage::Read(m) => edu.read_from(&m, off, 0, n)?,
                        MappedPage::Write(m) => edu.read_from(&m, off, 0, n)?,
                    }
                    edu.write_to(0, out, (a - addr) as usize, n)?;
                }
                range.unlock();
                Ok(())
            })
            .ok_or(ENODEV)?
    }

    /// The device writes `src` to `[addr, addr + len)` of the umem.
    fn device_write(
        &self,
        umem: &Umem,
        addr: u64,
        len: u64,
        src: &CoherentAllocation<u8>,
    ) -> Result {
        self.reg
            .with_bound(|_, edu| {
                let range = umem.map_and_lock(addr, len, Access::RW)?;
                for (a, n) in chunks(addr, len, MAX_XFER as u64) {
                    let (map, off) = range.page_at(a)?;
                    let n = n as usize;
                    let MappedPage::Write(m) = map else {
                        return Err(EPERM);
                    };
                    edu.read_from(src, (a - addr) as usize, 0, n)?;
                    edu.write_to(0, &m, off, n)?;
                    m.sync_for_cpu(off, n)?;
                }
                range.unlock();
                Ok(())
            })
            .ok_or(ENODEV)?
    }

    fn abi_get(&self, arg: usize) -> Result<isize> {
        let [addr, len, access] = user_slice(arg, 24).reader().read::<[u64; 3]>()?;
        let access = u32::try_from(access).map_err(|_| EINVAL)?;
        let mut abi = self.abi.lock();
        if abi.is_some() {
            return Err(EBUSY);
        }
        ABI_INVALIDATIONS.store(0, Ordering::Relaxed);
        *abi = Some(CApiUmem::get(
            self.dma.device(),
            addr,
            len,
            12,
            access,
            &ABI_INVALIDATIONS,
        )?);
        Ok(0)
    }

    fn abi_map(&self, arg: usize) -> Result<isize> {
        let (mut r, mut w) = user_slice(arg, 32).reader_writer();
        let [addr, len, access, _] = r.read::<[u64; 4]>()?;
        let access = u32::try_from(access).map_err(|_| EINVAL)?;
        let abi = self.abi.lock();
        let umem = abi.as_ref().ok_or(ENOENT)?;
        let mapped = umem.with_locked(addr, len, access, |lookup| {
            chunks(addr, len, PAGE_SIZE as u64)
                .filter(|(a, _)| lookup(*a).is_some())
                .count() as u64
        })?;
        drop(abi);
        w.write(&[addr, len, u64::from(access), mapped])?;
        Ok(0)
    }

    fn stats(&self, arg: usize) -> Result<isize> {
        let (mut r, mut w) = user_slice(arg, 56).reader_writer();
        let handle = r.read::<u64>()?;
        let umem = self.umem(handle)?;
        let [a, b, c, d, e, f] = umem.stats().snapshot();
        w.write(&[handle, a, b, c, d, e, f])?;
        Ok(0)
    }
}

/// Reads through the umem's mapping with the CPU: the pages the device would read.
fn cpu_read(umem: &Umem, addr: u64, len: u64, out: &mut [u8]) -> Result {
    let range = umem.map_and_lock(addr, len, Access::READ)?;
    for (a, n) in chunks(addr, len, PAGE_SIZE as u64) {
        let (map, off) = range.page_at(a)?;
        let at = (a - addr) as usize;
        map.page().read(off, &mut out[at..at + n as usize])?;
    }
    range.unlock();
    Ok(())
}

impl MiscDevice for OdpMisc {
    type File = OdpFile;
    const NAME: &'static CStr = kernel::c_str!("odp_umem");

    fn open(&self) -> Result<KBox<OdpFile>> {
        let reg = Registration::<EduDriver>::new(&crate::THIS_MODULE)?;
        let (dma, coherent) = reg
            .with_bound(|_, edu| -> Result<_> {
                let dma = edu.dma().clone();
                let buf = CoherentAllocation::<u8>::alloc(
                    &dma,
                    MAX_OP_LEN as usize,
                    GFP_KERNEL,
                    Attrs::NONE,
                )?;
                Ok((dma, buf))
            })
            .ok_or(ENODEV)??;
        let scratch = KVec::from_elem(0u8, MAX_OP_LEN as usize, GFP_KERNEL)?;
        let mut slots = KVec::with_capacity(MAX_REGIONS, GFP_KERNEL)?;
        for _ in 0..MAX_REGIONS {
            slots.push(None, GFP_KERNEL)?;
        }
        Ok(KBox::new(
            OdpFile {
                regions: KBox::pin_init(
                    kernel::new_mutex!(slots, "odp_umem::regions"),
                    GFP_KERNEL,
                )?,
                abi: KBox::pin_init(kernel::new_mutex!(None, "odp_umem::abi"), GFP_KERNEL)?,
                io: KBox::pin_init(
                    kernel::new_mutex!(Io { coherent, scratch }, "odp_umem::io"),
                    GFP_KERNEL,
                )?,
                next: AtomicU64::new(1),
                dma,
                reg,
            },
            GFP_KERNEL,
        )?)
    }

    fn ioctl(&self, file: &OdpFile, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            IOC_REGISTER => file.register(arg),
            IOC_UNREGISTER => file.unregister(arg),
            IOC_READ => file.xfer(arg, false),
            IOC_WRITE => file.xfer(arg, true),
            IOC_STATS => file.stats(arg),
            IOC_PARK_ARM => park_arm(),
            IOC_PARK_WAIT => park_wait(),
            IOC_PARK_RELEASE => park_release(),
            IOC_ABI_GET => file.abi_get(arg),
            IOC_ABI_MAP => file.abi_map(arg),
            IOC_ABI_UNMAP => {
                let [addr, len] = user_slice(arg, 16).reader().read::<[u64; 2]>()?;
                file.abi.lock().as_ref().ok_or(ENOENT)?.unmap(addr, len)?;
                Ok(0)
            }
            IOC_ABI_RELEASE => file.abi.lock().take().map(|_| 0).ok_or(ENOENT),
            IOC_ABI_INVALIDATIONS => Ok(ABI_INVALIDATIONS.load(Ordering::Relaxed) as isize),
            _ => Err(ENOTTY),
        }
    }
}
