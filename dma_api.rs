// SPDX-License-Identifier: GPL-2.0

//! A safe Rust layer over the kernel's DMA API, shared by the project's modules.
//!
//! Linux 6.12's `kernel` crate has no DMA support. This layer covers what a driver needs, with
//! the ownership rules of `Documentation/core-api/dma-api-howto.rst` expressed in types:
//!
//! - [`DmaDevice`]: a device's DMA view: streaming and coherent masks, what the platform
//!   supports, the required mask, segment and mapping size limits.
//! - [`CoherentAllocation`]: a typed `dma_alloc_attrs` buffer, freed on drop, mappable to user
//!   space.
//! - [`DmaPool`] and [`PoolBlock`]: small coherent blocks with alignment and boundary guarantees;
//!   the pool lives as long as its last block (reference counted).
//! - [`Mapping`]: a streaming mapping that owns its buffer while the device does, hands it to the
//!   CPU with [`Mapping::sync_for_cpu`] and back with [`CpuOwned::sync_for_device`], and returns
//!   it on [`Mapping::unmap`]. The direction is a type parameter, so that the CPU cannot write a
//!   buffer the device only writes, and a device can only be pointed at memory it may access
//!   ([`DeviceReadable`], [`DeviceWritable`]).
//! - [`SgTable`] and [`SgMapping`]: scatter-gather tables built from pages, mapped and iterated
//!   by DMA segment.
//! - [`Pages`]: owned, physically contiguous pages from a chosen zone, a buffer for all of them.
//!
//! All errors are the kernel's: `EIO` for masks the platform refuses, `ENOMEM` for allocation
//! and mapping failures (`dma_mapping_error`), `EINVAL` for requests that are malformed before
//! they reach the kernel (zero lengths, sizes that overflow, ranges outside a buffer, alignments
//! that are not powers of two).
//!
//! Every object that holds DMA memory holds a reference on its device; memory and mappings must
//! still be released before the device's driver is unbound, as the C API requires.

use crate::ffi;
use core::{
    marker::PhantomData,
    mem::ManuallyDrop,
    ops::{BitOr, Deref, DerefMut},
    ptr::NonNull,
};
use kernel::{
    alloc::{flags, Flags, KVec},
    device::Device,
    error::{
        code::{EINVAL, ENOMEM},
        to_result, Error, Result,
    },
    str::CStr,
    sync::Arc,
    types::{ARef, AsBytes, FromBytes, Opaque},
};

/// A bus address as the device sees it (`dma_addr_t`).
pub type DmaAddr = u64;

/// The mask of the low `bits` address bits (the kernel's `DMA_BIT_MASK`).
///
/// # Examples
///
/// ```ignore
/// assert_eq!(bit_mask(28), 0x0fff_ffff);
/// ```
pub const fn bit_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The page size the DMA API works in.
pub const PAGE_SIZE: usize = kernel::page::PAGE_SIZE;

/// The largest order of a page allocation (`MAX_PAGE_ORDER` on x86).
pub const MAX_ORDER: u32 = 10;

/// The largest buffer the page allocator (and so dma-direct, without CMA) can hand out.
pub const MAX_ALLOC: usize = PAGE_SIZE << MAX_ORDER;

fn raw_gfp(flags: Flags) -> ffi::gfp_t {
    let base = if flags.contains(flags::GFP_KERNEL) {
        ffi::GFP_KERNEL
    } else if flags.contains(flags::GFP_ATOMIC) {
        ffi::GFP_ATOMIC
    } else {
        ffi::GFP_NOWAIT
    };
    if flags.contains(flags::__GFP_NOWARN) {
        base | ffi::__GFP_NOWARN
    } else {
        base
    }
}

/// DMA attributes (`DMA_ATTR_*`), combined with `|`.
///
/// # Examples
///
/// ```ignore
/// let attrs = Attrs::SKIP_CPU_SYNC | Attrs::NO_WARN;
/// assert!(attrs.contains(Attrs::NO_WARN));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attrs(u64);

impl Attrs {
    /// No attributes.
    pub const NONE: Self = Self(0);
    /// Writes may be reordered with other DMA.
    pub const WEAK_ORDERING: Self = Self(ffi::DMA_ATTR_WEAK_ORDERING as u64);
    /// Write-combined coherent memory.
    pub const WRITE_COMBINE: Self = Self(ffi::DMA_ATTR_WRITE_COMBINE as u64);
    /// No kernel mapping of coherent memory (refused by [`CoherentAllocation`], which is read
    /// and written through the kernel mapping).
    pub const NO_KERNEL_MAPPING: Self = Self(ffi::DMA_ATTR_NO_KERNEL_MAPPING as u64);
    /// Skip the CPU cache synchronisation (and bounce copies) on map and unmap.
    pub const SKIP_CPU_SYNC: Self = Self(ffi::DMA_ATTR_SKIP_CPU_SYNC as u64);
    /// Physically contiguous coherent memory.
    pub const FORCE_CONTIGUOUS: Self = Self(ffi::DMA_ATTR_FORCE_CONTIGUOUS as u64);
    /// Coherent memory may be built from single pages.
    pub const ALLOC_SINGLE_PAGES: Self = Self(ffi::DMA_ATTR_ALLOC_SINGLE_PAGES as u64);
    /// No warning when the mapping fails (the caller handles it).
    pub const NO_WARN: Self = Self(ffi::DMA_ATTR_NO_WARN as u64);
    /// Privileged-only device access.
    pub const PRIVILEGED: Self = Self(ffi::DMA_ATTR_PRIVILEGED as u64);

