// SPDX-License-Identifier: GPL-2.0

//! A PCI driver for QEMU's `edu` device (1234:11e8), the real DMA engine of the test lanes.
//!
//! The device has a 4 KiB buffer at bus offset 0x40000 of its own and copies between it and
//! RAM: registers 0x80 (source), 0x88 (destination), 0x90 (count), 0x98 (command: bit 0 starts,
//! bit 1 selects device-to-RAM, the device clears bit 0 when done). It checks every bus address
//! against its DMA mask (28 bits unless QEMU is told otherwise): QEMU 7.2 clamps a violating
//! address and prints `EDU: clamping DMA ...` on its output, which the lane judge treats as a
//! failure, so the device is a strict oracle for the DMA API. QEMU 7.2 mishandles a transfer of the whole
//! 4 KiB buffer, so transfers are at most [`MAX_XFER`] bytes.
//!
//! Everything here goes through [`crate::kext::dma`] and [`crate::kext::pci`]: it makes no raw kernel access.

use crate::kext::compat::user_slice;
use crate::kext::dma::{Attrs, CoherentAllocation, DeviceReadable, DeviceWritable, DmaDevice};
use crate::kext::mm::VmArea;
use crate::kext::{
    self,
    miscdev::MiscDevice,
    pci::{Bar, Driver, PciDevice, Registration},
};
use crate::logic::dma::dma_bit_mask;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    alloc::{flags::GFP_KERNEL, KBox},
    error::{
        code::{EBUSY, EINVAL, ENODEV, ENOTTY},
        Error, Result,
    },
    prelude::*,
    str::CStr,
};

/// The device's own buffer, in bytes.
pub const BUF_LEN: usize = 4096;
/// The longest transfer the driver issues.
pub const MAX_XFER: usize = 2048;
/// The mask of QEMU's default `edu` (`dma_mask` property).
pub const DEFAULT_MASK_BITS: u32 = 28;

const REG_ID: usize = 0x00;
const REG_LIVENESS: usize = 0x04;
const REG_DMA_SRC: usize = 0x80;
const REG_DMA_DST: usize = 0x88;
const REG_DMA_COUNT: usize = 0x90;
const REG_DMA_CMD: usize = 0x98;
const CMD_RUN: u32 = 1;
const CMD_TO_RAM: u32 = 2;
const BUF_BUS: u64 = 0x40000;
const ID_MAGIC: u32 = 0xed;
/// A transfer takes QEMU 100 ms of virtual time; give it much more.
const TIMEOUT_MS: u32 = 5000;
const POLL_MS: u32 = 2;

/// A bound `edu` device.
pub struct Edu {
    bar: Bar,
    dma: DmaDevice,
    busy: AtomicBool,
    transfers: AtomicU64,
}

/// The driver type for [`crate::kext::pci::Registration`].
pub struct EduDriver;

impl Driver for EduDriver {
    type Data = Edu;
    const NAME: &'static CStr = kernel::c_str!("xendma_edu");
    const ID: (u16, u16) = (0x1234, 0x11e8);

    fn probe(pdev: &PciDevice<'_>) -> Result<KBox<Edu>> {
        let bar = pdev.iomap(0, Self::NAME)?;
        let id = bar.read32(REG_ID)?;
        if id & 0xff != ID_MAGIC {
            pr_warn!("edu: unexpected identification {:#x}\n", id);
            return Err(ENODEV);
        }
        // The liveness register returns the inverse of what was written.
        bar.write32(REG_LIVENESS, 0x5a5a_0f0f)?;
        if bar.read32(REG_LIVENESS)? != !0x5a5a_0f0f {
            pr_warn!("edu: liveness check failed\n");
            return Err(ENODEV);
        }
        // The device's own limit: it clamps (and reports) anything above.
        pdev.dma_set_mask_and_coherent(dma_bit_mask(DEFAULT_MASK_BITS))
            .inspect_err(|e| pr_warn!("edu: the platform refuses a 28-bit DMA mask ({:?})\n", e))?;
        let dma = DmaDevice::new(pdev.device());
        Ok(KBox::new(
            Edu {
                bar,
                dma,
                busy: AtomicBool::new(false),
                transfers: AtomicU64::new(0),
            },
            GFP_KERNEL,
        )?)
    }
}

impl Edu {
    /// The device's DMA view.
    pub fn dma(&self) -> &DmaDevice {
        &self.dma
    }

    /// Transfers issued since probe.
    pub fn transfers(&self) -> u64 {
        self.transfers.load(Ordering::Relaxed)
    }

    fn check_dev(dev_off: usize, len: usize) -> Result {
        match dev_off.checked_add(len) {
            Some(end) if len > 0 && len <= MAX_XFER && end <= BUF_LEN => Ok(()),
            _ => Err(EINVAL),
        }
    }

    fn run(&self, src: u64, dst: u64, len: usize, to_ram: bool) -> Result {
        if self.busy.swap(true, Ordering::Acquire) {
            return Err(EBUSY);
        }
        let r = self.run_locked(src, dst, len, to_ram);
        self.busy.store(false, Ordering::Release);
        r
    }

