// SPDX-License-Identifier: GPL-2.0

//! A deliberately simple reference model of the allocator's contract.
//!
//! It knows nothing about runs, segments summaries or areas: it keeps one
//! owner per slot and checks each answer of the real allocator against the
//! rules stated in `slots.rs` (address-based, written independently), and,
//! when the allocator says "no space", searches every slot of every pool by
//! brute force for a placement that would have been admissible.

use std::collections::BTreeMap;

use xendma_logic::slots::{
    MapError, MapRequest, PoolConfig, Released, SlotMapping, StatsSnapshot, SyncRange, UnmapError,
};

#[derive(Clone, Copy, Debug)]
pub struct Geo {
    pub base: u64,
    pub nslabs: usize,
    pub slot_shift: u32,
    pub seg: usize,
    pub page_shift: u32,
}

impl Geo {
    pub fn from_cfg(cfg: &PoolConfig) -> Self {
        Self {
            base: cfg.base,
            nslabs: cfg.nslabs,
            slot_shift: cfg.slot_shift,
            seg: cfg.segment_slots,
            page_shift: cfg.page_shift,
        }
    }

    pub fn slot(&self) -> u64 {
        1 << self.slot_shift
    }

    pub fn end(&self) -> u64 {
        self.base + self.nslabs as u64 * self.slot()
    }

    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.end()
    }
}

#[derive(Clone, Debug)]
pub struct Live {
    pub pool: usize,
    pub addr: u64,
    pub orig: u64,
    pub size: usize,
    pub first: usize,
    pub nslots: usize,
    pub pad: usize,
}

/// Shape of a request on one pool: (slots, padding slots, data offset in
/// the block, block bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub nslots: usize,
    pub pad: usize,
    pub offset: u64,
    pub bytes: u64,
}

fn low_mask(m: u64) -> bool {
    m & m.wrapping_add(1) == 0
}

#[derive(Default)]
pub struct Model {
    pub geos: Vec<Geo>,
    /// Owner id per slot per pool; 0 = free.
    pub owner: Vec<Vec<u64>>,
    pub live: BTreeMap<u64, Live>,
    pub next_id: u64,
    pub used: usize,
    pub high: usize,
    pub failed: u64,
    /// Recently freed (addr, size), for double-free attempts.
    pub freed: Vec<(u64, usize)>,
}

impl Model {
    pub fn new() -> Self {
        Self {
            next_id: 1,
            ..Self::default()
        }
    }

    pub fn add_pool(&mut self, cfg: &PoolConfig) {
        self.geos.push(Geo::from_cfg(cfg));
        self.owner.push(vec![0; cfg.nslabs]);
    }

    /// Errors that do not depend on any pool, in the allocator's order.
    pub fn request_error(req: &MapRequest) -> Option<MapError> {
        if req.size == 0 {
            return Some(MapError::ZeroSize);
        }
        if !low_mask(req.min_align_mask)
            || !low_mask(req.alloc_align_mask)
            || !low_mask(req.seg_boundary_mask)
        {
            return Some(MapError::BadMask);
        }
        if req.size as u64 > u32::MAX as u64 {
            return Some(MapError::TooLarge);
        }
        if req.orig.checked_add(req.size as u64 - 1).is_none() {
            return Some(MapError::BadRange);
        }
        None
    }

    /// The block a request needs on a pool, or `None` if it can never fit.
    pub fn shape(g: &Geo, req: &MapRequest) -> Option<Shape> {
        let slot = g.slot();
        let offset = req.orig & req.min_align_mask & (req.alloc_align_mask | (slot - 1));
        let unit = req.alloc_align_mask.checked_add(1)?;
        let raw = (req.size as u64).checked_add(offset)?;
        let bytes = raw.checked_next_multiple_of(unit)?;
        let nslots = bytes.div_ceil(slot) as usize;
        if nslots > g.seg.min(g.nslabs) {
            return None;
        }
        if req.seg_boundary_mask != u64::MAX {
            let period = (req.seg_boundary_mask >> g.slot_shift) + 1;
            if nslots as u64 > period {
                return None;
            }
        }
        Some(Shape {
            nslots,
            pad: (offset / slot) as usize,
            offset,
            bytes,
        })
    }