    /// Attributes from the raw `unsigned long` of the C API (unknown bits are kept).
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw `unsigned long` the C API takes.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether all of `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Attrs {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

mod private {
    pub trait Sealed {}
}

/// The direction of a streaming mapping, a type: [`ToDevice`], [`FromDevice`] or
/// [`Bidirectional`] (`DMA_NONE` is not a direction one can map with).
///
/// # Examples
///
/// ```ignore
/// fn program<D: DeviceWrites>(map: &Mapping<KVec<u8>, D>) { /* the device may write it */ }
/// ```
pub trait Direction: private::Sealed + Send + Sync + 'static {
    /// The C value.
    const RAW: ffi::dma_data_direction;
}

/// The device reads the memory (`DMA_TO_DEVICE`).
///
/// # Examples
///
/// ```ignore
/// let map = Mapping::<_, ToDevice>::new(&dma, buf, Attrs::NONE)?;
/// ```
pub struct ToDevice;
/// The device writes the memory (`DMA_FROM_DEVICE`).
pub struct FromDevice;
/// The device reads and writes the memory (`DMA_BIDIRECTIONAL`).
pub struct Bidirectional;

impl private::Sealed for ToDevice {}
impl private::Sealed for FromDevice {}
impl private::Sealed for Bidirectional {}

impl Direction for ToDevice {
    const RAW: ffi::dma_data_direction = ffi::dma_data_direction_DMA_TO_DEVICE;
}
impl Direction for FromDevice {
    const RAW: ffi::dma_data_direction = ffi::dma_data_direction_DMA_FROM_DEVICE;
}
impl Direction for Bidirectional {
    const RAW: ffi::dma_data_direction = ffi::dma_data_direction_DMA_BIDIRECTIONAL;
}

/// Directions in which the device reads memory; the CPU may write such a buffer while it owns it
/// and the data reaches the device after `sync_for_device`.
pub trait DeviceReads: Direction {}
/// Directions in which the device writes memory.
pub trait DeviceWrites: Direction {}
impl DeviceReads for ToDevice {}
impl DeviceReads for Bidirectional {}
impl DeviceWrites for FromDevice {}
impl DeviceWrites for Bidirectional {}

/// Memory a device can be pointed at: a bus address and a length.
///
/// # Examples
///
/// ```ignore
/// // The bus address of bytes 512..1024 of a coherent buffer, or EINVAL if out of range.
/// let addr = buf.dma_range(512, 512)?;
/// ```
pub trait DmaRegion {
    /// The bus address of the first byte.
    fn dma_handle(&self) -> DmaAddr;
    /// The length in bytes.
    fn dma_len(&self) -> usize;

    /// The bus address of `len` bytes at `offset`, if that range is non-empty and inside.
    fn dma_range(&self, offset: usize, len: usize) -> Result<DmaAddr> {
        match offset.checked_add(len) {
            Some(end) if len > 0 && end <= self.dma_len() => Ok(self.dma_handle() + offset as u64),
            _ => Err(EINVAL),
        }
    }
}

/// Memory the device may read (it was mapped for it, or it is coherent).
///
/// # Examples
///
/// ```ignore
/// // A driver's copy routine can only be pointed at memory in the right direction:
/// fn copy(src: &impl DeviceReadable, dst: &impl DeviceWritable) -> Result { /* ... */ }
/// copy(&to_device_map, &coherent)?; // compiles
/// copy(&coherent, &to_device_map)?; // does not: a ToDevice mapping is not DeviceWritable
/// ```
pub trait DeviceReadable: DmaRegion {}
/// Memory the device may write (see [`DeviceReadable`]).
pub trait DeviceWritable: DmaRegion {}

/// The DMA view of a device; holds a reference on it.
///
/// # Examples
///
/// ```ignore
/// let dma = DmaDevice::new(pdev.device());
/// dma.set_mask_and_coherent(bit_mask(28))?;
/// assert_eq!(dma.mask(), 0x0fff_ffff);
/// ```
#[derive(Clone)]
pub struct DmaDevice {
    dev: ARef<Device>,
}

impl DmaDevice {
    /// The DMA view of `dev`.
    pub fn new(dev: &Device) -> Self {
        Self { dev: dev.into() }
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    fn as_raw(&self) -> *mut ffi::device {
        // `Device` is a transparent wrapper of `struct device`.
        (&*self.dev as *const Device).cast_mut().cast()
    }

    /// Sets the streaming DMA mask. Fails with `EIO`, leaving the mask unchanged, when the device
    /// has no mask storage or the platform cannot serve addresses that low.
    pub fn set_mask(&self, mask: u64) -> Result {
        // SAFETY: `as_raw` is a valid, referenced `struct device` for the lifetime of `self`.
        to_result(unsafe { ffi::dma_set_mask(self.as_raw(), mask) })
    }

    /// Sets the coherent DMA mask; fails with `EIO` when the mask is not supported.
    pub fn set_coherent_mask(&self, mask: u64) -> Result {
        // SAFETY: as in `set_mask`.
        to_result(unsafe { ffi::dma_set_coherent_mask(self.as_raw(), mask) })
    }

    /// Sets both masks, streaming first, like `dma_set_mask_and_coherent`.
    pub fn set_mask_and_coherent(&self, mask: u64) -> Result {
        self.set_mask(mask)?;
        self.set_coherent_mask(mask)
    }

    /// The streaming DMA mask in force (32 bits when the device has none).
    pub fn mask(&self) -> u64 {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::xendma_dma_get_mask(self.as_raw()) }
    }

