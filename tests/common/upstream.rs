// SPDX-License-Identifier: GPL-2.0

//! A behavioural stand-in for upstream 6.12's slot search, written from its
//! description, for comparisons only (benchmark and pressure test): per-area
//! next-fit starting at the area's rotating `index`, per-slot free-run
//! counts (`list[]`), candidate slots stepped by the alignment stride, a
//! full linear scan of the area when nothing fits. Only the features the
//! comparisons use are modelled: no `min_align_mask`, no explicit
//! alignment, page alignment for page-sized requests.

use std::sync::Mutex;

pub struct UpArea {
    /// Free slots from here to the next used slot or segment end.
    list: Vec<u32>,
    index: usize,
    used: usize,
}

pub struct Upstream {
    pub base: u64,
    pub slot_shift: u32,
    pub seg: usize,
    pub page_shift: u32,
    pub area_nslabs: usize,
    pub areas: Vec<Mutex<UpArea>>,
}

impl Upstream {
    /// `nslabs` must be a multiple of `seg * nareas`, as upstream arranges.
    pub fn new(base: u64, nslabs: usize, nareas: usize) -> Self {
        let seg = 128;
        let area_nslabs = nslabs / nareas;
        let areas = (0..nareas)
            .map(|_| {
                Mutex::new(UpArea {
                    list: (0..area_nslabs).map(|i| (seg - i % seg) as u32).collect(),
                    index: 0,
                    used: 0,
                })
            })
            .collect();
        Self {
            base,
            slot_shift: 11,
            seg,
            page_shift: 12,
            area_nslabs,
            areas,
        }
    }

    fn search(&self, a: usize, area: &mut UpArea, size: usize) -> Option<usize> {
        let slot = 1usize << self.slot_shift;
        let nslots = size.div_ceil(slot);
        let mut align = slot - 1;
        if size >= 1 << self.page_shift {
            align |= (1 << self.page_shift) - 1;
        }
        let stride = (align >> self.slot_shift) + 1;
        if nslots > self.area_nslabs - area.used {
            return None;
        }
        let first = a * self.area_nslabs;
        let wrap = |i: usize| if i >= self.area_nslabs { 0 } else { i };
        let mut index = area.index;
        let mut checked = 0;
        while checked < self.area_nslabs {
            let addr = self.base as usize + ((first + index) << self.slot_shift);
            if addr & align != 0 {
                index = wrap(index + 1);
                checked += 1;
                continue;
            }
            if area.list[index] as usize >= nslots {
                // Take [index, index + nslots).
                for l in &mut area.list[index..index + nslots] {
                    *l = 0;
                }
                let mut count = 0;
                let mut i = index;
                while i % self.seg != 0 && area.list[i - 1] != 0 {
                    i -= 1;
                    count += 1;
                    area.list[i] = count;
                }
                area.index = wrap(index + nslots);
                area.used += nslots;
                return Some(first + index);
            }
            index = wrap(index + stride);
            checked += stride;
        }
        None
    }

    /// Allocates `size` bytes; returns (pool slot index, slots).
    pub fn alloc(&self, cpu: usize, size: usize) -> Option<(usize, usize)> {
        let n = self.areas.len();
        let nslots = size.div_ceil(1 << self.slot_shift);
        for k in 0..n {
            let a = (cpu + k) % n;
            let mut area = self.areas[a].lock().unwrap();
            if let Some(i) = self.search(a, &mut area, size) {
                return Some((i, nslots));
            }
        }
        None
    }

    pub fn free(&self, slot: usize, nslots: usize) {
        let a = slot / self.area_nslabs;
        let mut area = self.areas[a].lock().unwrap();
        let index = slot - a * self.area_nslabs;
        let end = index + nslots;
        let mut count = if end % self.seg != 0 {
            area.list[end]
        } else {
            0
        };
        for i in (index..end).rev() {
            count += 1;
            area.list[i] = count;
        }
        let mut i = index;
        while i % self.seg != 0 && area.list[i - 1] != 0 {
            i -= 1;
            count += 1;
            area.list[i] = count;
        }
        area.used -= nslots;
    }
}
