// SPDX-License-Identifier: GPL-2.0

//! Deterministic map/unmap traces for comparing allocators under pressure,
//! and replays of a trace on this crate's allocator and on the upstream
//! stand-in.

use std::collections::HashMap;

use xendma_logic::slots::{self, MapRequest, PoolConfig, PoolSet};

use super::hostset::HostSet;
use super::upstream::Upstream;

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug)]
pub enum TraceOp {
    Alloc { id: usize, size: usize, cpu: usize },
    Free { id: usize },
}

/// A mixed DMA size distribution: mostly packets, then pages, a few large
/// block-I/O buffers.
pub fn draw_size(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=59 => 64 + rng.below(1984) as usize,
        60..=84 => 4096,
        85..=94 => 8192 * (1 + rng.below(2) as usize),
        _ => 32768 * (1 + rng.below(2) as usize),
    }
}

/// A trace that keeps the live slots (requested sizes rounded up to 2 KiB
/// slots) near `target_pct` percent of `pool_bytes`, so that failures come
/// from fragmentation, not from lack of room.
pub fn trace(
    seed: u64,
    steps: usize,
    pool_bytes: usize,
    target_pct: usize,
    cpus: usize,
) -> Vec<TraceOp> {
    let mut rng = Rng(seed | 1);
    let mut live: Vec<(usize, usize)> = Vec::new();
    let mut live_bytes = 0;
    let target = pool_bytes / 100 * target_pct;
    let mut ops = Vec::with_capacity(steps);
    for id in 0..steps {
        let size = draw_size(&mut rng);
        let cost = size.div_ceil(2048) * 2048;
        if live_bytes + cost <= target || live.is_empty() {
            ops.push(TraceOp::Alloc {
                id,
                size,
                cpu: rng.below(cpus as u64) as usize,
            });
            live.push((id, cost));
            live_bytes += cost;
        } else {
            let i = rng.below(live.len() as u64) as usize;
            let (fid, fsize) = live.swap_remove(i);
            live_bytes -= fsize;
            ops.push(TraceOp::Free { id: fid });
        }
    }
    ops
}

/// Failed allocations of a replay, by size class (<= 2 KiB, 4 KiB,
/// 8-16 KiB, 32-64 KiB), and the number of allocations attempted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub attempts: usize,
    pub failed: [usize; 4],
}

impl Outcome {
    pub fn total_failed(&self) -> usize {
        self.failed.iter().sum()
    }

    fn note(&mut self, size: usize, ok: bool) {
        self.attempts += 1;
        if !ok {
            let class = match size {
                0..=2048 => 0,
                2049..=4096 => 1,
                4097..=16384 => 2,
                _ => 3,
            };
            self.failed[class] += 1;
        }
    }
}

pub fn replay_ours(set: &HostSet, ops: &[TraceOp]) -> Outcome {
    let mut held: HashMap<usize, (u64, usize)> = HashMap::new();
    let mut out = Outcome::default();
    for op in ops {
        match *op {
            TraceOp::Alloc { id, size, cpu } => {
                let r = slots::map(set, cpu, &MapRequest::new(0x1000 * id as u64, size));
                out.note(size, r.is_ok());
                if let Ok(m) = r {
                    held.insert(id, (m.addr(), size));
                }
            }
            TraceOp::Free { id } => {
                if let Some((a, s)) = held.remove(&id) {
                    slots::unmap(set, a, s).unwrap();
                }
            }
        }
    }
    for (_, (a, s)) in held.drain() {
        slots::unmap(set, a, s).unwrap();
    }
    out
}

pub fn replay_upstream(up: &Upstream, ops: &[TraceOp]) -> Outcome {
    let mut held: HashMap<usize, (usize, usize)> = HashMap::new();
    let mut out = Outcome::default();
    for op in ops {
        match *op {
            TraceOp::Alloc { id, size, cpu } => {
                let r = up.alloc(cpu, size);
                out.note(size, r.is_some());
                if let Some(b) = r {
                    held.insert(id, b);
                }
            }
            TraceOp::Free { id } => {
                if let Some((i, n)) = held.remove(&id) {
                    up.free(i, n);
                }
            }
        }
    }
    for (_, (i, n)) in held.drain() {
        up.free(i, n);
    }
    out
}

// Benchmark fixtures: a 64 MiB pool (2 KiB slots, 2 areas) pre-filled
// with a fragmented pattern.

pub const NSLABS: usize = 32 * 1024; // 64 MiB
pub const CPUS: usize = 2;
pub const BASE: u64 = 0x4000_0000;

/// Random request sizes of 1 to 8 slots, the fragmenting pre-fill.
pub fn fill_size(rng: &mut Rng) -> usize {
    1 + rng.below(8 * 2048) as usize
}

/// Fills the pool completely with random small mappings, then frees random
/// ones until at most `pct` percent of the slots are used.
pub fn prefill_ours(pct: usize, seed: u64) -> HostSet {
    let set = HostSet::with_pool(&PoolConfig::new(BASE, NSLABS).with_cpus(CPUS), 1).unwrap();
    if pct == 0 {
        return set;
    }
    let mut rng = Rng(seed);
    let mut live = Vec::new();
    let mut misses = 0;
    while misses < 64 {
        let size = fill_size(&mut rng);
        match slots::map(
            &set,
            rng.below(CPUS as u64) as usize,
            &MapRequest::new(0, size),
        ) {
            Ok(m) => live.push((m.addr(), size)),
            Err(_) => misses += 1,
        }
    }
    while set.stats().snapshot().used_slots * 100 > NSLABS * pct {
        let i = rng.below(live.len() as u64) as usize;
        let (a, s) = live.swap_remove(i);
        slots::unmap(&set, a, s).unwrap();
    }
    set
}

pub fn prefill_upstream(pct: usize, seed: u64) -> Upstream {
    let up = Upstream::new(BASE, NSLABS, CPUS);
    if pct == 0 {
        return up;
    }
    let mut rng = Rng(seed);
    let mut live = Vec::new();
    let mut used = 0;
    let mut misses = 0;
    while misses < 64 {
        let size = fill_size(&mut rng);
        match up.alloc(rng.below(CPUS as u64) as usize, size) {
            Some(b) => {
                used += b.1;
                live.push(b);
            }
            None => misses += 1,
        }
    }
    while used * 100 > NSLABS * pct {
        let i = rng.below(live.len() as u64) as usize;
        let (s, n) = live.swap_remove(i);
        up.free(s, n);
        used -= n;
    }
    up
}

pub fn pair_ours(set: &HostSet, size: usize) -> bool {
    match slots::map(set, 0, &MapRequest::new(0x1234_5000, size)) {
        Ok(m) => {
            slots::unmap(set, m.addr(), size).unwrap();
            true
        }
        Err(_) => false,
    }
}

pub fn pair_upstream(up: &Upstream, size: usize) -> bool {
    match up.alloc(0, size) {
        Some((s, n)) => {
            up.free(s, n);
            true
        }
        None => false,
    }
}