    /// The coherent DMA mask in force.
    pub fn coherent_mask(&self) -> u64 {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::xendma_dma_get_coherent_mask(self.as_raw()) }
    }

    /// Whether the platform (the device's DMA ops, or dma-direct) can serve `mask`: what
    /// `dma_supported()` answers, and so whether [`DmaDevice::set_mask`] would accept it.
    pub fn supports(&self, mask: u64) -> bool {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::xendma_dma_supported(self.as_raw(), mask) }
    }

    /// The smallest mask that reaches all memory (`dma_get_required_mask`).
    pub fn required_mask(&self) -> u64 {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::dma_get_required_mask(self.as_raw()) }
    }

    /// The longest scatter-gather segment the device takes (64 KiB unless set).
    pub fn max_seg_size(&self) -> u32 {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::xendma_dma_get_max_seg_size(self.as_raw()) }
    }

    /// Sets the longest segment; `EIO` if the bus gave the device no DMA parameters, `EINVAL`
    /// for zero.
    pub fn set_max_seg_size(&self, size: u32) -> Result {
        if size == 0 {
            return Err(EINVAL);
        }
        // SAFETY: as in `set_mask`.
        to_result(unsafe { ffi::xendma_dma_set_max_seg_size(self.as_raw(), size) })
    }

    /// The largest streaming mapping the device's DMA path can make (`dma_max_mapping_size`:
    /// bounded by the swiotlb segment when bouncing is possible).
    pub fn max_mapping_size(&self) -> usize {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::dma_max_mapping_size(self.as_raw()) }
    }

    /// The mapping size beyond which mapping becomes expensive (`dma_opt_mapping_size`).
    pub fn opt_mapping_size(&self) -> usize {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::dma_opt_mapping_size(self.as_raw()) }
    }

    /// Whether coherent memory of this device can be mapped to user space.
    pub fn can_mmap(&self) -> bool {
        // SAFETY: as in `set_mask`.
        unsafe { ffi::dma_can_mmap(self.as_raw()) }
    }
}

/// Copies `src` to `dst` with volatile byte stores: memory a device may access at any time.
///
/// # Safety
///
/// `dst` must be valid for `src.len()` byte writes.
unsafe fn copy_to_dma(dst: *mut u8, src: &[u8]) {
    for (i, b) in src.iter().enumerate() {
        // SAFETY: in bounds by the caller's guarantee.
        unsafe { dst.add(i).write_volatile(*b) };
    }
}

/// Copies from `src` into `dst` with volatile byte loads.
///
/// # Safety
///
/// `src` must be valid for `dst.len()` byte reads.
unsafe fn copy_from_dma(dst: &mut [u8], src: *const u8) {
    for (i, b) in dst.iter_mut().enumerate() {
        // SAFETY: in bounds by the caller's guarantee.
        *b = unsafe { src.add(i).read_volatile() };
    }
}

fn check_range(offset: usize, len: usize, size: usize) -> Result {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(EINVAL),
    }
}

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
///
/// # Examples
///
/// ```ignore
/// let mut buf = CoherentAllocation::<u32>::alloc(&dma, 1024, GFP_KERNEL, Attrs::NONE)?;
/// buf.write(0, 0xdead_beef)?;
/// program_device(buf.dma_handle());
/// assert_eq!(buf.read(1)?, 0);
/// ```
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
                attrs.bits() as _,
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
                vma.0.get(),
                self.cpu.as_ptr().cast(),
                self.dma,
                self.size(),
                self.attrs.bits() as _,
            )
        })
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
                self.attrs.bits() as _,
            )
        };
    }
}

/// A virtual memory area being set up by an `mmap` file operation.
///
/// # Examples
///
/// ```ignore
/// unsafe extern "C" fn my_mmap(file: *mut bindings::file, vma: *mut bindings::vm_area_struct) -> c_int {
///     // SAFETY: `vma` is the VMA of this mmap call.
///     let vma = unsafe { VmArea::from_raw(vma) };
///     from_result(|| buffer_of(file).mmap(vma).map(|()| 0))
/// }
/// ```
///
/// # Invariants
///
/// The wrapped `vm_area_struct` is a VMA under construction, with the mmap lock held.
#[repr(transparent)]
pub struct VmArea(Opaque<ffi::vm_area_struct>);

impl VmArea {
    /// Wraps the VMA an `mmap` handler received.
    ///
    /// # Safety
    ///
    /// `vma` must be the VMA passed to the running `mmap` file operation, and the reference must
    /// not outlive that call.
    pub unsafe fn from_raw<'a>(vma: *mut ffi::vm_area_struct) -> &'a VmArea {
        // SAFETY: `VmArea` is transparent over the VMA; validity is the caller's guarantee.
        unsafe { &*vma.cast::<VmArea>() }
    }
}

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
///
/// # Examples
///
/// ```ignore
/// let pool = DmaPool::new(c"descs", &dma, 64, 64, 4096)?;
/// let desc = pool.alloc(GFP_KERNEL)?;
/// assert_eq!(desc.dma_handle() % 64, 0);
/// drop(pool); // the pool lives on until `desc` is dropped
/// ```
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
            ffi::dma_pool_create(name.as_char_ptr(), dev.as_raw(), size, align, boundary)
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
/// # Examples
///
/// ```ignore
/// let mut desc = pool.alloc(GFP_KERNEL)?;
/// desc.write_bytes(0, &cmd.to_le_bytes())?;
/// ring.push(desc.dma_handle());
/// ```
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

