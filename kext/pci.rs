// SPDX-License-Identifier: GPL-2.0

//! A minimal PCI driver abstraction (Linux 6.12's `kernel` crate has none).
//!
//! The C side (`kext/helpers/pci.c`) owns the `struct pci_driver` and its one-entry ID table, enables
//! the device and bus mastering before [`Driver::probe`] and disables both after the driver data
//! is dropped on remove. What is left for Rust is safe: a probe that returns the driver's data,
//! BAR mappings that release themselves, and a way to use the data of a bound device.

use crate::kext::bindings::{
    pci_dev, pci_dev_get, pci_dev_put, pci_get_device, pci_iomap, pci_iounmap, pci_release_region,
    pci_request_region, xendma_device_lock, xendma_device_unlock, xendma_mmio_read32,
    xendma_mmio_write32, xendma_mmio_write64, xendma_pci_dev_device, xendma_pci_driven_by,
    xendma_pci_driver, xendma_pci_driver_register, xendma_pci_driver_unregister,
    xendma_pci_get_drvdata, xendma_pci_resource_len, xendma_pci_set_drvdata,
};
use crate::kext::dma::DmaDevice;
use core::{ffi::c_void, marker::PhantomData, ptr::NonNull};
use kernel::{
    alloc::KBox,
    device::Device,
    error::{
        code::{EINVAL, EPERM},
        from_err_ptr, Result,
    },
    str::CStr,
    ThisModule,
};

/// A PCI driver for one vendor/device ID.
pub trait Driver: 'static {
    /// What `probe` builds and `remove` drops.
    type Data: Send + Sync;
    /// The driver's name (also the name of the regions it requests).
    const NAME: &'static CStr;
    /// `(vendor, device)` the driver binds to.
    const ID: (u16, u16);

    /// Called with the device enabled and bus mastering on; an error leaves the device unbound.
    fn probe(dev: &PciDevice<'_>) -> Result<KBox<Self::Data>>;
}

/// A PCI device, borrowed for the duration of a probe or of [`Registration::with_bound`].
///
/// # Invariants
///
/// `raw` is a valid `struct pci_dev` for the lifetime `'a`. If `probing`, the borrow is the
/// argument of the driver's `probe`, which has not returned yet.
pub struct PciDevice<'a> {
    raw: NonNull<pci_dev>,
    probing: bool,
    _p: PhantomData<&'a pci_dev>,
}

impl<'a> PciDevice<'a> {
    /// The generic device embedded in the PCI device.
    pub fn device(&self) -> &'a Device {
        // SAFETY: `raw` is valid for `'a` (type invariant), and so is its embedded device.
        unsafe { Device::as_ref(xendma_pci_dev_device(self.raw.as_ptr())) }
    }

    /// The device's name (`0000:00:05.0`).
    pub fn name(&self) -> &'a CStr {
        // SAFETY: a valid device for `'a` (type invariant); its name lives as long.
        unsafe {
            CStr::from_char_ptr(crate::kext::bindings::xendma_dev_name(self.device()
                as *const Device
                as *mut _))
        }
    }

    /// Sets the device's streaming and coherent DMA masks (`dma_set_mask_and_coherent`): `EIO`
    /// if the platform refuses the mask, `EPERM` outside the driver's `probe`.
    pub fn dma_set_mask_and_coherent(&self, mask: u64) -> Result {
        if !self.probing {
            return Err(EPERM);
        }
        let dma = DmaDevice::new(self.device());
        // SAFETY: in `probe` (checked above), the device was just bound to the calling driver
        // and nothing maps on it: the DMA API leaves a device's DMA to its driver, which has not
        // started any yet since it is still probing, on this thread.
        unsafe { dma.set_mask_and_coherent(mask) }
    }

    /// Requests BAR `bar` for this driver and maps all of it.
    pub fn iomap(&self, bar: u8, name: &'static CStr) -> Result<Bar> {
        Bar::new(self, bar, name)
    }
}

/// A memory BAR, requested and mapped; released and unmapped on drop.
///
/// The mapping holds a reference on the PCI device, so it stays valid even if it outlives the
/// driver's binding (accesses then reach a disabled device, which is harmless).
///
/// # Invariants
///
/// `pdev` is referenced by this object, BAR `bar` of it is requested, and `base` maps `len`
/// bytes of it.
pub struct Bar {
    pdev: NonNull<pci_dev>,
    bar: u8,
    base: NonNull<c_void>,
    len: usize,
}

