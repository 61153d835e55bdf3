// SPDX-License-Identifier: GPL-2.0

//! Runs operations on a [`HostSet`] and the [`Model`] side by side.

use xendma_logic::slots::{self, MapRequest, PoolConfig, PoolSet};

use super::hostset::HostSet;
use super::model::Model;

/// Mask with the low `bits` bits set; `BAD_MASK_BITS` gives an invalid mask.
pub const BAD_MASK_BITS: u32 = 99;

pub fn mask(bits: u32) -> u64 {
    match bits {
        0 => 0,
        BAD_MASK_BITS => 0x5,
        b if b >= 64 => u64::MAX,
        b => (1u64 << b) - 1,
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    Map {
        cpu: usize,
        orig: u64,
        size: usize,
        min_bits: u32,
        align_bits: u32,
        boundary_bits: Option<u32>,
    },
    Unmap {
        pick: usize,
    },
    BadUnmap {
        pick: usize,
        how: u8,
        delta: u64,
    },
    Lookup {
        pick: usize,
        off: usize,
        len: usize,
    },
    Grow {
        nslabs: usize,
        cpus: usize,
        seg: usize,
    },
}

pub struct Harness {
    pub set: HostSet,
    pub model: Model,
    pub cfgs: Vec<PoolConfig>,
    pub maps_ok: usize,
    pub maps_failed: usize,
}

impl Harness {
    pub fn new(cfg: PoolConfig, capacity: usize) -> Result<Self, String> {
        let set = HostSet::with_pool(&cfg, capacity).map_err(|e| format!("{e:?}"))?;
        let mut model = Model::new();
        model.add_pool(&cfg);
        Ok(Self {
            set,
            model,
            cfgs: vec![cfg],
            maps_ok: 0,
            maps_failed: 0,
        })
    }

    pub fn op(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Map {
                cpu,
                orig,
                size,
                min_bits,
                align_bits,
                boundary_bits,
            } => {
                let req = MapRequest::new(orig, size)
                    .with_min_align_mask(mask(min_bits))
                    .with_alloc_align_mask(mask(align_bits))
                    .with_seg_boundary_mask(boundary_bits.map_or(u64::MAX, mask));
                let res = slots::map(&self.set, cpu, &req);
                if res.is_ok() {
                    self.maps_ok += 1;
                } else {
                    self.maps_failed += 1;
                }
                self.model.on_map(&req, &res)?;
            }
            Op::Unmap { pick } => {
                if let Some(l) = self.model.pick(pick) {
                    // Real callers look up (and copy back) before freeing.
                    let r = slots::lookup(&self.set, l.addr, l.size);
                    self.model.on_lookup(l.addr, l.size, &r)?;
                    let res = slots::unmap(&self.set, l.addr, l.size);
                    self.model.on_unmap(l.addr, l.size, &res)?;
                }
            }
            Op::BadUnmap { pick, how, delta } => {
                let (addr, size) = match (how % 4, self.model.pick(pick)) {
                    (0, Some(l)) => (
                        l.addr,
                        if l.size > 1 && delta % 2 == 0 {
                            l.size - 1
                        } else {
                            l.size + 1
                        },
                    ),
                    (1, Some(l)) => {
                        let span = (l.nslots as u64) << self.model.geos[l.pool].slot_shift;
                        let start = l.addr
                            - (l.addr & (self.model.geos[l.pool].slot() - 1))
                            - ((l.pad as u64) << self.model.geos[l.pool].slot_shift);
                        (start + delta % span, l.size)
                    }
                    (3, _) if !self.model.freed.is_empty() => {
                        let (a, s) = self.model.freed[(delta as usize) % self.model.freed.len()];
                        (a, s)
                    }
                    _ => {
                        let g = self.model.geos[(pick) % self.model.geos.len()];
                        let span = g.end() - g.base;
                        // Mostly inside a pool, sometimes just outside.
                        (
                            g.base
                                .wrapping_add(delta % (span + 8192))
                                .wrapping_sub(4096),
                            1 + (delta as usize % 5000),
                        )
                    }
                };
                let res = slots::unmap(&self.set, addr, size);
                self.model.on_unmap(addr, size, &res)?;
            }
            Op::Lookup { pick, off, len } => {
                if let Some(l) = self.model.pick(pick) {
                    let addr = l.addr.wrapping_add((off % (l.size + 64)) as u64);
                    let r = slots::lookup(&self.set, addr, len);
                    self.model.on_lookup(addr, len, &r)?;
                }
            }
            Op::Grow { nslabs, cpus, seg } => {
                let last = self.cfgs.last().copied().ok_or("no pools")?;
                let g = self.model.geos.last().copied().ok_or("no pools")?;
                let page = 1u64 << last.page_shift;
                let base = (g.end() + 3 * page).next_multiple_of(page);
                let cfg = PoolConfig::new(base, nslabs.max(1))
                    .with_cpus(cpus)
                    .with_segment_slots(seg.max(1))
                    .with_slot_shift(last.slot_shift)
                    .with_page_shift(last.page_shift);
                if self.set.add_pool(&cfg).is_ok() {
                    self.model.add_pool(&cfg);
                    self.cfgs.push(cfg);
                }
            }
        }
        self.model.check_stats(&self.set.stats().snapshot())?;
        let used = self.set.check_all()?;
        if used != self.model.used {
            return Err(format!(
                "areas hold {used} used slots, model {}",
                self.model.used
            ));
        }
        Ok(())
    }

    /// Unmaps everything left and checks that the pools are empty.
    pub fn drain(&mut self) -> Result<(), String> {
        while let Some(l) = self.model.pick(0) {
            let res = slots::unmap(&self.set, l.addr, l.size);
            self.model.on_unmap(l.addr, l.size, &res)?;
        }
        self.model.check_stats(&self.set.stats().snapshot())?;
        if self.set.check_all()? != 0 {
            return Err("slots left in use".into());
        }
        for p in 0..self.set.pool_count() {
            if slots::pool_slots_in_use(&self.set, p) != Some(0) {
                return Err(format!("pool {p} counter not zero"));
            }
        }
        Ok(())
    }
}
