// SPDX-License-Identifier: GPL-2.0

//! A growable set of pools for host tests: one `Mutex` per area, pools in an
//! append-only array of `OnceLock`s published with release ordering (the
//! pattern a kernel caller would follow with its own primitives).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use xendma_logic::slots::{self, Area, ConfigError, Pool, PoolConfig, PoolSet, Slot, Stats};

/// One pool and its locked areas.
pub struct HostPool {
    pub pool: Pool,
    pub areas: Vec<Mutex<Area<Vec<Slot>>>>,
}

impl HostPool {
    pub fn new(pool: Pool) -> Result<Self, ConfigError> {
        let mut areas = Vec::with_capacity(pool.area_count());
        for i in 0..pool.area_count() {
            let len = pool.area_slots(i).ok_or(ConfigError::NoSuchArea)?;
            areas.push(Mutex::new(pool.new_area(i, vec![Slot::new(); len])?));
        }
        Ok(Self { pool, areas })
    }
}

/// A set of up to `capacity` pools.
pub struct HostSet {
    pub stats: Stats,
    pools: Vec<OnceLock<HostPool>>,
    count: AtomicUsize,
    grow: Mutex<()>,
}

impl HostSet {
    pub fn new(capacity: usize) -> Self {
        Self {
            stats: Stats::new(),
            pools: (0..capacity).map(|_| OnceLock::new()).collect(),
            count: AtomicUsize::new(0),
            grow: Mutex::new(()),
        }
    }

    pub fn with_pool(cfg: &PoolConfig, capacity: usize) -> Result<Self, ConfigError> {
        let set = Self::new(capacity);
        set.add_pool(cfg)?;
        Ok(set)
    }

    /// Appends a pool (growth); safe while other threads map and unmap.
    pub fn add_pool(&self, cfg: &PoolConfig) -> Result<usize, ConfigError> {
        let _g = self.grow.lock().unwrap();
        let n = self.count.load(Ordering::Relaxed);
        let slot = self.pools.get(n).ok_or(ConfigError::Empty)?;
        let pool = slots::check_new_pool(self, cfg)?;
        if slot.set(HostPool::new(pool)?).is_err() {
            return Err(ConfigError::Overlap);
        }
        self.count.store(n + 1, Ordering::Release);
        Ok(n)
    }

    pub fn host_pool(&self, i: usize) -> Option<&HostPool> {
        if i < self.count.load(Ordering::Acquire) {
            self.pools.get(i)?.get()
        } else {
            None
        }
    }

    /// Runs `Area::check` on every area; returns the used slots.
    pub fn check_all(&self) -> Result<usize, String> {
        let mut used = 0;
        for p in 0..self.pool_count() {
            let hp = self.host_pool(p).ok_or("missing pool")?;
            for (a, m) in hp.areas.iter().enumerate() {
                let area = m.lock().unwrap();
                used += area
                    .check()
                    .map_err(|v| format!("pool {p} area {a}: {v:?}"))?;
            }
        }
        Ok(used)
    }
}

impl PoolSet for HostSet {
    type Storage = Vec<Slot>;

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn pool_count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn pool(&self, index: usize) -> Option<&Pool> {
        self.host_pool(index).map(|h| &h.pool)
    }

    fn with_area<R, F>(&self, pool: usize, area: usize, f: F) -> Option<R>
    where
        F: FnOnce(&mut Area<Vec<Slot>>) -> R,
    {
        let hp = self.host_pool(pool)?;
        let mut guard = hp.areas.get(area)?.lock().ok()?;
        Some(f(&mut guard))
    }
}
