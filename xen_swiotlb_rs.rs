// SPDX-License-Identifier: GPL-2.0

//! xen_swiotlb_rs: DMA bounce buffering through machine-contiguous memory for Xen PV guests.
//!
//! A `dma_map_ops` table, attachable to chosen devices at run time, that bounces DMA through a
//! pool of machine-contiguous frames obtained from Xen with `XENMEM_exchange` (identity frames
//! when not under Xen).
//!
//! The pool comes from the page allocator below `2^dma_bits`, in chunks of up to 4 MiB; each
//! chunk is a pool of the slot allocator in `logic/slots.rs`, with one irq-saving lock per
//! area. Devices are put on the ops table at load (`attach=`) or at run time (debugfs
//! `attach`/`detach`); their driver is unbound first and re-probed afterwards. See
//! `Documentation/xen-swiotlb-rs.rst`.

use kernel::prelude::*;

pub mod dma_api;
pub mod ffi;

/// The bounce pool's kernel-independent core, the same files the host crate tests.
pub mod logic {
    #[path = "bounce.rs"]
    pub mod bounce;
    #[path = "pciname.rs"]
    pub mod pciname;
    #[path = "slots.rs"]
    pub mod slots;
    #[path = "xlate.rs"]
    pub mod xlate;
}

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/xen_swiotlb_rs_kunit.rs"]
mod kunit_tests;

/// The `edu` test device driver (test builds only).
#[cfg(xendma_kunit)]
#[path = "selftests/edu/edu.rs"]
pub mod edu;

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/dma_api_kunit.rs"]
mod dma_api_kunit;

#[cfg(xendma_kunit)]
#[path = "selftests/kunit/swiotlb_ops_kunit.rs"]
mod swiotlb_ops_kunit;

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use dma_api::{Attrs, Gfp, Pages, Zone, MAX_ORDER};
use ffi::bounce::BouncePool;
use ffi::debugfs::{Debugfs, Out, Source};
use ffi::dma_ops::{self, CallerBuf, DmaOps, Installed};
use ffi::xen::Domain;
use kernel::device::Device;
use kernel::sync::{new_mutex, Arc, Mutex};
use kernel::{c_str, str::CStr};
use logic::bounce::{self as policy, dma_bit_mask, fls64, Direction, DmaLimits, MapDecision};
use logic::pciname::{self, PciName};
use logic::slots::UnmapError;
use logic::xlate::{self, IdentityMap};

module! {
    type: XenSwiotlbRs,
    name: "xen_swiotlb_rs",
    author: "The xendma authors",
    description: "Xen swiotlb DMA bouncing through machine-contiguous frames",
    license: "GPL",
}

/// Smallest chunk the pool falls back to: one segment of 128 slots of 2 KiB.
const MIN_CHUNK_ORDER: u32 = 6;

/// What a pool is built from.
#[derive(Clone, Copy, Debug)]
pub struct PoolParams {
    /// Bytes asked for.
    pub bytes: usize,
    /// The pool must lie below `2^dma_bits`.
    pub dma_bits: u32,
}

/// Where the force-bounce switch is read.
enum Force {
    /// The `force_bounce` module parameter (writable at run time).
    Param,
    /// A switch of its own (test pools).
    Own(AtomicBool),
}

/// The pool and its counters, shared by the devices attached to it.
pub struct Engine {
    pool: BouncePool,
    force: Force,
    bounces: AtomicU64,
    map_failures: AtomicU64,
    warnings: AtomicU64,
    unknown: AtomicU64,
    warned_unknown: AtomicBool,
}

