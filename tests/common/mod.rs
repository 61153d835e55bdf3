// SPDX-License-Identifier: GPL-2.0

//! Host-side helpers shared by the integration tests, the benchmark and the
//! fuzz target: a [`PoolSet`](xendma_logic::slots::PoolSet) with one
//! `std::sync::Mutex` per area that can grow while in use, and a reference
//! model of the allocator's contract.

#![allow(dead_code)]

pub mod harness;
pub mod hostset;
pub mod model;
pub mod upstream;
pub mod workload;
