// SPDX-License-Identifier: GPL-2.0

//! Host crate root of the bounce-pool core.
//!
//! The modules below are plain `core`-only Rust. The kernel module compiles
//! the very same files as sibling modules of its own (through `#[path]`), so
//! nothing in them may depend on this file: no crate-level attributes, no
//! `alloc`, no `std`, and siblings are reached only as `super::...`.
//!
//! - [`dma`]: plain definitions of the DMA API (`DMA_MAPPING_ERROR`,
//!   `DMA_BIT_MASK`, `fls64`, the direction of a mapping).
//! - [`slots`]: the slot allocator of the bounce pool (areas, segments,
//!   alignment rules, per-mapping metadata, statistics, growth).
//! - [`xlate`]: guest frame to bus frame translation (Xen's p2m) and the
//!   bus-contiguity test.
//! - [`bounce_policy`]: the swiotlb-xen decision whether a streaming mapping can go
//!   straight to the device or must be bounced, and the copy rules.
//! - [`params`]: validation of xen_swiotlb_rs's load-time parameters.
//! - [`odp`]: `odp_umem`'s range arithmetic, per-page state, `hmm_range_fault`
//!   word decoding and argument validation.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

#[cfg(test)]
extern crate std;

pub mod bounce_policy;
pub mod dma;
pub mod params;
pub mod pciname;
pub mod slots;
pub mod xlate;

pub mod odp;
