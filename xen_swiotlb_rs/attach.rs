// SPDX-License-Identifier: GPL-2.0

//! The devices on one pool's ops, and how to attach and detach them.

use crate::kext;
use crate::kext::compat::ARef;
use crate::kext::dma::ops::{self as dma_ops, Installation, Installed};
use crate::kext::percpu::PerCpuCounters;
use crate::logic::pciname::{self, PciName};
use crate::ops::Attached;
use crate::warn_ratelimited;
use crate::Engine;
use core::sync::atomic::AtomicUsize;
use kernel::device::Device;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{new_mutex, Arc, Mutex};

/// The devices on one pool's ops, and how to attach and detach them.
#[pin_data]
pub struct Swiotlb {
    /// First, so that it is dropped first.
    _quiesce: Quiesce,
    pub(crate) engine: Arc<Engine>,
    #[pin]
    pub(crate) devices: Mutex<KVec<Option<Installation<Attached>>>>,
    pub(crate) module: Option<&'static ThisModule>,
}

/// Stops the pool's growth when its devices' owner goes: no growth may run once the module's
/// code is gone.
struct Quiesce(Arc<Engine>);

impl Drop for Quiesce {
    fn drop(&mut self) {
        self.0.quiesce();
    }
}

/// Turns a user's device name into the device.
pub(crate) fn find_device(name: &[u8]) -> Result<(PciName, ARef<Device>)> {
    let n = PciName::parse(name).map_err(|_| EINVAL)?;
    let bytes = n.to_cstr_bytes();
    let cname = CStr::from_bytes_with_nul(bytes.with_nul()).map_err(|_| EINVAL)?;
    let dev = dma_ops::pci_device(cname).ok_or(ENODEV)?;
    Ok((n, dev))
}

