// SPDX-License-Identifier: GPL-2.0

//! DMA pools of small coherent blocks (`dma_pool_create`).

use crate::kext::bindings as ffi;
#[cfg(xendma_kernel_7)]
use crate::kext::compat::CStrExt as _;
use crate::kext::dma::{
    check_range, copy_from_dma, copy_to_dma, raw_gfp, DeviceReadable, DeviceWritable, DmaAddr,
    DmaDevice, DmaRegion, MAX_ALLOC,
};
use core::ptr::NonNull;
use kernel::{
    alloc::{flags, Flags},
    error::{
        code::{EINVAL, ENOMEM},
        Result,
    },
    str::CStr,
    sync::Arc,
};

/// Shared state of a [`DmaPool`]: destroyed when the pool handle and every block are gone.
///
/// # Invariants
///
/// `raw` is a pool created by `dma_pool_create` for `dev`, handing out blocks of `size` bytes.
struct PoolInner {
    raw: NonNull<ffi::dma_pool>,
    dev: DmaDevice,
    size: usize,
}

// SAFETY: the dma_pool functions take the pool's own lock.
unsafe impl Send for PoolInner {}
// SAFETY: as above.
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: every block holds an `Arc` of this object, so none is outstanding now.
        unsafe { ffi::dma_pool_destroy(self.raw.as_ptr()) };
    }
}

/// A pool of small coherent blocks (`dma_pool_create`): fixed size, aligned, and never crossing
/// a `boundary`. Blocks keep the pool alive, so it is destroyed only after the last is freed.
#[derive(Clone)]
pub struct DmaPool {
    inner: Arc<PoolInner>,
}

impl DmaPool {
    /// Creates a pool of `size`-byte blocks aligned to `align` (a power of two, 0 meaning 1),
    /// none crossing a `boundary`-aligned address (a power of two not below `size`, 0 meaning
    /// none). `EINVAL` for anything else, `ENOMEM` on allocation failure.
    pub fn new(
        name: &CStr,
        dev: &DmaDevice,
        size: usize,
        align: usize,
        boundary: usize,
    ) -> Result<Self> {
        let pow2_or_zero = |x: usize| x & x.wrapping_sub(1) == 0;
        if size == 0
            || size > MAX_ALLOC
            || !pow2_or_zero(align)
            || !pow2_or_zero(boundary)
            || (boundary != 0 && boundary < size)
        {
            return Err(EINVAL);
        }
        // SAFETY: the device is valid; the name is copied by `dma_pool_create`.
        let raw = unsafe {
            ffi::xendma_dma_pool_create(name.as_char_ptr(), dev.as_raw(), size, align, boundary)
        };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        let inner = PoolInner {
            // INVARIANT: created just above.
            raw,
            dev: dev.clone(),
            size,
        };
        Ok(Self {
            inner: Arc::new(inner, flags::GFP_KERNEL)?,
        })
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> usize {
        self.inner.size
    }

    /// A zeroed block; `ENOMEM` when none can be had.
    pub fn alloc(&self, gfp: Flags) -> Result<PoolBlock> {
        let mut dma: ffi::dma_addr_t = 0;
        // SAFETY: the pool is alive (type invariant of `PoolInner`); `dma` is an out pointer.
        let cpu = unsafe {
            ffi::dma_pool_alloc(
                self.inner.raw.as_ptr(),
                raw_gfp(gfp) | ffi::__GFP_ZERO,
                &mut dma,
            )
        };
        let cpu = NonNull::new(cpu.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: allocated from the pool just above.
        Ok(PoolBlock {
            pool: self.inner.clone(),
            cpu,
            dma,
        })
    }

    /// The device the pool serves.
    pub fn device(&self) -> &DmaDevice {
        &self.inner.dev
    }
}

/// One block of a [`DmaPool`], returned to it on drop.
///
/// # Invariants
///
/// `cpu`/`dma` is a block allocated from `pool` and not yet freed.
pub struct PoolBlock {
    pool: Arc<PoolInner>,
    cpu: NonNull<u8>,
    dma: DmaAddr,
}

// SAFETY: the block is owned memory; the pool is `Send + Sync`.
unsafe impl Send for PoolBlock {}
// SAFETY: shared access only reads.
unsafe impl Sync for PoolBlock {}

impl PoolBlock {
    /// The block size.
    pub fn len(&self) -> usize {
        self.pool.size
    }

    /// Blocks are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bus address.
    pub fn dma_handle(&self) -> DmaAddr {
        self.dma
    }

    /// Copies `data` into the block at `offset`; `EINVAL` if it does not fit.
    pub fn write_bytes(&mut self, offset: usize, data: &[u8]) -> Result {
        check_range(offset, data.len(), self.len())?;
        // SAFETY: inside the block (type invariant), exclusively borrowed.
        unsafe { copy_to_dma(self.cpu.as_ptr().add(offset), data) };
        Ok(())
    }

    /// Copies bytes from `offset` into `out`; `EINVAL` if the range is not inside.
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), self.len())?;
        // SAFETY: inside the block (type invariant); pool memory is zeroed at allocation.
        unsafe { copy_from_dma(out, self.cpu.as_ptr().add(offset)) };
        Ok(())
    }
}

impl DmaRegion for PoolBlock {
    fn dma_handle(&self) -> DmaAddr {
        self.dma
    }
    fn dma_len(&self) -> usize {
        self.pool.size
    }
}
impl DeviceReadable for PoolBlock {}
impl DeviceWritable for PoolBlock {}

impl Drop for PoolBlock {
    fn drop(&mut self) {
        // SAFETY: allocated from this pool and not freed (type invariant).
        unsafe { ffi::dma_pool_free(self.pool.raw.as_ptr(), self.cpu.as_ptr().cast(), self.dma) };
    }
}