/// Allocates `params.bytes` of pool memory in chunks of at most `2^MAX_ORDER` pages, all below
/// `2^dma_bits`, falling back to smaller chunks when big ones run out.
fn alloc_chunks(params: PoolParams) -> Result<KVec<Pages>> {
    let limit = if params.dma_bits >= 64 {
        u64::MAX
    } else {
        dma_bit_mask(params.dma_bits)
    };
    let zone = match params.dma_bits {
        0..=11 => return Err(EINVAL),
        12..=24 => Zone::Dma,
        25..=32 => Zone::Dma32,
        _ => Zone::Any,
    };
    let mut chunks = KVec::new();
    let mut left = params.bytes;
    let mut order = MAX_ORDER;
    let mut fell_back = false;
    while left > 0 {
        while order > MIN_CHUNK_ORDER && (dma_api::PAGE_SIZE << order) > left {
            order -= 1;
        }
        let got = Pages::alloc_gfp(order, zone, Gfp::KERNEL)
            .ok()
            .filter(|p| p.phys() + (p.len() as u64 - 1) <= limit);
        match got {
            Some(p) => {
                left = left.saturating_sub(p.len());
                chunks.push(p, GFP_KERNEL)?;
            }
            None if order > MIN_CHUNK_ORDER => {
                order -= 1;
                fell_back = true;
            }
            None => break,
        }
    }
    let got: usize = chunks.iter().map(|c| c.len()).sum();
    if fell_back || left > 0 {
        pr_warn!(
            "pool: {} KiB of the {} KiB asked for below 2^{} ({} chunks; 4 MiB blocks ran out{})\n",
            got >> 10,
            params.bytes >> 10,
            params.dma_bits,
            chunks.len(),
            if left > 0 { ", memory ran out" } else { "" }
        );
    }
    if chunks.is_empty() {
        pr_err!("pool: no memory below 2^{}\n", params.dma_bits);
        return Err(ENOMEM);
    }
    Ok(chunks)
}

