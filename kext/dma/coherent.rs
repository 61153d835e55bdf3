// SPDX-License-Identifier: GPL-2.0

//! Coherent DMA buffers (`dma_alloc_attrs`).

use crate::kext::bindings as ffi;
use crate::kext::compat::{AsBytes, FromBytes};
use crate::kext::dma::{
    check_range, copy_from_dma, copy_to_dma, raw_gfp, Attrs, BufferPages, DeviceReadable,
    DeviceWritable, DmaAddr, DmaDevice, DmaRegion, MAX_ALLOC,
};
use crate::kext::mm::VmArea;
use core::ptr::NonNull;
use kernel::{
    alloc::Flags,
    error::{
        code::{EINVAL, ENOMEM},
        to_result, Result,
    },
};

/// Coherent DMA memory for `count` values of `T` (`dma_alloc_attrs`), freed on drop.
///
/// The CPU reads and writes it through volatile accessors, since the device may access it at
/// any time; [`CoherentAllocation::as_slice`] gives a plain slice to callers who know the device
/// is idle.
///
/// # Invariants
///
/// `cpu` is the kernel mapping of a `dma_alloc_attrs` buffer of `count * size_of::<T>()` bytes
/// (`count > 0`) for `dev` with `attrs`, at bus address `dma`.
pub struct CoherentAllocation<T: AsBytes + FromBytes> {
    dev: DmaDevice,
    cpu: NonNull<T>,
    dma: DmaAddr,
    count: usize,
    attrs: Attrs,
}

// SAFETY: the buffer is owned memory of `T`s; sending it sends the `T`s.
unsafe impl<T: AsBytes + FromBytes + Send> Send for CoherentAllocation<T> {}
// SAFETY: shared access only reads (`&mut self` is needed to write).
unsafe impl<T: AsBytes + FromBytes + Sync> Sync for CoherentAllocation<T> {}

impl<T: AsBytes + FromBytes> CoherentAllocation<T> {
    /// Allocates zeroed coherent memory for `count` values of `T` under the coherent mask.
    /// `EINVAL` for zero, overflowing or unrepresentable sizes and for `NO_KERNEL_MAPPING`;
    /// `ENOMEM` when the kernel has no memory that fits (also beyond [`MAX_ALLOC`]).
    pub fn alloc(dev: &DmaDevice, count: usize, gfp: Flags, attrs: Attrs) -> Result<Self> {
        let size = count.checked_mul(core::mem::size_of::<T>()).ok_or(EINVAL)?;
        if size == 0 || attrs.contains(Attrs::NO_KERNEL_MAPPING) {
            return Err(EINVAL);
        }
        if size > MAX_ALLOC {
            return Err(ENOMEM);
        }
        let mut dma: ffi::dma_addr_t = 0;
        // SAFETY: the device is valid (`DmaDevice`); `dma` is a valid out pointer.
        let cpu = unsafe {
            ffi::dma_alloc_attrs(
                dev.as_raw(),
                size,
                &mut dma,
                raw_gfp(gfp),
                attrs.bits() as kernel::ffi::c_ulong,
            )
        };
        let cpu = NonNull::new(cpu.cast::<T>()).ok_or(ENOMEM)?;
        // INVARIANT: allocated just above, with these parameters.
        Ok(Self {
            dev: dev.clone(),
            cpu,
            dma,
            count,
            attrs,
        })
    }

    /// The number of `T`s.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The size in bytes.
    pub fn size(&self) -> usize {
        self.count * core::mem::size_of::<T>()
    }

    /// The bus address the device uses.
    pub fn dma_handle(&self) -> DmaAddr {
        self.dma
    }

    /// Reads element `i` (volatile); `EINVAL` past the end.
    pub fn read(&self, i: usize) -> Result<T> {
        if i >= self.count {
            return Err(EINVAL);
        }
        // SAFETY: in bounds of the allocation (type invariant); any bit pattern is a `T`.
        Ok(unsafe { self.cpu.as_ptr().add(i).read_volatile() })
    }

