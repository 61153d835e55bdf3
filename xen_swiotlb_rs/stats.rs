// SPDX-License-Identifier: GPL-2.0

//! The debugfs files (statistics, the segment list, `attach` and `detach`) and the module's
//! sysfs attributes (`attach`, `detach`, `devices`), which work under lockdown too.

use crate::kext::dma::ops as dma_ops;
use crate::kext::files::{Out, Source};
use crate::kext::xen_frames;
use crate::logic::pciname;
use crate::warn_ratelimited;
use crate::Swiotlb;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use kernel::prelude::*;
use kernel::{c_str, str::CStr};

/// The debugfs files, by id.
pub(crate) const FILES: &[(&CStr, u16, u32)] = &[
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
    (c_str!("segments"), 0o444, 12),
    (c_str!("domain_pages"), 0o444, 13),
    (c_str!("build_us"), 0o444, 14),
    (c_str!("grows"), 0o444, 15),
    (c_str!("pool_max_bytes"), 0o444, 16),
    (c_str!("aliased_maps"), 0o444, 17),
];

/// The attributes in `/sys/module/xen_swiotlb_rs/`, by id (the same ids as [`FILES`]).
pub(crate) const SYSFS_FILES: &[(&CStr, u16, u32)] = &[
    (c_str!("devices"), 0o444, 8),
    (c_str!("attach"), 0o200, 9),
    (c_str!("detach"), 0o200, 10),
];

impl Source for Swiotlb {
    fn show(&self, id: u32, out: &mut Out<'_>) -> core::fmt::Result {
        let e = &*self.engine;
        // Only the allocation and byte counts are summed over the areas, each locked in turn; the
        // other files read atomics and leave the mapping path alone.
        let st = if matches!(id, 4 | 5 | 17) {
            e.pool.snapshot()
        } else {
            e.pool.stats().snapshot()
        };
        match id {
            0 => writeln!(out, "{}", e.pool.bytes()),
            1 => writeln!(out, "{}", e.pool.nslabs()),
            2 => writeln!(out, "{}", st.used_slots),
            3 => writeln!(out, "{}", st.high_water),
            4 => writeln!(out, "{}", st.allocs),
            5 => writeln!(out, "{}", st.bounced_bytes),
            6 => writeln!(out, "{}", e.counters.map_failures.load(Ordering::Relaxed)),
            7 => writeln!(out, "{}", self.attached()),
            8 => {
                let mut r = Ok(());
                self.for_each(|i| {
                    r = r.and(writeln!(
                        out,
                        "{} mappings={} bounces={} exchanged={}",
                        dma_ops::device_name(i.device()),
                        i.data().mappings(),
                        i.data().bounces(),
                        i.data().exchanged()
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
            12 => {
                for c in 0..e.pool.chunk_count() {
                    let (Some((first, _)), Some(xs)) =
                        (e.pool.chunk_range(c), e.pool.chunk_extents(c))
                    else {
                        continue;
                    };
                    for x in xs {
                        let pfn = (first >> kernel::page::PAGE_SHIFT) + x.first as u64;
                        writeln!(
                            out,
                            "pfn {:#x} mfn {:#x} pages {} bits {} contiguous {}",
                            pfn,
                            x.mfn,
                            1u64 << x.order,
                            x.bits,
                            if e.extent_is_contiguous(pfn, x) {
                                "yes"
                            } else {
                                "NO"
                            }
                        )?;
                    }
                }
                Ok(())
            }
            13 => match xen_frames::reservation() {
                Some(n) => writeln!(out, "{}", n),
                None => writeln!(out, "-"),
            },
            14 => writeln!(out, "{}", e.build_us()),
            15 => {
                let (grows, worker, failures) = e.growth();
                writeln!(out, "{} {} {}", grows, worker, failures)
            }
            16 => writeln!(out, "{}", e.params.max_bytes),
            17 => writeln!(out, "{}", st.aliased_maps),
            _ => Ok(()),
        }
    }

    fn store(&self, id: u32, input: &[u8]) -> Result {
        match id {
            // As the kernel's `io_tlb_used_hiwater`: only 0 resets it.
            3 if pciname::trim(input) == b"0" => {
                self.engine.pool.stats().reset_high_water();
                Ok(())
            }
            3 => {
                warn_ratelimited!(
                    "used_hiwater: '{}' refused: only 0 resets it\n",
                    format_args!("{}", pciname::Shown(input))
                );
                Err(EINVAL)
            }
            9 => self.attach(input),
            10 => self.detach(input),
            _ => Err(EINVAL),
        }
    }
}
