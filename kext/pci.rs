// SPDX-License-Identifier: GPL-2.0

//! A minimal PCI driver abstraction (Linux 6.12's `kernel` crate has none).
//!
//! [`Registration`] builds the `struct pci_driver` and its one-entry ID table in Rust, in a pinned
//! allocation it owns, the way `kext/dma/ops.rs` builds `struct dma_map_ops`: the driver's
//! `probe` and `remove` are trampolines generic over the [`Driver`]. The probe trampoline enables
//! the device and bus mastering before [`Driver::probe`] (and undoes both if it fails); the remove
//! trampoline disables both after the driver data is dropped. What the driver writes is safe: a
//! probe that returns the driver's data, BAR mappings that release themselves, and a way to use
//! the data of a bound device. C helpers remain only for static inlines (`pci_get_drvdata`,
//! `pci_resource_len`, MMIO accessors) and the embedded `struct device` of the opaque `pci_dev`.

use crate::kext::bindings::{
    __pci_register_driver, device_driver, pci_clear_master, pci_dev, pci_dev_get, pci_dev_put,
    pci_device_id, pci_disable_device, pci_driver, pci_enable_device, pci_get_device, pci_iomap,
    pci_iounmap, pci_release_region, pci_request_region, pci_set_master, pci_unregister_driver,
    xendma_device_lock, xendma_device_unlock, xendma_mmio_read32, xendma_mmio_write32,
    xendma_mmio_write64, xendma_pci_dev_device, xendma_pci_get_drvdata, xendma_pci_resource_len,
    xendma_pci_set_drvdata, PCI_ANY_ID,
};
#[cfg(xendma_kernel_7)]
use crate::kext::compat::CStrExt as _;
use crate::kext::dma::DmaDevice;
use core::{ffi::c_void, marker::PhantomData, pin::Pin, ptr::NonNull};
use kernel::{
    alloc::{flags::GFP_KERNEL, KBox},
    device::Device,
    error::{
        code::{EINVAL, EPERM},
        to_result, Result,
    },
    str::CStr,
    types::Opaque,
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
        unsafe { crate::kext::compat::device(xendma_pci_dev_device(self.raw.as_ptr())) }
    }

    /// The device's name (`0000:00:05.0`).
    pub fn name(&self) -> &'a CStr {
        // SAFETY: a valid device for `'a` (type invariant); its name lives as long.
        unsafe {
            CStr::from_char_ptr(crate::kext::bindings::xendma_dev_name(
                core::ptr::from_ref(self.device()).cast_mut().cast(),
            ))
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
        Ok(unsafe { xendma_mmio_read32(self.base.as_ptr(), offset as kernel::ffi::c_ulong) })
    }

    /// Writes the 32-bit register at `offset` (naturally aligned, inside the BAR).
    pub fn write32(&self, offset: usize, value: u32) -> Result {
        self.check(offset, 4)?;
        // SAFETY: as in `read32`.
        unsafe { xendma_mmio_write32(self.base.as_ptr(), offset as kernel::ffi::c_ulong, value) };
        Ok(())
    }

    /// Writes the 64-bit register at `offset` with one access (naturally aligned, inside the BAR).
    pub fn write64(&self, offset: usize, value: u64) -> Result {
        self.check(offset, 8)?;
        // SAFETY: as in `read32`.
        unsafe { xendma_mmio_write64(self.base.as_ptr(), offset as kernel::ffi::c_ulong, value) };
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

/// The C objects of a registered driver: the `struct pci_driver` and its ID table, which the PCI
/// core reads (and, for the driver, writes) while the driver is registered.
///
/// # Invariants
///
/// Once registered, `drv.id_table` points at `ids`, and `drv.probe` and `drv.remove` are the
/// trampolines of the [`Registration`] that owns this object.
struct RawDriver {
    drv: Opaque<pci_driver>,
    ids: [pci_device_id; 2],
}

/// A registered PCI driver; unregistered (removing it from its devices) on drop.
///
/// # Invariants
///
/// `raw.drv` is registered with the PCI core, with `D`'s trampolines and `raw.ids` as its ID
/// table; `raw` is pinned and freed only after the driver is unregistered.
pub struct Registration<D: Driver> {
    raw: Pin<KBox<RawDriver>>,
    _p: PhantomData<D>,
}

// SAFETY: the registration owns C objects that the PCI core serialises (registration, probe and
// remove); `D::Data` is `Send + Sync`.
unsafe impl<D: Driver> Send for Registration<D> {}
// SAFETY: `&self` only reads the driver's address; `with_bound` takes the device lock before it
// reads a device's driver data.
unsafe impl<D: Driver> Sync for Registration<D> {}

impl<D: Driver> Registration<D> {
    /// Registers the driver; matching devices are probed before this returns.
    pub fn new(module: &'static ThisModule) -> Result<Self> {
        let id = pci_device_id {
            vendor: D::ID.0.into(),
            device: D::ID.1.into(),
            // `PCI_ANY_ID` is `(~0)`: any subsystem vendor and device.
            subvendor: PCI_ANY_ID as u32,
            subdevice: PCI_ANY_ID as u32,
            ..Default::default()
        };
        let raw = KBox::pin(
            RawDriver {
                drv: Opaque::new(pci_driver {
                    name: D::NAME.as_char_ptr(),
                    probe: Some(Self::probe_callback),
                    remove: Some(Self::remove_callback),
                    ..Default::default()
                }),
                // The all-zero entry terminates the table.
                ids: [id, pci_device_id::default()],
            },
            GFP_KERNEL,
        )?;
        let drv = raw.drv.get();
        // INVARIANT: the table lives in the same pinned allocation as the driver.
        // SAFETY: `drv` is valid and not shared yet (the driver is not registered).
        unsafe { (*drv).id_table = raw.ids.as_ptr() };
        // SAFETY: `drv` is a filled-in driver in a pinned allocation that outlives the
        // registration (it is freed only after `pci_unregister_driver`, in `drop`); its name is
        // static and `module` is this module. On failure the PCI core keeps no pointer to it.
        to_result(unsafe { __pci_register_driver(drv, module.as_ptr(), D::NAME.as_char_ptr()) })?;
        // INVARIANT: registered just above, with `D`'s trampolines and `raw.ids`.
        Ok(Self {
            raw,
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
        self.with_bound_where(
            |pci| {
                crate::kext::compat::cstr_bytes(pci.name()) == crate::kext::compat::cstr_bytes(name)
            },
            f,
        )
    }

    /// The generic driver embedded in our `struct pci_driver`: what the driver core stores in
    /// `dev->driver` of a device bound to this driver.
    fn device_driver(&self) -> *mut device_driver {
        // SAFETY: `drv` is a valid `pci_driver` (type invariant); only an address is computed.
        unsafe { core::ptr::addr_of_mut!((*self.raw.drv.get()).driver) }
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
            // SAFETY: `gdev` is valid, and locked, so the driver core does not write `driver`
            // meanwhile.
            let bound = unsafe { (*gdev).driver };
            // Bound to us: the driver core sets `dev->driver` to the `device_driver` inside our
            // `pci_driver` (and the PCI core `pdev->driver` to the `pci_driver`) before our probe,
            // and clears both after our remove or a failed probe, under the device lock.
            let ours = core::ptr::eq(bound, self.device_driver());
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

    /// `pci_driver.probe`: enables the device and bus mastering, then calls [`Driver::probe`];
    /// undoes both if it fails.
    ///
    /// # Safety
    ///
    /// Called by the PCI core, with the device lock held, with a device matched to a driver
    /// registered by [`Registration::new`] for `D`.
    unsafe extern "C" fn probe_callback(
        pdev: *mut pci_dev,
        _id: *const pci_device_id,
    ) -> core::ffi::c_int {
        let Some(raw) = NonNull::new(pdev) else {
            return EINVAL.to_errno();
        };
        // SAFETY: the PCI core passes a valid device, which is being probed by this driver.
        let rc = unsafe { pci_enable_device(pdev) };
        if rc != 0 {
            return rc;
        }
        // SAFETY: valid and enabled just above.
        unsafe { pci_set_master(pdev) };
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
            Err(e) => {
                // SAFETY: bus mastering and the device were enabled above; the failed probe
                // leaves nothing that uses them.
                unsafe {
                    pci_clear_master(pdev);
                    pci_disable_device(pdev);
                }
                e.to_errno()
            }
        }
    }

    /// `pci_driver.remove`: drops the driver data, then disables bus mastering and the device.
    ///
    /// # Safety
    ///
    /// Called by the PCI core, with the device lock held, on a device `probe_callback` accepted.
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
        // SAFETY: enabled by `probe_callback`, whose success bound the device; the driver data,
        // the last user of the device, is gone.
        unsafe {
            pci_clear_master(pdev);
            pci_disable_device(pdev);
        }
    }
}

impl<D: Driver> Drop for Registration<D> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); unregistering removes the bound devices first, and
        // the PCI core keeps no pointer to the driver afterwards, so `raw` may be freed next.
        unsafe { pci_unregister_driver(self.raw.drv.get()) };
    }
}
