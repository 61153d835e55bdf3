// SPDX-License-Identifier: GPL-2.0

//! Validation of xen_swiotlb_rs's load-time parameters (`pool_mb`, `dma_bits`, `pool_max_mb`,
//! `segment_kb`), before anything is allocated: a value that cannot describe a pool is refused
//! with `EINVAL` and a message that names it, instead of a pool built from a clamped or wrapped
//! value.

use core::fmt;

/// The smallest segment (and the default), in KiB: swiotlb-xen's largest mapping.
pub const MIN_SEGMENT_KB: u32 = 256;
/// The largest segment, in KiB: the buddy allocator's largest block (`MAX_ORDER` on x86-64).
pub const MAX_SEGMENT_KB: u32 = 4096;

/// Whether a segment of `bytes` is allowed: a power of two from [`MIN_SEGMENT_KB`] to
/// [`MAX_SEGMENT_KB`] KiB. The one rule for load-time parameters and for every pool built.
pub const fn segment_ok(bytes: u64) -> bool {
    bytes.is_power_of_two()
        && bytes >= (MIN_SEGMENT_KB as u64) << 10
        && bytes <= (MAX_SEGMENT_KB as u64) << 10
}

/// The largest pool, in bytes, for RAM that ends at `ram_bytes`: half of it, so that the
/// kernel keeps the other half.
pub const fn pool_limit(ram_bytes: u64) -> u64 {
    ram_bytes / 2
}

/// The load-time parameters, as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadParams {
    /// `pool_mb`: the pool built at load, in MiB.
    pub pool_mb: u32,
    /// `dma_bits`: the pool lies below `2^dma_bits`.
    pub dma_bits: u32,
    /// `pool_max_mb`: the size growth may reach, in MiB (0: no growth).
    pub pool_max_mb: u32,
    /// `segment_kb`: the machine-contiguous segment (and the largest mapping), in KiB.
    pub segment_kb: u32,
}

/// Why a set of parameters was refused; `Display` names the parameters and their values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamError {
    /// `pool_mb=0`.
    PoolZero,
    /// `pool_mb` over half of RAM.
    PoolOverRam {
        /// The value.
        pool_mb: u32,
        /// Half of RAM, in MiB.
        limit_mb: u64,
    },
    /// `pool_max_mb` over half of RAM.
    MaxOverRam {
        /// The value.
        pool_max_mb: u32,
        /// Half of RAM, in MiB.
        limit_mb: u64,
    },
    /// `pool_max_mb` not 0 and below `pool_mb`.
    MaxBelowPool {
        /// The value.
        pool_max_mb: u32,
        /// `pool_mb`.
        pool_mb: u32,
    },
    /// `dma_bits` over 64.
    DmaBitsTooWide(u32),
    /// `2^dma_bits` smaller than the pool (or than its largest size).
    PoolAboveMask {
        /// The value.
        dma_bits: u32,
        /// The pool's size (the larger of `pool_mb` and `pool_max_mb`), in MiB.
        pool_mb: u32,
    },
    /// `segment_kb` not a power of two in [`MIN_SEGMENT_KB`]..=[`MAX_SEGMENT_KB`].
    Segment(u32),
    /// `segment_kb` larger than the pool.
    SegmentOverPool {
        /// The value.
        segment_kb: u32,
        /// `pool_mb`.
        pool_mb: u32,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::PoolZero => write!(f, "pool_mb=0: the pool needs at least 1 MiB"),
            Self::PoolOverRam { pool_mb, limit_mb } => write!(
                f,
                "pool_mb={pool_mb}: more than half of RAM ({limit_mb} MiB)"
            ),
            Self::MaxOverRam {
                pool_max_mb,
                limit_mb,
            } => write!(
                f,
                "pool_max_mb={pool_max_mb}: more than half of RAM ({limit_mb} MiB)"
            ),
            Self::MaxBelowPool {
                pool_max_mb,
                pool_mb,
            } => write!(
                f,
                "pool_max_mb={pool_max_mb}: below pool_mb={pool_mb} (0 disables growth)"
            ),
            Self::DmaBitsTooWide(b) => write!(f, "dma_bits={b}: at most 64"),
            Self::PoolAboveMask { dma_bits, pool_mb } => write!(
                f,
                "dma_bits={dma_bits}: a pool of {pool_mb} MiB does not fit below 2^{dma_bits}"
            ),
            Self::Segment(kb) => write!(
                f,
                "segment_kb={kb}: must be a power of two from {MIN_SEGMENT_KB} to {MAX_SEGMENT_KB}"
            ),
            Self::SegmentOverPool {
                segment_kb,
                pool_mb,
            } => write!(
                f,
                "segment_kb={segment_kb}: larger than the pool (pool_mb={pool_mb})"
            ),
        }
    }
}