/// Which zone [`Pages::alloc`] takes memory from.
///
/// # Examples
///
/// ```ignore
/// let low = Pages::alloc(0, Zone::Dma)?;
/// assert!(low.phys() < 16 << 20);
/// ```
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
///
/// # Examples
///
/// ```ignore
/// let mut pages = Pages::alloc(1, Zone::Dma32)?;
/// pages[..4].copy_from_slice(b"edu!");
/// assert!(pages.phys() < 1 << 32);
/// ```
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

    /// The kernel virtual address of the first byte (in the linear map).
    pub fn virt(&self) -> *mut u8 {
        self.addr()
    }

    /// The physical address of the first byte.
    pub fn phys(&self) -> u64 {
        // SAFETY: a page we own (type invariant).
        unsafe { ffi::xendma_page_to_phys(self.page.as_ptr()) }
    }

    /// The page frame number of the first page.
    pub fn pfn(&self) -> usize {
        (self.phys() >> kernel::page::PAGE_SHIFT) as usize
    }

    fn addr(&self) -> *mut u8 {
        // SAFETY: a page we own, in the linear map (type invariant).
        unsafe { ffi::xendma_page_address(self.page.as_ptr()) }.cast()
    }

    /// Page `n` of the block; `n` must be below `2^order`.
    pub(crate) fn nth_page(&self, n: usize) -> *mut ffi::page {
        // SAFETY: `n` is below `2^order` at every call site, so the page is ours.
        unsafe { ffi::xendma_nth_page(self.page.as_ptr(), n as _) }
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

/// Buffers that streaming mappings accept: memory in the kernel's linear map (not vmalloc, not
/// the stack, not inline in the owner) that stays in place while its owner is moved.
///
/// # Safety
///
/// `Deref` and `DerefMut` must return the same memory every time, and that memory must be in the
/// linear map (so `virt_to_page` is valid on it) and stay allocated until the owner is dropped.
pub unsafe trait LinearBuf: DerefMut<Target = [u8]> + Send {}

// SAFETY: a `KVec`'s elements are kmalloc memory that moves only when the vector grows, which
// needs `&mut` access a mapping never gives.
unsafe impl LinearBuf for KVec<u8> {}
// SAFETY: pages from the page allocator, in the linear map (`Pages` invariant).
unsafe impl LinearBuf for Pages {}

/// A failed mapping: the error and the buffer, given back.
///
/// # Examples
///
/// ```ignore
/// let map = match Mapping::<_, ToDevice>::new(&dma, buf, Attrs::NO_WARN) {
///     Ok(map) => map,
///     Err(MapError { error, buf }) => return retry_later(buf, error),
/// };
/// ```
pub struct MapError<B> {
    /// Why the mapping failed.
    pub error: Error,
    /// The buffer, unchanged.
    pub buf: B,
}

impl<B> From<MapError<B>> for Error {
    fn from(e: MapError<B>) -> Error {
        e.error
    }
}

impl<B> core::fmt::Debug for MapError<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MapError({:?})", self.error)
    }
}

/// A streaming DMA mapping of a buffer for direction `D` (`dma_map_single_attrs`).
///
/// While the mapping exists the device owns the buffer. [`Mapping::sync_for_cpu`] hands it to the
/// CPU until the returned [`CpuOwned`] is dropped or [`CpuOwned::sync_for_device`] is called;
/// [`Mapping::unmap`] ends the mapping and returns the buffer with the device's data in it.
/// Dropping the mapping unmaps it and frees the buffer.
///
/// # Invariants
///
/// `buf`'s first `len` bytes (`len > 0`) are mapped for `dev` in direction `D` with `attrs` at
/// bus address `dma`, and `buf` is not dropped while the mapping lives.
///
/// # Examples
///
/// ```ignore
/// let buf = KVec::from_elem(0u8, 2048, GFP_KERNEL)?;
/// let mut map = Mapping::<_, FromDevice>::new(&dma, buf, Attrs::NONE)?;
/// device_writes(map.dma_handle());
/// let data = map.sync_for_cpu();
/// assert_eq!(data[0], 0x5a);
/// drop(data); // back to the device
/// let buf = map.unmap();
/// ```
pub struct Mapping<B: LinearBuf, D: Direction> {
    dev: DmaDevice,
    buf: ManuallyDrop<B>,
    dma: DmaAddr,
    len: usize,
    attrs: Attrs,
    _d: PhantomData<D>,
}

impl<B: LinearBuf, D: Direction> Mapping<B, D> {
    /// Maps all of `buf`. `EINVAL` for an empty buffer; `ENOMEM` when the DMA path cannot map it
    /// (`dma_mapping_error`: no bounce space, or no address under the mask). The buffer comes
    /// back in the error.
    pub fn new(dev: &DmaDevice, mut buf: B, attrs: Attrs) -> Result<Self, MapError<B>> {
        let len = buf.len();
        if len == 0 {
            return Err(MapError { error: EINVAL, buf });
        }
        let ptr = buf.as_mut_ptr();
        // SAFETY: `ptr` is `len` bytes of linear-map memory (`LinearBuf`) that `buf` keeps in
        // place; the device is valid.
        let dma = unsafe {
            ffi::xendma_dma_map_single_attrs(
                dev.as_raw(),
                ptr.cast(),
                len,
                D::RAW as _,
                attrs.bits() as _,
            )
        };
        // SAFETY: the device is valid.
        if unsafe { ffi::xendma_dma_mapping_error(dev.as_raw(), dma) } != 0 {
            return Err(MapError { error: ENOMEM, buf });
        }
        // INVARIANT: mapped just above.
        Ok(Self {
            dev: dev.clone(),
            buf: ManuallyDrop::new(buf),
            dma,
            len,
            attrs,
            _d: PhantomData,
        })
    }

    /// The bus address the device uses.
    pub fn dma_handle(&self) -> DmaAddr {
        self.dma
    }

    /// The mapped length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Mappings are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The attributes the mapping was made with.
    pub fn attrs(&self) -> Attrs {
        self.attrs
    }

    fn sync(&self, for_cpu: bool) {
        // SAFETY: mapped with these parameters (type invariant).
        unsafe {
            if for_cpu {
                ffi::xendma_dma_sync_single_for_cpu(
                    self.dev.as_raw(),
                    self.dma,
                    self.len,
                    D::RAW as _,
                );
            } else {
                ffi::xendma_dma_sync_single_for_device(
                    self.dev.as_raw(),
                    self.dma,
                    self.len,
                    D::RAW as _,
                );
            }
        }
    }