    /// Whether a block for `req` may start at slot `start` of pool `p`
    /// (ignoring occupancy when `ignore_owner`).
    pub fn admissible(&self, p: usize, req: &MapRequest, start: usize, ignore_owner: bool) -> bool {
        let g = &self.geos[p];
        let Some(sh) = Self::shape(g, req) else {
            return false;
        };
        let n = sh.nslots;
        if start + n > g.nslabs {
            return false;
        }
        if start / g.seg != (start + n - 1) / g.seg {
            return false;
        }
        let slot = g.slot();
        let a = g.base + start as u64 * slot;
        let mut align = req.alloc_align_mask | (slot - 1);
        let page = 1u64 << g.page_shift;
        if req.alloc_align_mask == 0 && req.min_align_mask == 0 && sh.bytes >= page {
            align |= page - 1;
        }
        if a & align != 0 {
            return false;
        }
        if (a + sh.offset) & req.min_align_mask != req.orig & req.min_align_mask {
            return false;
        }
        if req.seg_boundary_mask != u64::MAX {
            let period = (req.seg_boundary_mask >> g.slot_shift) + 1;
            let s = (g.base >> g.slot_shift) + start as u64;
            if s / period != (s + n as u64 - 1) / period {
                return false;
            }
        }
        ignore_owner || self.owner[p][start..start + n].iter().all(|&o| o == 0)
    }

    pub fn fits_in_pool(&self, p: usize, req: &MapRequest) -> bool {
        (0..self.geos[p].nslabs).any(|s| self.admissible(p, req, s, false))
    }

    /// Checks the result of `map(req)` and records it.
    pub fn on_map(
        &mut self,
        req: &MapRequest,
        res: &Result<SlotMapping, MapError>,
    ) -> Result<(), String> {
        let pre = if self.geos.is_empty() {
            Some(MapError::NoSpace)
        } else {
            Self::request_error(req)
        };
        let any_shape = self.geos.iter().any(|g| Self::shape(g, req).is_some());
        match res {
            Err(e) => {
                let want = match pre {
                    Some(w) => w,
                    None if !any_shape => MapError::TooLarge,
                    None => MapError::NoSpace,
                };
                if *e != want {
                    return Err(format!("map {req:x?}: got {e:?}, model says {want:?}"));
                }
                if *e == MapError::NoSpace {
                    for p in 0..self.geos.len() {
                        if let Some(s) =
                            (0..self.geos[p].nslabs).find(|&s| self.admissible(p, req, s, false))
                        {
                            return Err(format!(
                                "map {req:x?}: NoSpace but slot {s} of pool {p} fits"
                            ));
                        }
                    }
                }
                if matches!(e, MapError::NoSpace | MapError::TooLarge) {
                    self.failed += 1;
                }
                Ok(())
            }
            Ok(m) => {
                if let Some(w) = pre {
                    return Err(format!("map {req:x?}: got {m:?}, model says {w:?}"));
                }
                let p = m.pool;
                if p >= self.geos.len() {
                    return Err(format!("map: bad pool {p}"));
                }
                for q in 0..p {
                    if self.fits_in_pool(q, req) {
                        return Err(format!("map {req:x?}: used pool {p} but pool {q} fits"));
                    }
                }
                let g = self.geos[p];
                let sh = Self::shape(&g, req).ok_or("mapped a request that cannot fit")?;
                let b = &m.block;
                if b.nslots != sh.nslots || b.pad_slots != sh.pad {
                    return Err(format!("map {req:x?}: block {b:?}, model {sh:?}"));
                }
                let a = g.base + b.first_slot as u64 * g.slot();
                if b.addr != a + sh.offset {
                    return Err(format!(
                        "map {req:x?}: addr {:#x}, block at {a:#x}, {sh:?}",
                        b.addr
                    ));
                }
                if b.addr & req.min_align_mask != req.orig & req.min_align_mask {
                    return Err(format!(
                        "map {req:x?}: min_align bits lost at {:#x}",
                        b.addr
                    ));
                }
                if !self.admissible(p, req, b.first_slot, false) {
                    return Err(format!(
                        "map {req:x?}: inadmissible or overlapping block {b:?} (owners {:?})",
                        &self.owner[p][b.first_slot..(b.first_slot + b.nslots).min(g.nslabs)]
                    ));
                }
                let id = self.next_id;
                self.next_id += 1;
                for o in &mut self.owner[p][b.first_slot..b.first_slot + b.nslots] {
                    *o = id;
                }
                self.live.insert(
                    id,
                    Live {
                        pool: p,
                        addr: b.addr,
                        orig: req.orig,
                        size: req.size,
                        first: b.first_slot,
                        nslots: b.nslots,
                        pad: b.pad_slots,
                    },
                );
                self.used += b.nslots;
                self.high = self.high.max(self.used);
                Ok(())
            }
        }
    }