impl Swiotlb {
    /// Devices attached to `engine`; each pins `module` (if any) while attached.
    pub fn new(engine: Arc<Engine>, module: Option<&'static ThisModule>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                _quiesce: Quiesce(engine.clone()),
                engine,
                devices <- new_mutex!(KVec::new(), "xen_swiotlb_rs_devices"),
                module,
            }),
            GFP_KERNEL,
        )
    }

    /// The pool and counters.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Puts the PCI device named `name` on our ops: unbinds its driver, installs the table,
    /// re-probes. `EINVAL` malformed name, `ENODEV` no such device, `EEXIST` already attached,
    /// `EBUSY` if a driver bound itself in between, `EOPNOTSUPP` (driver left bound) if the
    /// device uses iommu-dma, `ENOMEM` (driver left bound) if the device cannot be recorded.
    pub fn attach(&self, name: &[u8]) -> Result {
        let r = self.attach_device(name);
        kext::trace::attach(pciname::trim(name), r.err().map_or(0, |e| e.to_errno()));
        if let Err(e) = r {
            warn_ratelimited!(
                "attach '{}' failed: {:?}\n",
                format_args!("{}", pciname::Shown(name)),
                e
            );
        }
        r
    }

    fn attach_device(&self, name: &[u8]) -> Result {
        let (_, dev) = find_device(name)?;
        let module = match self.module {
            Some(m) => Some(kext::sync::ModuleRef::get(m).ok_or(ENODEV)?),
            None => None,
        };
        // Allocated before the driver is unbound: nothing may fail between that and re-probing.
        let bounced = PerCpuCounters::new()?;
        {
            let mut devices = self.devices.lock();
            if devices
                .iter()
                .flatten()
                .any(|i| core::ptr::eq(i.device(), &*dev))
            {
                return Err(EEXIST);
            }
            // The DMA API would never call our table: refuse, before the driver goes.
            if dma_ops::uses_iommu_dma(&dev) {
                crate::warn_ratelimited!(
                    "{}: not attached: it uses the IOMMU's DMA path (iommu-dma), which ignores \
                     per-device dma_map_ops (iommu=pt gives the device dma-direct, which does not)\n",
                    dma_ops::device_name(&dev)
                );
                return Err(dma_ops::eopnotsupp());
            }
            // The slot first: nothing may fail between unbinding the driver and re-probing.
            if !devices.iter().any(|s| s.is_none()) {
                devices.push(None, GFP_KERNEL)?;
            }
            let had_driver = dma_ops::has_driver(&dev);
            dma_ops::release_driver(&dev);
            let data = Attached {
                engine: self.engine.clone(),
                direct: AtomicUsize::new(0),
                bounced,
                coherent: AtomicUsize::new(0),
                exchanged: AtomicUsize::new(0),
                _module: module,
            };
            let inst = match Installed::install(&dev, data) {
                Ok(inst) => inst,
                Err(e) => {
                    drop(devices);
                    if had_driver {
                        let _ = dma_ops::reprobe(&dev);
                    }
                    return Err(e);
                }
            };
            if let Some(slot) = devices.iter_mut().find(|s| s.is_none()) {
                *slot = Some(inst);
            }
        }
        let bound = dma_ops::reprobe(&dev);
        pr_info!(
            "{}: attached ({})\n",
            dma_ops::device_name(&dev),
            match bound {
                Ok(true) => "driver re-probed",
                Ok(false) => "no driver",
                Err(_) => "re-probe failed",
            }
        );
        Ok(())
    }

    /// Takes the PCI device named `name` off our ops: unbinds its driver, restores the previous
    /// ops, re-probes. `ENOENT` if not attached; `EBUSY` (and still attached, driver re-probed)
    /// if mappings remain once the driver is gone.
    pub fn detach(&self, name: &[u8]) -> Result {
        let r = self.detach_device(name);
        kext::trace::detach(pciname::trim(name), r.err().map_or(0, |e| e.to_errno()));
        if let Err(e) = r {
            warn_ratelimited!(
                "detach '{}' failed: {:?}\n",
                format_args!("{}", pciname::Shown(name)),
                e
            );
        }
        r
    }

    fn detach_device(&self, name: &[u8]) -> Result {
        let found = find_device(name);
        if let Some(r) = self.drop_removed(name, found.as_ref().ok().map(|(_, d)| &**d)) {
            return r;
        }
        let (_, dev) = found?;
        let result = {
            let mut devices = self.devices.lock();
            let slot = devices
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|i| core::ptr::eq(i.device(), &*dev)))
                .ok_or(ENOENT)?;
            dma_ops::release_driver(&dev);
            let Some(inst) = slot.take() else {
                return Err(ENOENT);
            };
            let left = inst.data().mappings();
            if left != 0 {
                pr_warn!(
                    "{}: not detached: {} mappings still outstanding\n",
                    dma_ops::device_name(&dev),
                    left
                );
                *slot = Some(inst);
                Err(EBUSY)
            } else {
                match inst.uninstall() {
                    Ok(()) => Ok(()),
                    Err((inst, e)) => {
                        *slot = Some(inst);
                        Err(e)
                    }
                }
            }
        };
        let _ = dma_ops::reprobe(&dev);
        if result.is_ok() {
            pr_info!("{}: detached\n", dma_ops::device_name(&dev));
        }
        result
    }

    /// Drops the entry of a device named `name` that left the bus while attached (hot-unplug,
    /// `remove` in sysfs): `current` is the device of that name on the bus now, if any. Its
    /// driver was unbound at the removal, so nothing can use our table on it any more; the entry
    /// still held the device and the module. `None` if there is no such entry.
    fn drop_removed(&self, name: &[u8], current: Option<&Device>) -> Option<Result> {
        let n = PciName::parse(name).ok()?;
        let bytes = n.to_cstr_bytes();
        let want = bytes.name();
        let inst = {
            let mut devices = self.devices.lock();
            let slot = devices.iter_mut().find(|s| {
                s.as_ref().is_some_and(|i| {
                    dma_ops::device_name(i.device()).as_bytes() == want
                        && !current.is_some_and(|c| core::ptr::eq(i.device(), c))
                })
            })?;
            slot.take()?
        };
        pr_warn!(
            "{}: removed from the bus while attached ({} mappings left): detached\n",
            dma_ops::device_name(inst.device()),
            inst.data().mappings()
        );
        match inst.uninstall() {
            Ok(()) => Some(Ok(())),
            Err((inst, e)) => {
                // Only a bound driver refuses, and a removed device has none: kept as it was.
                if let Some(s) = self.devices.lock().iter_mut().find(|s| s.is_none()) {
                    *s = Some(inst);
                }
                Some(Err(e))
            }
        }
    }

    /// Runs `f` on each attached device.
    pub fn for_each(&self, mut f: impl FnMut(&Installed<Attached>)) {
        for inst in self.devices.lock().iter().flatten() {
            f(inst);
        }
    }

    /// Runs `f` on the attached device `dev`, if it is attached.
    pub fn with_attached<R>(&self, dev: &Device, f: impl FnOnce(&Attached) -> R) -> Option<R> {
        let devices = self.devices.lock();
        let inst = devices
            .iter()
            .flatten()
            .find(|i| core::ptr::eq(i.device(), dev))?;
        Some(f(inst.data()))
    }

    /// Number of attached devices.
    pub fn attached(&self) -> usize {
        self.devices.lock().iter().flatten().count()
    }
}