    /// Hands the buffer to the CPU (`dma_sync_single_for_cpu`): what the device wrote is visible
    /// through the returned view. The device must be idle on the buffer; it gets the buffer back
    /// when the view is dropped.
    pub fn sync_for_cpu(&mut self) -> CpuOwned<'_, B, D> {
        self.sync(true);
        CpuOwned { map: self }
    }

    /// Reads the CPU's copy of the buffer without taking ownership (volatile). Before a
    /// `sync_for_cpu` the contents are unspecified: with a direct mapping they may already hold
    /// the device's data, with a bounced one they hold what was there at map time.
    pub fn peek_unsynced(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), self.len)?;
        let base: *const u8 = self.buf.as_ptr();
        // SAFETY: inside the buffer, which lives as long as `self`; volatile reads of memory a
        // device may write are well defined, and the CPU side is not written while `&self` lives.
        unsafe { copy_from_dma(out, base.add(offset)) };
        Ok(())
    }

    fn do_unmap(&mut self) {
        // SAFETY: mapped with these parameters (type invariant); called once, on the way out.
        unsafe {
            ffi::dma_unmap_page_attrs(
                self.dev.as_raw(),
                self.dma,
                self.len,
                D::RAW,
                self.attrs.bits() as _,
            )
        };
    }

    /// Ends the mapping and returns the buffer, holding what the device wrote.
    pub fn unmap(self) -> B {
        let mut this = ManuallyDrop::new(self);
        this.do_unmap();
        // SAFETY: `this` is never used or dropped again, so its buffer and device reference are
        // moved out exactly once.
        let (buf, dev) = unsafe {
            (
                ManuallyDrop::take(&mut this.buf),
                core::ptr::read(&this.dev),
            )
        };
        drop(dev);
        buf
    }
}

impl<B: LinearBuf, D: Direction> DmaRegion for Mapping<B, D> {
    fn dma_handle(&self) -> DmaAddr {
        self.dma
    }
    fn dma_len(&self) -> usize {
        self.len
    }
}
impl<B: LinearBuf, D: DeviceReads> DeviceReadable for Mapping<B, D> {}
impl<B: LinearBuf, D: DeviceWrites> DeviceWritable for Mapping<B, D> {}

impl<B: LinearBuf, D: Direction> Drop for Mapping<B, D> {
    fn drop(&mut self) {
        self.do_unmap();
        // SAFETY: unmapped just above; the buffer is dropped once.
        unsafe { ManuallyDrop::drop(&mut self.buf) };
    }
}

/// The CPU's ownership of a mapped buffer, from [`Mapping::sync_for_cpu`] until drop or
/// [`CpuOwned::sync_for_device`]. It reads the buffer in every direction and writes it only in
/// directions where the device reads ([`DeviceReads`]): a CPU write to a `FromDevice` buffer
/// would never reach the device.
///
/// # Examples
///
/// ```ignore
/// let mut cpu = to_device_map.sync_for_cpu();
/// cpu[0] = 1; // reaches the device...
/// cpu.sync_for_device(); // ...from here on
/// ```
pub struct CpuOwned<'a, B: LinearBuf, D: Direction> {
    map: &'a mut Mapping<B, D>,
}

impl<B: LinearBuf, D: Direction> CpuOwned<'_, B, D> {
    /// Gives the buffer back to the device (`dma_sync_single_for_device`); the same as dropping.
    pub fn sync_for_device(self) {}
}

impl<B: LinearBuf, D: Direction> Deref for CpuOwned<'_, B, D> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map.buf[..self.map.len]
    }
}

impl<B: LinearBuf, D: DeviceReads> DerefMut for CpuOwned<'_, B, D> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.map.len;
        &mut self.map.buf[..len]
    }
}

impl<B: LinearBuf, D: Direction> Drop for CpuOwned<'_, B, D> {
    fn drop(&mut self) {
        self.map.sync(false);
    }
}

/// A scatter-gather table over owned pages (`sg_alloc_table_from_pages_segment`): `len` bytes
/// starting `offset` bytes into the first page, in entries of at most `max_segment` bytes;
/// physically adjacent pages share an entry.
///
/// # Invariants
///
/// `table` was filled by `sg_alloc_table_from_pages_segment` over the pages of `pages` for
/// `offset..offset + len`, and is freed only on drop.
///
/// # Examples
///
/// ```ignore
/// let mut pages = KVec::new();
/// for _ in 0..4 {
///     pages.push(Pages::alloc(0, Zone::Any)?, GFP_KERNEL)?;
/// }
/// let table = SgTable::new(pages, 100, 3 * PAGE_SIZE, PAGE_SIZE)?;
/// let map = table.map::<ToDevice>(&dma, Attrs::NONE)?;
/// for seg in map.segments() {
///     program_descriptor(seg.dma_handle(), seg.dma_len());
/// }
/// ```
pub struct SgTable {
    table: ffi::sg_table,
    pages: KVec<Pages>,
    offset: usize,
    len: usize,
}

// SAFETY: the table's entries are kmalloc memory owned by the table; the pages are owned.
unsafe impl Send for SgTable {}
// SAFETY: shared access only reads.
unsafe impl Sync for SgTable {}

