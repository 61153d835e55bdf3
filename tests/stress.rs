// SPDX-License-Identifier: GPL-2.0

//! Multi-threaded stress: several threads map and unmap through one
//! `std::sync::Mutex` per area, while every slot carries an ownership tag
//! that a thread must be able to claim for each slot it is handed. Any
//! overlap between live mappings of different threads (or of one thread)
//! makes a claim fail.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::hostset::HostSet;
use xendma_logic::slots::{self, MapError, MapRequest, PoolConfig, PoolSet};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Ownership tags: one per slot of each possible pool.
struct Tags {
    pools: Vec<Vec<AtomicUsize>>,
}

impl Tags {
    fn new(pools: usize, slots: usize) -> Self {
        Self {
            pools: (0..pools)
                .map(|_| (0..slots).map(|_| AtomicUsize::new(0)).collect())
                .collect(),
        }
    }

    fn claim(&self, pool: usize, first: usize, n: usize, tag: usize) {
        for s in first..first + n {
            let t = &self.pools[pool][s];
            if let Err(other) = t.compare_exchange(0, tag, Ordering::AcqRel, Ordering::Acquire) {
                panic!("slot {s} of pool {pool} handed to {tag} while owned by {other}");
            }
        }
    }

    fn drop_claim(&self, pool: usize, first: usize, n: usize, tag: usize) {
        for s in first..first + n {
            let t = &self.pools[pool][s];
            assert_eq!(t.swap(0, Ordering::AcqRel), tag, "slot {s} lost its owner");
        }
    }
}

struct Held {
    pool: usize,
    first: usize,
    nslots: usize,
    addr: u64,
    orig: u64,
    size: usize,
}

fn worker(set: &HostSet, tags: &Tags, tid: usize, iters: usize) -> (usize, usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (tid as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
    let mut held: Vec<Held> = Vec::new();
    let (mut ok, mut full) = (0, 0);
    let tag = tid + 1;
    for _ in 0..iters {
        if held.len() < 48 && rng.below(100) < 55 {
            let size = match rng.below(10) {
                0..=4 => 1 + rng.below(2048) as usize,
                5..=7 => 1 + rng.below(16 * 1024) as usize,
                _ => 1 + rng.below(64 * 1024) as usize,
            };
            let orig = rng.next() >> 20;
            let mut req = MapRequest::new(orig, size);
            if rng.below(4) == 0 {
                req = req.with_min_align_mask(0xfff);
            }
            match slots::map(set, tid, &req) {
                Ok(m) => {
                    ok += 1;
                    tags.claim(m.pool, m.block.first_slot, m.block.nslots, tag);
                    assert_eq!(m.addr() & req.min_align_mask, orig & req.min_align_mask);
                    held.push(Held {
                        pool: m.pool,
                        first: m.block.first_slot,
                        nslots: m.block.nslots,
                        addr: m.addr(),
                        orig,
                        size,
                    });
                }
                Err(MapError::NoSpace) => full += 1,
                Err(e) => panic!("map failed: {e:?}"),
            }
        } else if !held.is_empty() {
            let i = rng.below(held.len() as u64) as usize;
            let h = held.swap_remove(i);
            let r = slots::lookup(set, h.addr, h.size).expect("lookup of a live mapping");
            assert_eq!((r.orig, r.len, r.truncated), (h.orig, h.size, false));
            // Give up the tags before the slots can be handed out again.
            tags.drop_claim(h.pool, h.first, h.nslots, tag);
            let rel = slots::unmap(set, h.addr, h.size).expect("unmap of a live mapping");
            assert_eq!(rel.nslots, h.nslots);
            // A second unmap must be refused (unless another thread got the
            // very same start address and size in between: then it is that
            // thread's mapping, and refusing it is not our business; use a
            // wrong size so the attempt can never succeed).
            assert!(slots::unmap(set, h.addr, h.size + 1).is_err());
        }
    }
    for h in held.drain(..) {
        tags.drop_claim(h.pool, h.first, h.nslots, tag);
        slots::unmap(set, h.addr, h.size).expect("final unmap");
    }
    (ok, full)
}

#[test]
fn threads_never_share_slots() {
    const THREADS: usize = 4;
    // 2 MiB in 4 areas: small enough that the threads run it full.
    let cfg = PoolConfig::new(0x4000_0000, 1024).with_cpus(4);
    let set = Arc::new(HostSet::with_pool(&cfg, 1).unwrap());
    let tags = Arc::new(Tags::new(1, 1024));
    let handles: Vec<_> = (0..THREADS)
        .map(|tid| {
            let (set, tags) = (set.clone(), tags.clone());
            thread::spawn(move || worker(&set, &tags, tid, 100_000))
        })
        .collect();
    let (mut ok, mut full) = (0, 0);
    for h in handles {
        let (o, f) = h.join().unwrap();
        ok += o;
        full += f;
    }
    let s = set.stats().snapshot();
    assert_eq!(s.used_slots, 0);
    assert!(s.high_water > 0 && s.high_water <= 1024);
    assert_eq!(s.failed_allocs, full as u64);
    assert_eq!(set.check_all().unwrap(), 0);
    assert_eq!(slots::pool_slots_in_use(&*set, 0), Some(0));
    assert!(ok > 50_000, "only {ok} maps succeeded");
    assert!(full > 0, "the pool never ran full: no pressure");
    eprintln!(
        "stress: {ok} maps, {full} NoSpace, high water {} slots",
        s.high_water
    );
}

#[test]
fn growth_while_mapping() {
    const THREADS: usize = 3;
    let cfg = PoolConfig::new(0x1_0000_0000, 256).with_cpus(2);
    let set = Arc::new(HostSet::with_pool(&cfg, 6).unwrap());
    let tags = Arc::new(Tags::new(6, 1024));
    let grower = {
        let set = set.clone();
        thread::spawn(move || {
            for k in 1..6u64 {
                thread::sleep(std::time::Duration::from_millis(5));
                let base = 0x1_0000_0000 + k * 0x100_0000;
                set.add_pool(&PoolConfig::new(base, 1024).with_cpus(2))
                    .unwrap();
            }
        })
    };
    let handles: Vec<_> = (0..THREADS)
        .map(|tid| {
            let (set, tags) = (set.clone(), tags.clone());
            thread::spawn(move || worker(&set, &tags, tid, 20_000))
        })
        .collect();
    grower.join().unwrap();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(set.pool_count(), 6);
    assert_eq!(set.stats().snapshot().used_slots, 0);
    assert_eq!(set.check_all().unwrap(), 0);
    for p in 0..set.pool_count() {
        assert_eq!(slots::pool_slots_in_use(&*set, p), Some(0));
    }
}