// SAFETY: MMIO accessors may be called from any thread; the fields are plain pointers to
// objects that live as long as `Bar` (type invariant).
unsafe impl Send for Bar {}
// SAFETY: as above; every access is a single MMIO read or write.
unsafe impl Sync for Bar {}

impl Bar {
    fn new(dev: &PciDevice<'_>, bar: u8, name: &'static CStr) -> Result<Self> {
        let pdev = dev.raw;
        let raw = pdev.as_ptr();
        // SAFETY: `raw` is a valid device for the borrow of `dev` (`PciDevice` invariant); an
        // out-of-range BAR gives 0.
        let len = unsafe { xendma_pci_resource_len(raw, bar.into()) };
        let len = usize::try_from(len).map_err(|_| EINVAL)?;
        if len == 0 {
            return Err(EINVAL);
        }
        // SAFETY: `raw` is valid and `name` is static.
        kernel::error::to_result(unsafe {
            pci_request_region(raw, bar.into(), name.as_char_ptr())
        })?;
        // SAFETY: the region is ours; 0 maps the whole BAR.
        let base = unsafe { pci_iomap(raw, bar.into(), 0) };
        let Some(base) = NonNull::new(base) else {
            // SAFETY: requested just above.
            unsafe { pci_release_region(raw, bar.into()) };
            return Err(kernel::error::code::ENOMEM);
        };
        // SAFETY: takes the reference that the type invariant requires.
        unsafe { pci_dev_get(raw) };
        // INVARIANT: referenced, requested and mapped above.
        Ok(Self {
            pdev,
            bar,
            base,
            len,
        })
    }

    /// The size of the BAR in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the BAR is empty (it never is: an empty BAR cannot be mapped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, size: usize) -> Result {
        match offset.checked_add(size) {
            Some(end) if end <= self.len && offset & (size - 1) == 0 => Ok(()),
            _ => Err(EINVAL),
        }
    }

    /// Reads the 32-bit register at `offset` (naturally aligned, inside the BAR).
    pub fn read32(&self, offset: usize) -> Result<u32> {
        self.check(offset, 4)?;
        // SAFETY: `base` maps `len` bytes (type invariant) and the access is inside them.
        Ok(unsafe { xendma_mmio_read32(self.base.as_ptr(), offset as _) })
    }

    /// Writes the 32-bit register at `offset` (naturally aligned, inside the BAR).
    pub fn write32(&self, offset: usize, value: u32) -> Result {
        self.check(offset, 4)?;
        // SAFETY: as in `read32`.
        unsafe { xendma_mmio_write32(self.base.as_ptr(), offset as _, value) };
        Ok(())
    }

    /// Writes the 64-bit register at `offset` with one access (naturally aligned, inside the BAR).
    pub fn write64(&self, offset: usize, value: u64) -> Result {
        self.check(offset, 8)?;
        // SAFETY: as in `read32`.
        unsafe { xendma_mmio_write64(self.base.as_ptr(), offset as _, value) };
        Ok(())
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        let raw = self.pdev.as_ptr();
        // SAFETY: mapped, requested and referenced by `self` (type invariant), in that order of
        // undoing.
        unsafe {
            pci_iounmap(raw, self.base.as_ptr());
            pci_release_region(raw, self.bar.into());
            pci_dev_put(raw);
        }
    }
}

/// A registered PCI driver; unregistered (removing it from its devices) on drop.
///
/// # Invariants
///
/// `raw` is a driver registered by `xendma_pci_driver_register` with the trampolines of `D`.
pub struct Registration<D: Driver> {
    raw: NonNull<xendma_pci_driver>,
    _p: PhantomData<D>,
}

// SAFETY: the registration is a handle to a C object that the PCI core serialises.
unsafe impl<D: Driver> Send for Registration<D> {}
// SAFETY: `with_bound` takes the device lock; nothing else touches the C object.
unsafe impl<D: Driver> Sync for Registration<D> {}

impl<D: Driver> Registration<D> {
    /// Registers the driver; matching devices are probed before this returns.
    pub fn new(module: &'static ThisModule) -> Result<Self> {
        // SAFETY: the name is static, the trampolines match the C prototypes and `module` is
        // this module.
        let raw = from_err_ptr(unsafe {
            xendma_pci_driver_register(
                D::NAME.as_char_ptr(),
                D::ID.0,
                D::ID.1,
                Some(Self::probe_callback),
                Some(Self::remove_callback),
                module.as_ptr(),
            )
        })?;
        Ok(Self {
            // INVARIANT: registered just above, with `D`'s trampolines.
            raw: NonNull::new(raw).ok_or(EINVAL)?,
            _p: PhantomData,
        })
    }