    fn run_locked(&self, src: u64, dst: u64, len: usize, to_ram: bool) -> Result {
        self.bar.write64(REG_DMA_SRC, src)?;
        self.bar.write64(REG_DMA_DST, dst)?;
        self.bar.write64(REG_DMA_COUNT, len as u64)?;
        let cmd = if to_ram {
            CMD_RUN | CMD_TO_RAM
        } else {
            CMD_RUN
        };
        self.bar.write32(REG_DMA_CMD, cmd)?;
        self.transfers.fetch_add(1, Ordering::Relaxed);
        let mut waited = 0;
        while self.bar.read32(REG_DMA_CMD)? & CMD_RUN != 0 {
            if waited >= TIMEOUT_MS {
                pr_warn!(
                    "edu: DMA of {} bytes did not finish in {} ms\n",
                    len,
                    TIMEOUT_MS
                );
                return Err(Error::from_errno(-(kernel::bindings::ETIMEDOUT as i32)));
            }
            kext::sync::msleep(POLL_MS);
            waited += POLL_MS;
        }
        Ok(())
    }

    /// The device reads `len` bytes at `src_off` of `src` into its buffer at `dev_off`.
    pub fn read_from(
        &self,
        src: &impl DeviceReadable,
        src_off: usize,
        dev_off: usize,
        len: usize,
    ) -> Result {
        Self::check_dev(dev_off, len)?;
        let addr = src.dma_range(src_off, len)?;
        self.run(addr, BUF_BUS + dev_off as u64, len, false)
    }

    /// The device writes `len` bytes of its buffer at `dev_off` to `dst` at `dst_off`.
    pub fn write_to(
        &self,
        dev_off: usize,
        dst: &impl DeviceWritable,
        dst_off: usize,
        len: usize,
    ) -> Result {
        Self::check_dev(dev_off, len)?;
        let addr = dst.dma_range(dst_off, len)?;
        self.run(BUF_BUS + dev_off as u64, addr, len, true)
    }

    /// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off` through the device's
    /// buffer, in transfers of at most [`MAX_XFER`] bytes.
    pub fn copy(
        &self,
        src: &impl DeviceReadable,
        src_off: usize,
        dst: &impl DeviceWritable,
        dst_off: usize,
        len: usize,
    ) -> Result {
        src.dma_range(src_off, len)?;
        dst.dma_range(dst_off, len)?;
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MAX_XFER);
            self.read_from(src, src_off + done, 0, n)?;
            self.write_to(0, dst, dst_off + done, n)?;
            done += n;
        }
        Ok(())
    }
}

/// `/dev/xendma_edu`, for user-space tests: each open binds the driver and allocates a coherent
/// buffer of [`MMAP_LEN`] bytes that `mmap` maps (through `dma_mmap_attrs`) and that
/// [`IOCTL_COPY`] has the device copy within. One file at a time (a second `open` fails with
/// `EBUSY`, before the driver would be registered twice).
pub struct EduMisc;

/// The state of an open `/dev/xendma_edu`.
pub struct EduFile {
    // Declared first, so that it is freed before the driver unbinds.
    buf: CoherentAllocation<u8>,
    reg: Registration<EduDriver>,
    _open: OpenFlag,
}

/// Set while a file of `/dev/xendma_edu` is open: the device has one user at a time (a second
/// open gets `EBUSY` here, before it would try to register the driver a second time).
static OPEN: AtomicBool = AtomicBool::new(false);

/// Holds [`OPEN`]; clears it when dropped.
struct OpenFlag;

impl OpenFlag {
    fn take() -> Result<Self> {
        if OPEN.swap(true, Ordering::Acquire) {
            return Err(EBUSY);
        }
        Ok(Self)
    }
}

impl Drop for OpenFlag {
    fn drop(&mut self) {
        OPEN.store(false, Ordering::Release);
    }
}

/// The size of the coherent buffer a file maps.
pub const MMAP_LEN: usize = 2 * crate::kext::dma::PAGE_SIZE;

/// `struct { __u32 src, dst, len, flags; }`: the device copies `len` bytes (at least one, in
/// transfers of at most [`MAX_XFER`]) from offset `src` to offset `dst` of the file's buffer;
/// `flags` must be 0.
pub const IOCTL_COPY: u32 = kernel::ioctl::_IOW::<[u32; 4]>(b'x' as u32, 1);

impl MiscDevice for EduMisc {
    type File = EduFile;
    const NAME: &'static CStr = kernel::c_str!("xendma_edu");

    fn open(&self) -> Result<KBox<EduFile>> {
        let open = OpenFlag::take()?;
        let reg = Registration::<EduDriver>::new(&crate::THIS_MODULE)?;
        let buf = reg
            .with_bound(|_, edu| {
                CoherentAllocation::<u8>::alloc(edu.dma(), MMAP_LEN, GFP_KERNEL, Attrs::NONE)
            })
            .ok_or(ENODEV)??;
        Ok(KBox::new(
            EduFile {
                buf,
                reg,
                _open: open,
            },
            GFP_KERNEL,
        )?)
    }

    fn mmap(&self, file: &EduFile, vma: &VmArea) -> Result {
        file.buf.mmap(vma)
    }

    fn ioctl(&self, file: &EduFile, cmd: u32, arg: usize) -> Result<isize> {
        if cmd != IOCTL_COPY {
            return Err(ENOTTY);
        }
        let [src, dst, len, flags] = user_slice(arg, 16).reader().read::<[u32; 4]>()?;
        if flags != 0 {
            return Err(EINVAL);
        }
        let (src, dst, len) = (src as usize, dst as usize, len as usize);
        file.reg
            .with_bound(|_, edu| edu.copy(&file.buf, src, &file.buf, dst, len))
            .ok_or(ENODEV)??;
        Ok(0)
    }
}