    /// Writes element `i` (volatile); `EINVAL` past the end.
    pub fn write(&mut self, i: usize, value: T) -> Result {
        if i >= self.count {
            return Err(EINVAL);
        }
        // SAFETY: in bounds of the allocation (type invariant), exclusively borrowed.
        unsafe { self.cpu.as_ptr().add(i).write_volatile(value) };
        Ok(())
    }

    fn bytes_ptr(&self) -> *mut u8 {
        self.cpu.as_ptr().cast()
    }

    /// Copies `data` into the buffer at byte `offset`; `EINVAL` if it does not fit.
    pub fn write_bytes(&mut self, offset: usize, data: &[u8]) -> Result {
        check_range(offset, data.len(), self.size())?;
        // SAFETY: checked to be inside the allocation (type invariant); `T: FromBytes`, so any
        // bytes make valid `T`s.
        unsafe { copy_to_dma(self.bytes_ptr().add(offset), data) };
        Ok(())
    }

    /// Copies bytes from `offset` into `out`; `EINVAL` if the range is not inside.
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), self.size())?;
        // SAFETY: checked to be inside the allocation; `T: AsBytes`, so every byte is initialised.
        unsafe { copy_from_dma(out, self.bytes_ptr().add(offset)) };
        Ok(())
    }

    /// The buffer as a slice.
    ///
    /// # Safety
    ///
    /// The device must not write the buffer while the slice is alive.
    pub unsafe fn as_slice(&self) -> &[T] {
        // SAFETY: valid for `count` elements (type invariant); the caller excludes device writes.
        unsafe { core::slice::from_raw_parts(self.cpu.as_ptr(), self.count) }
    }

    /// The buffer as a mutable slice.
    ///
    /// # Safety
    ///
    /// The device must not access the buffer while the slice is alive.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`, and `self` is exclusively borrowed.
        unsafe { core::slice::from_raw_parts_mut(self.cpu.as_ptr(), self.count) }
    }

    /// Maps the buffer into user space for an `mmap` file operation (`dma_mmap_attrs`): the
    /// whole buffer from the VMA's page offset; `ENXIO` or `EINVAL` as the kernel decides when the
    /// VMA is larger than the buffer.
    pub fn mmap(&self, vma: &VmArea) -> Result {
        // SAFETY: the device and buffer are valid (type invariant); `vma` is a VMA being set up
        // by an `mmap` handler (its invariant).
        to_result(unsafe {
            ffi::dma_mmap_attrs(
                self.dev.as_raw(),
                vma.as_raw(),
                self.cpu.as_ptr().cast(),
                self.dma,
                self.size(),
                self.attrs.bits() as kernel::ffi::c_ulong,
            )
        })
    }
}

impl<T: AsBytes + FromBytes> CoherentAllocation<T> {
    /// The pages behind the buffer as a scatter-gather table (`dma_get_sgtable_attrs`, through
    /// the device's ops), for sharing the buffer with another device.
    pub fn pages(&self) -> Result<BufferPages> {
        // SAFETY: the live buffer's own addresses, size and attributes (type invariant).
        unsafe {
            BufferPages::get(
                &self.dev,
                self.bytes_ptr(),
                self.dma,
                self.size(),
                self.attrs.bits() as kernel::ffi::c_ulong,
            )
        }
    }
}

impl<T: AsBytes + FromBytes> DmaRegion for CoherentAllocation<T> {
    fn dma_handle(&self) -> DmaAddr {
        self.dma
    }
    fn dma_len(&self) -> usize {
        self.size()
    }
}
impl<T: AsBytes + FromBytes> DeviceReadable for CoherentAllocation<T> {}
impl<T: AsBytes + FromBytes> DeviceWritable for CoherentAllocation<T> {}

impl<T: AsBytes + FromBytes> Drop for CoherentAllocation<T> {
    fn drop(&mut self) {
        // SAFETY: allocated by `dma_alloc_attrs` with exactly these arguments (type invariant).
        unsafe {
            ffi::dma_free_attrs(
                self.dev.as_raw(),
                self.size(),
                self.cpu.as_ptr().cast(),
                self.dma,
                self.attrs.bits() as kernel::ffi::c_ulong,
            )
        };
    }
}