    /// Calls `f` with the first device this driver is bound to and its data, holding the device
    /// lock so that the device cannot be unbound meanwhile. `None` when no device is bound.
    pub fn with_bound<R>(&self, f: impl FnOnce(&PciDevice<'_>, &D::Data) -> R) -> Option<R> {
        self.with_bound_where(|_| true, f)
    }

    /// As [`Registration::with_bound`], for the bound device named `name` (`0000:00:05.0`).
    pub fn with_bound_named<R>(
        &self,
        name: &CStr,
        f: impl FnOnce(&PciDevice<'_>, &D::Data) -> R,
    ) -> Option<R> {
        self.with_bound_where(|pci| pci.name().as_bytes() == name.as_bytes(), f)
    }

    /// As [`Registration::with_bound`], for the first bound device that `pick` accepts.
    fn with_bound_where<R>(
        &self,
        pick: impl Fn(&PciDevice<'_>) -> bool,
        f: impl FnOnce(&PciDevice<'_>, &D::Data) -> R,
    ) -> Option<R> {
        let mut f = Some(f);
        let mut pdev = core::ptr::null_mut();
        loop {
            // SAFETY: `pdev` is NULL or a device referenced by the previous call, whose reference
            // this call drops.
            pdev = unsafe { pci_get_device(D::ID.0.into(), D::ID.1.into(), pdev) };
            let dev = NonNull::new(pdev)?;
            // SAFETY: `dev` is referenced until `pci_dev_put` or the next `pci_get_device`.
            let gdev = unsafe { xendma_pci_dev_device(dev.as_ptr()) };
            // SAFETY: `gdev` is valid (see above); the lock serialises against probe and remove.
            unsafe { xendma_device_lock(gdev) };
            // SAFETY: `dev` is valid and the driver `raw` is registered (type invariant).
            let ours = unsafe { xendma_pci_driven_by(dev.as_ptr(), self.raw.as_ptr()) };
            // INVARIANT: `dev` stays referenced until the next `pci_get_device` or the put below.
            let pci = PciDevice {
                raw: dev,
                probing: false,
                _p: PhantomData,
            };
            let r = match f.take() {
                Some(f) if ours && pick(&pci) => {
                    // SAFETY: bound to our driver, so drvdata is the `KBox<D::Data>` our probe
                    // trampoline stored, alive until remove, which the device lock holds off.
                    let data = unsafe { &*xendma_pci_get_drvdata(dev.as_ptr()).cast::<D::Data>() };
                    Some(f(&pci, data))
                }
                other => {
                    f = other;
                    None
                }
            };
            // SAFETY: locked above.
            unsafe { xendma_device_unlock(gdev) };
            if r.is_some() {
                // SAFETY: drops the reference `pci_get_device` took.
                unsafe { pci_dev_put(dev.as_ptr()) };
                return r;
            }
        }
    }

    /// # Safety
    ///
    /// Called by the PCI core, through the C glue, with a device matched to this driver.
    unsafe extern "C" fn probe_callback(pdev: *mut pci_dev) -> core::ffi::c_int {
        let Some(raw) = NonNull::new(pdev) else {
            return EINVAL.to_errno();
        };
        // INVARIANT: the PCI core keeps the device alive during probe, and this is the probe.
        let dev = PciDevice {
            raw,
            probing: true,
            _p: PhantomData,
        };
        match D::probe(&dev) {
            Ok(data) => {
                // SAFETY: `pdev` is valid; the box is reclaimed by `remove_callback`.
                unsafe { xendma_pci_set_drvdata(pdev, KBox::into_raw(data).cast()) };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the PCI core, through the C glue, on a device `probe_callback` accepted.
    unsafe extern "C" fn remove_callback(pdev: *mut pci_dev) {
        // SAFETY: a successful probe stored a `KBox<D::Data>` here; remove runs once, under the
        // device lock, so no `with_bound` user holds a reference.
        let data = unsafe { xendma_pci_get_drvdata(pdev) }.cast::<D::Data>();
        if !data.is_null() {
            // SAFETY: see above; cleared right after so nothing sees a dangling pointer.
            drop(unsafe { KBox::from_raw(data) });
            // SAFETY: `pdev` is valid during remove.
            unsafe { xendma_pci_set_drvdata(pdev, core::ptr::null_mut()) };
        }
    }
}

impl<D: Driver> Drop for Registration<D> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); unregistering removes the bound devices first.
        unsafe { xendma_pci_driver_unregister(self.raw.as_ptr()) };
    }
}