impl LoadParams {
    /// Checks the parameters against each other and against `ram_bytes` (the end of RAM): the
    /// pool and its growth limit at most half of it, `2^dma_bits` at least the pool's largest
    /// size, the segment a power of two that fits in the pool.
    pub fn check(&self, ram_bytes: u64) -> Result<(), ParamError> {
        let limit_mb = pool_limit(ram_bytes) >> 20;
        if self.pool_mb == 0 {
            return Err(ParamError::PoolZero);
        }
        if u64::from(self.pool_mb) > limit_mb {
            return Err(ParamError::PoolOverRam {
                pool_mb: self.pool_mb,
                limit_mb,
            });
        }
        if self.pool_max_mb != 0 {
            if self.pool_max_mb < self.pool_mb {
                return Err(ParamError::MaxBelowPool {
                    pool_max_mb: self.pool_max_mb,
                    pool_mb: self.pool_mb,
                });
            }
            if u64::from(self.pool_max_mb) > limit_mb {
                return Err(ParamError::MaxOverRam {
                    pool_max_mb: self.pool_max_mb,
                    limit_mb,
                });
            }
        }
        if self.dma_bits > 64 {
            return Err(ParamError::DmaBitsTooWide(self.dma_bits));
        }
        let largest_mb = self.pool_mb.max(self.pool_max_mb);
        // 2^dma_bits bytes, in MiB (saturating: anything from 2^84 on is beyond every pool).
        let reach_mb = match self.dma_bits {
            0..=19 => 0,
            b => 1u64.checked_shl(b - 20).unwrap_or(u64::MAX),
        };
        if u64::from(largest_mb) > reach_mb {
            return Err(ParamError::PoolAboveMask {
                dma_bits: self.dma_bits,
                pool_mb: largest_mb,
            });
        }
        let s = self.segment_kb;
        if !segment_ok(u64::from(s) << 10) {
            return Err(ParamError::Segment(s));
        }
        if u64::from(s) > u64::from(self.pool_mb) << 10 {
            return Err(ParamError::SegmentOverPool {
                segment_kb: s,
                pool_mb: self.pool_mb,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    const RAM: u64 = 4 << 30;

    fn p(pool_mb: u32, dma_bits: u32, pool_max_mb: u32, segment_kb: u32) -> LoadParams {
        LoadParams {
            pool_mb,
            dma_bits,
            pool_max_mb,
            segment_kb,
        }
    }

    #[test]
    fn sane_values_pass() {
        for ok in [
            p(64, 32, 0, 256),
            p(1, 28, 2, 256),
            p(16, 28, 0, 4096),
            p(1, 20, 0, 1024),
            p(64, 64, 128, 2048),
            p(2048, 32, 2048, 256),
        ] {
            assert_eq!(ok.check(RAM), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn refused_with_their_values() {
        let cases = [
            (p(0, 32, 0, 256), "pool_mb=0: the pool needs at least 1 MiB"),
            (p(64, 65, 0, 256), "dma_bits=65: at most 64"),
            (p(64, u32::MAX, 0, 256), "dma_bits=4294967295: at most 64"),
            (
                p(64, 20, 0, 256),
                "dma_bits=20: a pool of 64 MiB does not fit below 2^20",
            ),
            (
                p(1, 19, 0, 256),
                "dma_bits=19: a pool of 1 MiB does not fit below 2^19",
            ),
            (
                p(1, 0, 0, 256),
                "dma_bits=0: a pool of 1 MiB does not fit below 2^0",
            ),
            (
                p(16, 23, 64, 256),
                "dma_bits=23: a pool of 64 MiB does not fit below 2^23",
            ),
            (
                p(1, 32, 0, 4096),
                "segment_kb=4096: larger than the pool (pool_mb=1)",
            ),
            (
                p(64, 32, 0, 300),
                "segment_kb=300: must be a power of two from 256 to 4096",
            ),
            (
                p(64, 32, 0, 8192),
                "segment_kb=8192: must be a power of two from 256 to 4096",
            ),
            (
                p(64, 32, 0, 0),
                "segment_kb=0: must be a power of two from 256 to 4096",
            ),
            (
                p(64, 32, 32, 256),
                "pool_max_mb=32: below pool_mb=64 (0 disables growth)",
            ),
            (
                p(64, 32, 4096, 256),
                "pool_max_mb=4096: more than half of RAM (2048 MiB)",
            ),
            (
                p(4096, 32, 0, 256),
                "pool_mb=4096: more than half of RAM (2048 MiB)",
            ),
            (
                p(u32::MAX, 64, 0, 256),
                "pool_mb=4294967295: more than half of RAM (2048 MiB)",
            ),
        ];
        for (bad, msg) in cases {
            let e = bad.check(RAM).unwrap_err();
            assert_eq!(e.to_string(), msg, "{bad:?}");
        }
    }

    #[test]
    fn every_value_either_passes_or_names_itself() {
        // A sweep over the edges: no panic (overflow) and a refusal names a parameter.
        let edges = [
            0u32,
            1,
            2,
            19,
            20,
            21,
            31,
            32,
            63,
            64,
            65,
            255,
            256,
            4096,
            65535,
            u32::MAX,
        ];
        for &a in &edges {
            for &b in &edges {
                for &c in &edges {
                    for &d in &edges {
                        let q = p(a, b, c, d);
                        if let Err(e) = q.check(RAM) {
                            let s = e.to_string();
                            assert!(
                                ["pool_mb=", "dma_bits=", "pool_max_mb=", "segment_kb="]
                                    .iter()
                                    .any(|k| s.starts_with(k)),
                                "{s}"
                            );
                        } else {
                            assert!(a >= 1 && b <= 64 && d.is_power_of_two(), "{q:?}");
                        }
                    }
                }
            }
        }
    }
}