impl SgTable {
    /// Builds the table. `EINVAL` when the range is empty or does not fit in the pages, or
    /// `max_segment` is below a page; `ENOMEM` on allocation failure.
    pub fn new(pages: KVec<Pages>, offset: usize, len: usize, max_segment: u32) -> Result<Self> {
        let total = pages
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .ok_or(EINVAL)?;
        check_range(offset, len, total)?;
        if len == 0 || (max_segment as usize) < PAGE_SIZE {
            return Err(EINVAL);
        }
        // The C function takes the pages the range touches, as order-0 pages.
        let first = offset >> kernel::page::PAGE_SHIFT;
        let last = (offset + len - 1) >> kernel::page::PAGE_SHIFT;
        let mut list = KVec::with_capacity(last - first + 1, flags::GFP_KERNEL)?;
        let mut index = 0usize;
        for p in pages.iter() {
            for n in 0..(1usize << p.order()) {
                if index >= first && index <= last {
                    list.push(p.nth_page(n), flags::GFP_KERNEL)?;
                }
                index += 1;
            }
        }
        let mut table = ffi::sg_table::default();
        let n = u32::try_from(list.len()).map_err(|_| EINVAL)?;
        // SAFETY: `list` holds `n` valid pages; the offset is inside the first of them and the
        // length inside the list (checked above); `table` is an out parameter.
        to_result(unsafe {
            ffi::sg_alloc_table_from_pages_segment(
                &mut table,
                list.as_mut_ptr(),
                n,
                (offset & (PAGE_SIZE - 1)) as _,
                len,
                max_segment,
                ffi::GFP_KERNEL,
            )
        })?;
        // INVARIANT: filled just above over these pages and range.
        Ok(Self {
            table,
            pages,
            offset,
            len,
        })
    }

    /// The number of entries (`orig_nents`).
    pub fn entries(&self) -> usize {
        self.table.orig_nents as usize
    }

    /// The length the table describes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Tables are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reads `out.len()` bytes at `offset` into the table's range.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), self.len)?;
        let mut base = 0usize;
        for p in self.pages.iter() {
            if let Some((range, at)) = overlap(base, p.len(), self.offset + offset, out.len()) {
                out[at..at + range.len()].copy_from_slice(&p[range]);
            }
            base += p.len();
        }
        Ok(())
    }

    /// Writes `data` at `offset` into the table's range.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        check_range(offset, data.len(), self.len)?;
        let mut base = 0usize;
        for p in self.pages.iter_mut() {
            let plen = p.len();
            if let Some((range, at)) = overlap(base, plen, self.offset + offset, data.len()) {
                let n = range.len();
                p[range].copy_from_slice(&data[at..at + n]);
            }
            base += plen;
        }
        Ok(())
    }

    /// Maps the table for direction `D` (`dma_map_sgtable`). The kernel's error is returned with
    /// the table: `ENOMEM` when mapping space ran out, `EIO` or `EINVAL` for segments the device
    /// cannot take.
    pub fn map<D: Direction>(
        mut self,
        dev: &DmaDevice,
        attrs: Attrs,
    ) -> Result<SgMapping<D>, MapError<SgTable>> {
        // SAFETY: the table is valid (type invariant) and the device is valid.
        let rc = unsafe {
            ffi::dma_map_sgtable(dev.as_raw(), &mut self.table, D::RAW, attrs.bits() as _)
        };
        if rc != 0 {
            return Err(MapError {
                error: Error::from_errno(rc),
                buf: self,
            });
        }
        // INVARIANT: mapped just above.
        Ok(SgMapping {
            dev: dev.clone(),
            table: ManuallyDrop::new(self),
            attrs,
            _d: PhantomData,
        })
    }

    /// Frees the table and returns the pages.
    pub fn into_pages(self) -> KVec<Pages> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: allocated by `sg_alloc_table_from_pages_segment` (type invariant); `this` is
        // not used or dropped again, so the pages are moved out once.
        unsafe {
            ffi::sg_free_table(&mut this.table);
            core::ptr::read(&this.pages)
        }
    }
}

impl Drop for SgTable {
    fn drop(&mut self) {
        // SAFETY: allocated by `sg_alloc_table_from_pages_segment` (type invariant).
        unsafe { ffi::sg_free_table(&mut self.table) };
    }
}

/// The part of `start..start + len` inside a block of `block_len` bytes at `base`: the range
/// within the block and where it begins in `start..`.
fn overlap(
    base: usize,
    block_len: usize,
    start: usize,
    len: usize,
) -> Option<(core::ops::Range<usize>, usize)> {
    let (lo, hi) = (start.max(base), (start + len).min(base + block_len));
    (lo < hi).then(|| (lo - base..hi - base, lo - start))
}

/// A mapped scatter-gather table; the device owns its pages until [`SgMapping::sync_for_cpu`]
/// or [`SgMapping::unmap`]. Dropping it unmaps and frees everything.
///
/// # Examples
///
/// ```ignore
/// let mut map = table.map::<FromDevice>(&dma, Attrs::NONE)?;
/// run_device(map.segments());
/// let mut head = [0u8; 64];
/// map.sync_for_cpu().read(0, &mut head)?;
/// let table = map.unmap();
/// ```
///
/// # Invariants
///
/// `table` is mapped for `dev` in direction `D` with `attrs`.
pub struct SgMapping<D: Direction> {
    dev: DmaDevice,
    table: ManuallyDrop<SgTable>,
    attrs: Attrs,
    _d: PhantomData<D>,
}

impl<D: Direction> SgMapping<D> {
    /// The number of DMA segments the mapping produced (`nents`; may be fewer than the entries).
    pub fn segment_count(&self) -> usize {
        self.table.table.nents as usize
    }

    /// The number of entries of the table.
    pub fn entries(&self) -> usize {
        self.table.entries()
    }