    /// The live mapping covering `addr`, with its id, and the slot index.
    fn covering(&self, addr: u64) -> Result<(usize, usize, u64), UnmapError> {
        let p = self
            .geos
            .iter()
            .position(|g| g.contains(addr))
            .ok_or(UnmapError::NotBounceAddress)?;
        let g = &self.geos[p];
        let idx = ((addr - g.base) >> g.slot_shift) as usize;
        Ok((p, idx, self.owner[p][idx]))
    }

    pub fn predict_unmap(&self, addr: u64, size: usize) -> Result<u64, UnmapError> {
        let (_, idx, id) = self.covering(addr)?;
        let l = self.live.get(&id).ok_or(UnmapError::NotMapped)?;
        if addr == l.addr {
            if size == l.size {
                Ok(id)
            } else {
                Err(UnmapError::SizeMismatch {
                    mapped: l.size,
                    given: size,
                })
            }
        } else if idx < l.first + l.pad {
            Err(UnmapError::NotMapped)
        } else {
            Err(UnmapError::NotMappingStart)
        }
    }

    pub fn on_unmap(
        &mut self,
        addr: u64,
        size: usize,
        res: &Result<Released, UnmapError>,
    ) -> Result<(), String> {
        let want = self.predict_unmap(addr, size);
        match (want, res) {
            (Ok(id), Ok(r)) => {
                let l = self.live.remove(&id).unwrap();
                if r.orig != l.orig || r.size != l.size || r.nslots != l.nslots {
                    return Err(format!("unmap {addr:#x}: released {r:?}, model {l:?}"));
                }
                for o in &mut self.owner[l.pool][l.first..l.first + l.nslots] {
                    *o = 0;
                }
                self.used -= l.nslots;
                self.freed.push((addr, size));
                if self.freed.len() > 16 {
                    self.freed.remove(0);
                }
                Ok(())
            }
            (Err(w), Err(e)) if w == *e => Ok(()),
            (w, r) => Err(format!(
                "unmap {addr:#x}/{size}: got {r:?}, model says {w:?}"
            )),
        }
    }

    pub fn predict_lookup(
        &self,
        addr: u64,
        len: usize,
    ) -> Result<(u64, usize, bool, usize), UnmapError> {
        let (_, idx, id) = self.covering(addr)?;
        let l = self.live.get(&id).ok_or(UnmapError::NotMapped)?;
        if idx < l.first + l.pad || addr < l.addr || addr - l.addr >= l.size as u64 {
            return Err(UnmapError::NotMapped);
        }
        let d = (addr - l.addr) as usize;
        let avail = l.size - d;
        Ok((l.orig + d as u64, len.min(avail), len > avail, d))
    }

    pub fn on_lookup(
        &self,
        addr: u64,
        len: usize,
        res: &Result<SyncRange, UnmapError>,
    ) -> Result<(), String> {
        let want = self.predict_lookup(addr, len);
        let ok = match (&want, res) {
            (Ok((o, l, t, d)), Ok(r)) => {
                r.orig == *o
                    && r.len == *l
                    && r.truncated == *t
                    && r.offset_in_mapping == *d
                    && r.bounce == addr
            }
            (Err(w), Err(e)) => w == e,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "lookup {addr:#x}/{len}: got {res:?}, model says {want:?}"
            ))
        }
    }

    pub fn check_stats(&self, s: &StatsSnapshot) -> Result<(), String> {
        if s.used_slots != self.used || s.high_water != self.high || s.failed_allocs != self.failed
        {
            return Err(format!(
                "stats {s:?}, model used {} high {} failed {}",
                self.used, self.high, self.failed
            ));
        }
        Ok(())
    }

    /// Some live mapping, chosen by `pick`.
    pub fn pick(&self, pick: usize) -> Option<Live> {
        if self.live.is_empty() {
            return None;
        }
        self.live.values().nth(pick % self.live.len()).cloned()
    }
}
