// SPDX-License-Identifier: GPL-2.0

//! Fuzz target: bytes -> a pool configuration and a sequence of map, unmap,
//! misuse, lookup and growth operations, each checked against the reference
//! model of tests/common/model.rs (which also runs `Area::check` on every
//! area after every step).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/mod.rs"]
mod common;

use common::harness::{Harness, Op, BAD_MASK_BITS};
use xendma_logic::slots::PoolConfig;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([self.u8()?, self.u8()?, self.u8()?, self.u8()?]))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from(self.u32()?) | u64::from(self.u32()?) << 32)
    }
}

fn config(b: &mut Bytes<'_>) -> Option<PoolConfig> {
    let slot_shift = 9 + u32::from(b.u8()? % 3);
    let page_shift = slot_shift + u32::from(b.u8()? % 3);
    let seg = match b.u8()? {
        0..=127 => 128,
        x => usize::from(x % 64) + 1,
    };
    let nslabs = usize::from(b.u16()? % 1024) + 1;
    let cpus = usize::from(b.u8()? % 8) + 1;
    let base = u64::from(b.u16()?) << page_shift;
    Some(
        PoolConfig::new(base, nslabs)
            .with_slot_shift(slot_shift)
            .with_page_shift(page_shift)
            .with_segment_slots(seg)
            .with_cpus(cpus),
    )
}

fn mask_bits(x: u8) -> u32 {
    match x {
        0..=127 => 0,
        128..=247 => u32::from(x % 15),
        248..=251 => 64,
        _ => BAD_MASK_BITS,
    }
}

fn op(b: &mut Bytes<'_>) -> Option<Op> {
    let tag = b.u8()?;
    Some(match tag % 16 {
        0..=6 => {
            let cpu = usize::from(b.u8()?);
            let size = match b.u8()? % 8 {
                0..=3 => usize::from(b.u16()? % 4097),
                4..=6 => b.u32()? as usize % 70_000,
                _ => b.u32()? as usize,
            };
            let orig = if tag & 0x80 != 0 { b.u64()? } else { u64::from(b.u32()?) << 4 };
            let min_bits = mask_bits(b.u8()?);
            let align_bits = mask_bits(b.u8()?);
            let bnd = b.u8()?;
            let boundary_bits = (bnd >= 200).then_some(u32::from(bnd % 13) + 8);
            Op::Map {
                cpu,
                orig,
                size,
                min_bits,
                align_bits,
                boundary_bits,
            }
        }
        7..=10 => Op::Unmap {
            pick: usize::from(b.u16()?),
        },
        11 => Op::BadUnmap {
            pick: usize::from(b.u16()?),
            how: b.u8()?,
            delta: b.u64()?,
        },
        12 | 13 => Op::Lookup {
            pick: usize::from(b.u16()?),
            off: b.u32()? as usize,
            len: usize::from(b.u16()?),
        },
        _ => Op::Grow {
            nslabs: usize::from(b.u16()? % 512) + 1,
            cpus: usize::from(b.u8()? % 4) + 1,
            seg: usize::from(b.u8()? % 128) + 1,
        },
    })
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let Some(cfg) = config(&mut b) else {
        return;
    };
    let Ok(mut h) = Harness::new(cfg, 8) else {
        return;
    };
    let mut n = 0;
    while let Some(o) = op(&mut b) {
        if let Err(e) = h.op(&o) {
            panic!("step {n} {o:?}: {e}");
        }
        n += 1;
        if n > 1000 {
            break;
        }
    }
    if let Err(e) = h.drain() {
        panic!("drain: {e}");
    }
});