    /// The DMA segments, in order.
    pub fn segments(&self) -> Segments<'_, D> {
        Segments {
            next: self.table.table.sgl,
            left: self.segment_count(),
            _p: PhantomData,
        }
    }

    /// The length the table describes.
    pub fn len(&self) -> usize {
        self.table.len
    }

    /// Mappings are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn sync(&mut self, for_cpu: bool) {
        // SAFETY: mapped with this direction (type invariant).
        unsafe {
            if for_cpu {
                ffi::xendma_dma_sync_sgtable_for_cpu(
                    self.dev.as_raw(),
                    &mut self.table.table,
                    D::RAW as _,
                );
            } else {
                ffi::xendma_dma_sync_sgtable_for_device(
                    self.dev.as_raw(),
                    &mut self.table.table,
                    D::RAW as _,
                );
            }
        }
    }

    /// Hands the pages to the CPU until the returned view is dropped.
    pub fn sync_for_cpu(&mut self) -> SgCpuOwned<'_, D> {
        self.sync(true);
        SgCpuOwned { map: self }
    }

    fn do_unmap(&mut self) {
        // SAFETY: mapped with these parameters (type invariant); called once, on the way out.
        unsafe {
            ffi::xendma_dma_unmap_sgtable(
                self.dev.as_raw(),
                &mut self.table.table,
                D::RAW as _,
                self.attrs.bits() as _,
            )
        };
    }

    /// Ends the mapping and returns the table, holding what the device wrote.
    pub fn unmap(self) -> SgTable {
        let mut this = ManuallyDrop::new(self);
        this.do_unmap();
        // SAFETY: `this` is not used or dropped again, so the table and the device reference
        // are moved out once.
        let (table, dev) = unsafe {
            (
                ManuallyDrop::take(&mut this.table),
                core::ptr::read(&this.dev),
            )
        };
        drop(dev);
        table
    }
}

impl<D: Direction> Drop for SgMapping<D> {
    fn drop(&mut self) {
        self.do_unmap();
        // SAFETY: unmapped just above; dropped once.
        unsafe { ManuallyDrop::drop(&mut self.table) };
    }
}

/// The CPU's ownership of a mapped table's pages (see [`CpuOwned`]).
///
/// # Examples
///
/// ```ignore
/// let mut cpu = to_device_sg.sync_for_cpu();
/// cpu.write(0, b"header")?;
/// drop(cpu); // the device sees the new header
/// ```
pub struct SgCpuOwned<'a, D: Direction> {
    map: &'a mut SgMapping<D>,
}

impl<D: Direction> SgCpuOwned<'_, D> {
    /// Reads from the table's range.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        self.map.table.read(offset, out)
    }

    /// Gives the pages back to the device; the same as dropping.
    pub fn sync_for_device(self) {}
}

impl<D: DeviceReads> SgCpuOwned<'_, D> {
    /// Writes into the table's range; the device sees it after `sync_for_device`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        self.map.table.write(offset, data)
    }
}

impl<D: Direction> Drop for SgCpuOwned<'_, D> {
    fn drop(&mut self) {
        self.map.sync(false);
    }
}

/// Iterator over the DMA segments of an [`SgMapping`].
///
/// # Examples
///
/// ```ignore
/// let total: usize = map.segments().map(|s| s.dma_len()).sum();
/// assert_eq!(total, map.len());
/// ```
///
/// # Invariants
///
/// `next` is NULL or an entry of a mapped table borrowed for `'a`, with `left` mapped segments
/// from it on.
pub struct Segments<'a, D: Direction> {
    next: *mut ffi::scatterlist,
    left: usize,
    _p: PhantomData<&'a SgMapping<D>>,
}

/// One DMA segment of a mapped table, valid while the mapping is borrowed.
///
/// # Examples
///
/// ```ignore
/// for seg in map.segments() {
///     edu.read_from(&seg, 0, 0, seg.dma_len().min(2048))?;
/// }
/// ```
pub struct DmaSegment<'a, D: Direction> {
    addr: DmaAddr,
    len: usize,
    _p: PhantomData<&'a D>,
}

impl<D: Direction> Clone for DmaSegment<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<D: Direction> Copy for DmaSegment<'_, D> {}

impl<'a, D: Direction> Iterator for Segments<'a, D> {
    type Item = DmaSegment<'a, D>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.next.is_null() {
            return None;
        }
        let sg = self.next;
        // SAFETY: `sg` is an entry of the borrowed, mapped table (type invariant).
        let (addr, len, next) = unsafe {
            (
                ffi::xendma_sg_dma_address(sg),
                ffi::xendma_sg_dma_len(sg),
                ffi::sg_next(sg),
            )
        };
        // INVARIANT: one segment consumed; `next` is the following entry or NULL.
        self.left -= 1;
        self.next = next;
        Some(DmaSegment {
            addr,
            len: len as usize,
            _p: PhantomData,
        })
    }
}

impl<D: Direction> DmaRegion for DmaSegment<'_, D> {
    fn dma_handle(&self) -> DmaAddr {
        self.addr
    }
    fn dma_len(&self) -> usize {
        self.len
    }
}
impl<D: DeviceReads> DeviceReadable for DmaSegment<'_, D> {}
impl<D: DeviceWrites> DeviceWritable for DmaSegment<'_, D> {}

/// A reference on a page that belongs to someone else, such as a page of a process's memory
/// (`get_page` / `put_page`): it keeps the page from being freed, not its contents from
/// changing or its user mapping from going away.
///
/// # Invariants
///
/// `page` is a valid `struct page` on which this object holds one reference.
pub struct PageRef {
    page: NonNull<ffi::page>,
}

// SAFETY: a page reference may be dropped on any CPU.
unsafe impl Send for PageRef {}
// SAFETY: shared access only reads the page.
unsafe impl Sync for PageRef {}

impl PageRef {
    /// Takes a reference on `page`.
    ///
    /// # Safety
    ///
    /// `page` is a valid `struct page` whose reference count cannot drop to zero during this
    /// call (for example: it is mapped in a process's page table that cannot change meanwhile).
    pub unsafe fn get(page: NonNull<ffi::page>) -> Self {
        // SAFETY: valid and referenced (caller's guarantee).
        unsafe { ffi::xendma_odp_get_page(page.as_ptr()) };
        // INVARIANT: one reference taken just above.
        Self { page }
    }

    /// The page frame number.
    pub fn pfn(&self) -> usize {
        // SAFETY: a valid page (type invariant).
        unsafe { ffi::xendma_odp_page_to_pfn(self.page.as_ptr()) as usize }
    }