impl Engine {
    /// Builds a pool. `force` gives the pool a force-bounce switch of its own; `None` follows
    /// the `force_bounce` module parameter.
    pub fn new(params: PoolParams, force: Option<bool>) -> Result<Arc<Self>> {
        let chunks = alloc_chunks(params)?;
        let pool = BouncePool::new(chunks, ffi::possible_cpus())?;
        Ok(Arc::new(
            Self {
                pool,
                force: match force {
                    Some(f) => Force::Own(AtomicBool::new(f)),
                    None => Force::Param,
                },
                bounces: AtomicU64::new(0),
                map_failures: AtomicU64::new(0),
                warnings: AtomicU64::new(0),
                unknown: AtomicU64::new(0),
                warned_unknown: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?)
    }

    fn forced(&self) -> bool {
        match &self.force {
            Force::Param => ffi::params::force_bounce(),
            Force::Own(f) => f.load(Ordering::Relaxed),
        }
    }

    /// Sets the pool's own force-bounce switch (no effect on a pool following the parameter).
    pub fn set_forced(&self, on: bool) {
        if let Force::Own(f) = &self.force {
            f.store(on, Ordering::Relaxed);
        }
    }

    /// The pool.
    pub fn pool(&self) -> &BouncePool {
        &self.pool
    }

    /// Counters: (bounces, map failures, exhaustion warnings printed, unknown unmaps/syncs).
    pub fn counters(&self) -> (u64, u64, u64, u64) {
        (
            self.bounces.load(Ordering::Relaxed),
            self.map_failures.load(Ordering::Relaxed),
            self.warnings.load(Ordering::Relaxed),
            self.unknown.load(Ordering::Relaxed),
        )
    }

    /// A mapping failed: count it and, unless `quiet`, say why (rate-limited).
    fn fail(&self, dev: &Device, size: usize, why: &dyn core::fmt::Display, quiet: bool) {
        self.map_failures.fetch_add(1, Ordering::Relaxed);
        if quiet || !ffi::warn_ratelimit() {
            return;
        }
        self.warnings.fetch_add(1, Ordering::Relaxed);
        pr_warn!(
            "{}: cannot map {} bytes: {} ({} of {} slots in use)\n",
            dma_ops::device_name(dev),
            size,
            why,
            self.pool.stats().snapshot().used_slots,
            self.pool.nslabs()
        );
    }

    /// An unmap or sync named an address we did not hand out: warn once, change nothing.
    fn unknown(&self, dev: &Device, what: &str, dma: u64, size: usize) {
        self.unknown.fetch_add(1, Ordering::Relaxed);
        if !self.warned_unknown.swap(true, Ordering::Relaxed) {
            pr_warn!(
                "{}: {} of {} bytes at {:#x}, which was not mapped by us: ignored\n",
                dma_ops::device_name(dev),
                what,
                size,
                dma
            );
        }
    }

    fn limits(dev: &Device) -> DmaLimits {
        let (mask, bus_limit) = dma_ops::dma_limits(dev);
        DmaLimits::new(mask).with_bus_limit(bus_limit)
    }
}

/// A device on our ops: its pool and its own counters.
pub struct Attached {
    engine: Arc<Engine>,
    mappings: AtomicUsize,
    bounces: AtomicU64,
    _module: Option<ffi::ModuleRef>,
}

impl Attached {
    /// Mappings and coherent allocations not yet undone.
    pub fn mappings(&self) -> usize {
        self.mappings.load(Ordering::Relaxed)
    }

    /// Mappings that were bounced.
    pub fn bounces(&self) -> u64 {
        self.bounces.load(Ordering::Relaxed)
    }

    /// Counts one mapping undone; false if there was none to undo (a bogus unmap).
    fn put_mapping(&self) -> bool {
        self.mappings
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl DmaOps for Attached {
    fn map_page(&self, dev: &Device, buf: CallerBuf, _dir: Direction, attrs: Attrs) -> Option<u64> {
        let e = &*self.engine;
        let limits = Engine::limits(dev);
        let quiet = attrs.contains(Attrs::NO_WARN);
        match policy::decide_map(
            &IdentityMap,
            &limits,
            buf.phys(),
            buf.len(),
            e.forced(),
            false,
        ) {
            MapDecision::Direct(bus) => {
                self.mappings.fetch_add(1, Ordering::Relaxed);
                Some(bus)
            }
            MapDecision::Bounce(_) => {
                let (min_align, boundary) = dma_ops::align_masks(dev);
                let phys = match e.pool.map(&buf, min_align, boundary) {
                    Ok(phys) => phys,
                    Err(err) => {
                        e.fail(dev, buf.len(), &err, quiet);
                        return None;
                    }
                };
                let Some(bus) = policy::check_bounced(&IdentityMap, &limits, phys, buf.len())
                else {
                    // The pool is beyond this device's mask (dma_supported should have refused).
                    let _ = e.pool.unmap(phys, buf.len(), false);
                    e.fail(dev, buf.len(), &"bounce buffer beyond the DMA mask", quiet);
                    return None;
                };
                self.mappings.fetch_add(1, Ordering::Relaxed);
                self.bounces.fetch_add(1, Ordering::Relaxed);
                e.bounces.fetch_add(1, Ordering::Relaxed);
                Some(bus)
            }
        }
    }

    fn unmap_page(&self, dev: &Device, dma: u64, size: usize, dir: Direction, attrs: Attrs) {
        let e = &*self.engine;
        let copy = dir.copy_on_unmap(attrs.contains(Attrs::SKIP_CPU_SYNC));
        // The pool finds the address itself: one lookup, whether it is a bounce buffer or not.
        let known = match xlate::bus_to_phys(&IdentityMap, dma).map(|p| e.pool.unmap(p, size, copy))
        {
            Some(Ok(_)) | Some(Err(UnmapError::NotBounceAddress)) | None => self.put_mapping(),
            Some(Err(_)) => false,
        };
        if !known {
            e.unknown(dev, "unmap", dma, size);
        }
    }

    fn sync_for_cpu(&self, dev: &Device, dma: u64, size: usize, dir: Direction) {
        self.sync(dev, dma, size, dir.copy_for_cpu(), true);
    }

    fn sync_for_device(&self, dev: &Device, dma: u64, size: usize, dir: Direction) {
        self.sync(dev, dma, size, dir.copy_for_device(), false);
    }

    fn alloc(&self, dev: &Device, order: u32, gfp: Gfp, _attrs: Attrs) -> Option<(Pages, u64)> {
        let mask = dma_ops::coherent_mask(dev);
        let zones: &[Zone] = if mask >= dma_bit_mask(32) {
            &[Zone::Any, Zone::Dma32, Zone::Dma]
        } else if mask >= dma_bit_mask(24) {
            &[Zone::Dma32, Zone::Dma]
        } else {
            &[Zone::Dma]
        };
        for &zone in zones {
            let Ok(pages) = Pages::alloc_gfp(order, zone, gfp) else {
                continue;
            };
            let decision = policy::decide_coherent(
                &IdentityMap,
                mask,
                pages.phys(),
                pages.len(),
                kernel::page::PAGE_SHIFT as u32,
            );
            if let Some(policy::CoherentDecision::Direct { dma }) = decision {
                self.mappings.fetch_add(1, Ordering::Relaxed);
                return Some((pages, dma));
            }
        }
        None
    }

    fn free(&self, dev: &Device, pages: Pages, dma: u64) {
        if !self.put_mapping() {
            self.engine.unknown(dev, "free", dma, pages.len());
        }
    }

    fn dma_supported(&self, _dev: &Device, mask: u64) -> bool {
        policy::dma_supported(&IdentityMap, self.engine.pool.last_phys(), mask)
    }

    fn max_mapping_size(&self, dev: &Device) -> usize {
        self.engine
            .pool
            .max_mapping_size(dma_ops::align_masks(dev).0)
    }

    fn required_mask(&self, _dev: &Device) -> u64 {
        dma_bit_mask(fls64(ffi::ram_end()))
    }
}

impl Attached {
    fn sync(&self, dev: &Device, dma: u64, size: usize, copy: bool, to_cpu: bool) {
        let e = &*self.engine;
        if !copy {
            return;
        }
        // Not a bounce address: a direct mapping, and x86 is cache-coherent, nothing to do.
        match xlate::bus_to_phys(&IdentityMap, dma).map(|p| e.pool.sync(p, size, to_cpu)) {
            Some(Ok(_)) | Some(Err(UnmapError::NotBounceAddress)) | None => {}
            Some(Err(_)) => e.unknown(dev, "sync", dma, size),
        }
    }
}

/// The devices on one pool's ops, and how to attach and detach them.
#[pin_data]
pub struct Swiotlb {
    engine: Arc<Engine>,
    #[pin]
    devices: Mutex<KVec<Option<Pin<KBox<Installed<Attached>>>>>>,
    module: Option<&'static ThisModule>,
}

/// Turns a user's device name into the device.
fn find_device(name: &[u8]) -> Result<(PciName, ARef<Device>)> {
    let n = PciName::parse(name).map_err(|_| EINVAL)?;
    let bytes = n.to_cstr_bytes();
    let cname = CStr::from_bytes_with_nul(&bytes).map_err(|_| EINVAL)?;
    let dev = dma_ops::pci_device(cname).ok_or(ENODEV)?;
    Ok((n, dev))
}

use kernel::types::ARef;

impl Swiotlb {
    /// Devices attached to `engine`; each pins `module` (if any) while attached.
    pub fn new(engine: Arc<Engine>, module: Option<&'static ThisModule>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
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
    /// `EOPNOTSUPP` under Xen PV (the pool is not machine-contiguous yet), `EBUSY` if a driver
    /// bound itself in between.
    pub fn attach(&self, name: &[u8]) -> Result {
        let (n, dev) = find_device(name)?;
        if matches!(Domain::current(), Domain::Pv { .. }) {
            pr_warn!(
                "{}: not attached: Xen PV needs a machine-contiguous pool\n",
                n
            );
            return Err(Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32)));
        }
        let module = match self.module {
            Some(m) => Some(ffi::ModuleRef::get(m).ok_or(ENODEV)?),
            None => None,
        };
        {
            let mut devices = self.devices.lock();
            if devices
                .iter()
                .flatten()
                .any(|i| core::ptr::eq(i.device(), &*dev))
            {
                return Err(EEXIST);
            }
            let had_driver = dma_ops::has_driver(&dev);
            dma_ops::release_driver(&dev);
            let data = Attached {
                engine: self.engine.clone(),
                mappings: AtomicUsize::new(0),
                bounces: AtomicU64::new(0),
                _module: module,
            };
            let inst = match Installed::new(&dev, data) {
                Ok(inst) => inst,
                Err(e) => {
                    drop(devices);
                    if had_driver {
                        let _ = dma_ops::reprobe(&dev);
                    }
                    return Err(e);
                }
            };
            match devices.iter_mut().find(|s| s.is_none()) {
                Some(slot) => *slot = Some(inst),
                None => devices.push(Some(inst), GFP_KERNEL)?,
            }
        }
        let bound = dma_ops::reprobe(&dev);
        pr_info!(
            "{}: attached ({})\n",
            n,
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
        let (n, dev) = find_device(name)?;
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
                pr_warn!("{}: not detached: {} mappings still outstanding\n", n, left);
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
            pr_info!("{}: detached\n", n);
        }
        result
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

/// The debugfs files, by id.
const FILES: &[(&CStr, u16, u32)] = &[
    (c_str!("pool_bytes"), 0o444, 0),
    (c_str!("nslabs"), 0o444, 1),
    (c_str!("used_slots"), 0o444, 2),
    (c_str!("used_hiwater"), 0o644, 3),
    (c_str!("bounces"), 0o444, 4),
    (c_str!("bounced_bytes"), 0o444, 5),
    (c_str!("map_failures"), 0o444, 6),
    (c_str!("attached"), 0o444, 7),
    (c_str!("devices"), 0o444, 8),
    (c_str!("attach"), 0o200, 9),
    (c_str!("detach"), 0o200, 10),
    (c_str!("chunks"), 0o444, 11),
];

impl Source for Swiotlb {
    fn show(&self, id: u32, out: &mut Out<'_>) -> core::fmt::Result {
        let e = &*self.engine;
        let st = e.pool.stats().snapshot();
        match id {
            0 => writeln!(out, "{}", e.pool.bytes()),
            1 => writeln!(out, "{}", e.pool.nslabs()),
            2 => writeln!(out, "{}", st.used_slots),
            3 => writeln!(out, "{}", st.high_water),
            4 => writeln!(out, "{}", e.bounces.load(Ordering::Relaxed)),
            5 => writeln!(out, "{}", st.bounced_bytes),
            6 => writeln!(out, "{}", e.map_failures.load(Ordering::Relaxed)),
            7 => writeln!(out, "{}", self.attached()),
            8 => {
                let mut r = Ok(());
                self.for_each(|i| {
                    r = r.and(writeln!(
                        out,
                        "{} mappings={} bounces={}",
                        dma_ops::device_name(i.device()),
                        i.data().mappings(),
                        i.data().bounces()
                    ));
                });
                r
            }
            11 => {
                for c in 0..e.pool.chunk_count() {
                    if let Some((first, last)) = e.pool.chunk_range(c) {
                        writeln!(out, "{:#x}-{:#x}", first, last)?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn store(&self, id: u32, input: &[u8]) -> Result {
        match id {
            3 => {
                self.engine.pool.stats().reset_high_water();
                Ok(())
            }
            9 => self.attach(input),
            10 => self.detach(input),
            _ => Err(EINVAL),
        }
    }
}

struct XenSwiotlbRs {
    domain: Domain,
    _debugfs: Debugfs<Swiotlb>,
    /// Test builds: `/dev/xendma_edu` for the user-space tests.
    #[cfg(xendma_kunit)]
    _edu: ffi::misc::MiscRegistration<edu::EduMisc>,
}

impl kernel::Module for XenSwiotlbRs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let domain = Domain::current();
        match ffi::xen::version() {
            Some((major, minor)) => {
                pr_info!("loaded: domain {:?}, Xen {}.{}\n", domain, major, minor)
            }
            None => pr_info!(
                "loaded: domain {:?} (not under Xen: identity frames)\n",
                domain
            ),
        }
        let params = PoolParams {
            bytes: (ffi::params::pool_mb() as usize) << 20,
            dma_bits: ffi::params::dma_bits(),
        };
        let engine = Engine::new(params, None)?;
        pr_info!(
            "pool: {} MiB in {} chunks, {} slots, highest byte {:#x}\n",
            engine.pool.bytes() >> 20,
            engine.pool.chunk_count(),
            engine.pool.nslabs(),
            engine.pool.last_phys()
        );
        let sw = Swiotlb::new(engine, Some(module))?;
        let mut debugfs = Debugfs::new(c_str!("xen_swiotlb_rs"), sw.clone())?;
        for &(name, mode, id) in FILES {
            debugfs.add(name, mode, id)?;
        }
        for name in pciname::list(ffi::params::attach().as_bytes()) {
            if let Err(e) = sw.attach(name) {
                pr_err!("attach at load failed ({:?})\n", e);
            }
        }
        Ok(Self {
            domain,
            _debugfs: debugfs,
            #[cfg(xendma_kunit)]
            _edu: ffi::misc::MiscRegistration::new(edu::EduMisc, module)?,
        })
    }
}

impl Drop for XenSwiotlbRs {
    fn drop(&mut self) {
        pr_info!("unloaded (domain {:?})\n", self.domain);
    }
}