    /// Marks the page (its folio) dirty, so that what a device wrote is written back.
    pub fn set_dirty(&self) {
        // SAFETY: a valid page we hold a reference on (type invariant).
        unsafe { ffi::xendma_odp_set_page_dirty(self.page.as_ptr()) };
    }

    /// Reads `out.len()` bytes at `offset` of the page with the CPU; `EINVAL` outside the page.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        check_range(offset, out.len(), PAGE_SIZE)?;
        // SAFETY: inside the page (checked), which stays allocated while we hold a reference;
        // `out` is a distinct kernel buffer.
        unsafe {
            ffi::xendma_odp_copy_from_page(
                self.page.as_ptr(),
                offset,
                out.as_mut_ptr().cast(),
                out.len(),
            )
        };
        Ok(())
    }
}

impl Drop for PageRef {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `get` (type invariant), dropped once.
        unsafe { ffi::xendma_odp_put_page(self.page.as_ptr()) };
    }
}

/// A streaming mapping of one base page that someone else owns (`dma_map_page_attrs`), for
/// direction `D`: the device's view of, for example, a page of a process's memory. The page is
/// referenced for as long as it is mapped. Unlike [`Mapping`], the CPU side is not borrowed
/// (other CPUs may write the page through their own mappings at any time), so the syncs are
/// plain calls that the device's user orders against its transfers: [`sync_for_device`] before
/// the device reads, [`sync_for_cpu`] after it wrote. Unmapping does not sync
/// (`DMA_ATTR_SKIP_CPU_SYNC`): a bounce buffer copied back at unmap time would overwrite what
/// the CPU wrote since the device's last transfer, so every device write must be followed by
/// [`sync_for_cpu`] of the bytes it wrote.
///
/// [`sync_for_device`]: PageMapping::sync_for_device
/// [`sync_for_cpu`]: PageMapping::sync_for_cpu
///
/// # Invariants
///
/// `page` is mapped for `dev` in direction `D` at `dma`, `PAGE_SIZE` bytes, until drop.
pub struct PageMapping<D: Direction> {
    dev: DmaDevice,
    page: PageRef,
    dma: DmaAddr,
    _d: PhantomData<D>,
}

impl<D: Direction> PageMapping<D> {
    /// Maps `page` for `dev`. `ENOMEM` (and the page back) when the DMA path cannot map it.
    pub fn new(dev: &DmaDevice, page: PageRef) -> Result<Self, MapError<PageRef>> {
        // SAFETY: a valid, referenced page (`PageRef` invariant) and a valid device.
        let dma = unsafe {
            ffi::dma_map_page_attrs(
                dev.as_raw(),
                page.page.as_ptr(),
                0,
                PAGE_SIZE,
                D::RAW,
                Attrs::NO_WARN.bits() as _,
            )
        };
        // SAFETY: the device is valid.
        if unsafe { ffi::xendma_dma_mapping_error(dev.as_raw(), dma) } != 0 {
            return Err(MapError {
                error: ENOMEM,
                buf: page,
            });
        }
        // INVARIANT: mapped just above.
        Ok(Self {
            dev: dev.clone(),
            page,
            dma,
            _d: PhantomData,
        })
    }

    /// The mapped page.
    pub fn page(&self) -> &PageRef {
        &self.page
    }

    /// Makes what the CPU wrote to `len` bytes at `offset` visible to the device
    /// (`dma_sync_single_range_for_device`); `EINVAL` outside the page.
    pub fn sync_for_device(&self, offset: usize, len: usize) -> Result {
        check_range(offset, len, PAGE_SIZE)?;
        // SAFETY: a part of the mapping made with these parameters (type invariant).
        unsafe {
            ffi::xendma_dma_sync_single_for_device(
                self.dev.as_raw(),
                self.dma + offset as u64,
                len,
                D::RAW as _,
            )
        };
        Ok(())
    }

    /// Makes what the device wrote to `len` bytes at `offset` visible to the CPU
    /// (`dma_sync_single_range_for_cpu`); `EINVAL` outside the page. Only the synced bytes
    /// are copied back from a bounce buffer, so the CPU's writes elsewhere in the page survive.
    pub fn sync_for_cpu(&self, offset: usize, len: usize) -> Result {
        check_range(offset, len, PAGE_SIZE)?;
        // SAFETY: a part of the mapping made with these parameters (type invariant).
        unsafe {
            ffi::xendma_dma_sync_single_for_cpu(
                self.dev.as_raw(),
                self.dma + offset as u64,
                len,
                D::RAW as _,
            )
        };
        Ok(())
    }

    /// Unmaps the page and returns it (with what the device wrote, if the mapping bounced).
    pub fn unmap(self) -> PageRef {
        let this = ManuallyDrop::new(self);
        this.do_unmap();
        // SAFETY: `this` is never used or dropped again, so its fields are moved out once.
        let (page, dev) = unsafe { (core::ptr::read(&this.page), core::ptr::read(&this.dev)) };
        drop(dev);
        page
    }

    fn do_unmap(&self) {
        // SAFETY: mapped with these parameters (type invariant); called once, on the way out.
        unsafe {
            ffi::dma_unmap_page_attrs(
                self.dev.as_raw(),
                self.dma,
                PAGE_SIZE,
                D::RAW,
                (Attrs::NO_WARN | Attrs::SKIP_CPU_SYNC).bits() as _,
            )
        };
    }
}

impl<D: Direction> DmaRegion for PageMapping<D> {
    fn dma_handle(&self) -> DmaAddr {
        self.dma
    }
    fn dma_len(&self) -> usize {
        PAGE_SIZE
    }
}
impl<D: DeviceReads> DeviceReadable for PageMapping<D> {}
impl<D: DeviceWrites> DeviceWritable for PageMapping<D> {}

impl<D: Direction> Drop for PageMapping<D> {
    fn drop(&mut self) {
        self.do_unmap();
    }
}
