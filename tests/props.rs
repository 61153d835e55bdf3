// SPDX-License-Identifier: GPL-2.0

//! Property tests: random operation sequences against the reference model
//! (tests/common/model.rs), plus properties of the translation and the
//! bounce decision.

mod common;

use common::harness::{Harness, Op, BAD_MASK_BITS};
use proptest::prelude::*;
use xendma_logic::bounce_policy::{decide_map, dma_capable, BounceReason, DmaLimits, MapDecision};
use xendma_logic::slots::{Area, MapRequest, Pool, PoolConfig, Slot};
use xendma_logic::xlate::{self, TableMap};

fn cfg_strategy() -> impl Strategy<Value = PoolConfig> {
    (
        9u32..=11,
        0u32..=2,
        prop_oneof![1usize..=16, 17usize..=64, Just(128usize)],
        1usize..=700,
        1usize..=8,
        0u64..1 << 20,
    )
        .prop_map(|(slot_shift, extra, seg, nslabs, cpus, page_no)| {
            let page_shift = slot_shift + extra;
            PoolConfig::new(page_no << page_shift, nslabs)
                .with_slot_shift(slot_shift)
                .with_page_shift(page_shift)
                .with_segment_slots(seg)
                .with_cpus(cpus)
        })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let size = prop_oneof![
        4 => 1usize..=64,
        8 => 1usize..=4096,
        6 => 1usize..=70_000,
        1 => Just(0usize),
        1 => 200_000usize..=300_000,
    ];
    let orig = prop_oneof![
        8 => 0u64..1 << 40,
        1 => any::<u64>(),
        1 => (u64::MAX - 8192)..=u64::MAX,
    ];
    let min_bits = prop_oneof![5 => Just(0u32), 4 => 1u32..=14, 1 => Just(BAD_MASK_BITS)];
    let align_bits = prop_oneof![6 => Just(0u32), 3 => 1u32..=14, 1 => 15u32..=64];
    let boundary = prop_oneof![6 => Just(None), 2 => (8u32..=20).prop_map(Some)];
    let map = (0usize..16, orig, size, min_bits, align_bits, boundary).prop_map(
        |(cpu, orig, size, min_bits, align_bits, boundary_bits)| Op::Map {
            cpu,
            orig,
            size,
            min_bits,
            align_bits,
            boundary_bits,
        },
    );
    prop_oneof![
        10 => map,
        6 => any::<usize>().prop_map(|pick| Op::Unmap { pick }),
        2 => (any::<usize>(), any::<u8>(), any::<u64>())
            .prop_map(|(pick, how, delta)| Op::BadUnmap { pick, how, delta }),
        2 => (any::<usize>(), any::<usize>(), 0usize..100_000)
            .prop_map(|(pick, off, len)| Op::Lookup { pick, off, len }),
        1 => (1usize..=300, 1usize..=4, 1usize..=128)
            .prop_map(|(nslabs, cpus, seg)| Op::Grow { nslabs, cpus, seg }),
    ]
}

fn run(cfg: PoolConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut h = Harness::new(cfg, 8).map_err(TestCaseError::fail)?;
    for (i, op) in ops.iter().enumerate() {
        h.op(op)
            .map_err(|e| TestCaseError::fail(format!("op {i} {op:?}: {e}")))?;
    }
    h.drain().map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    /// Random pools and operation sequences agree with the model: no
    /// overlap, segment and boundary respected, alignment and
    /// min_align_mask kept, NoSpace only when nothing fits, errors as
    /// predicted, statistics equal, invariants intact after every step.
    #[test]
    fn ops_agree_with_model(cfg in cfg_strategy(), ops in prop::collection::vec(op_strategy(), 1..300)) {
        run(cfg, &ops)?;
    }

    /// Upstream geometry (2 KiB slots, 128-slot segments) under pressure:
    /// small pool, many maps.
    #[test]
    fn default_geometry_under_pressure(
        nsegs in 1usize..=6,
        cpus in 1usize..=4,
        ops in prop::collection::vec(
            prop_oneof![
                3 => (0usize..8, 0u64..1 << 36, 1usize..=66_000, prop_oneof![Just(0u32), Just(12u32)])
                    .prop_map(|(cpu, orig, size, min_bits)| Op::Map {
                        cpu, orig, size, min_bits, align_bits: 0, boundary_bits: None,
                    }),
                2 => any::<usize>().prop_map(|pick| Op::Unmap { pick }),
            ],
            1..300,
        ),
    ) {
        run(PoolConfig::new(0x8000_0000, nsegs * 128).with_cpus(cpus), &ops)?;
    }

    /// range_is_bus_contiguous agrees with a byte-wise definition.
    #[test]
    fn contiguity_matches_definition(
        bfns in prop::collection::vec(0u64..12, 8),
        start in 0u64..(8 * 4096),
        size in 0usize..(4 * 4096),
    ) {
        let map = TableMap::new(16, &bfns);
        let phys = 16 * 4096 + start;
        let got = xlate::range_is_bus_contiguous(&map, phys, size);
        let last = phys + (size.max(1) as u64) - 1;
        let want = if xlate::xen_pfn_down(last) == xlate::xen_pfn_down(phys) {
            true
        } else {
            let b0 = xlate::phys_to_bus(&map, phys);
            (phys..=last).step_by(256).chain([last]).all(|p| {
                match (b0, xlate::phys_to_bus(&map, p)) {
                    (Some(b0), Some(b)) => b == b0 + (p - phys),
                    _ => false,
                }
            })
        };
        prop_assert_eq!(got, want);
    }

    /// Mappings of one size fill every segment as tightly as their size allows, whatever their
    /// originals and whatever was mapped and unmapped before: the placement preferences (against
    /// aliasing and TLB overlap) cost no room.
    #[test]
    fn same_size_mappings_fill_every_segment(
        pages in prop_oneof![1u64..=8, 9u64..=70, Just(64u64), Just(256u64), Just(512u64)],
        seg_kb in prop_oneof![Just(256usize), Just(1024usize), Just(4096usize)],
        nsegs in 1usize..=4,
        origs in prop::collection::vec(
            prop_oneof![0u64..1 << 28, (0u64..64).prop_map(|k| k << 9)],
            1..80,
        ),
        unmaps in prop::collection::vec(any::<Option<usize>>(), 80),
    ) {
        let seg = seg_kb / 2;
        // At most a segment's worth of pages (2 KiB slots, 4 KiB pages).
        let pages = pages.min(seg as u64 / 2);
        let per_seg = seg / (2 * pages as usize);
        let cfg = PoolConfig::new(0x1_0000_0000, nsegs * seg).with_segment_slots(seg);
        let pool = Pool::new(&cfg).unwrap();
        let len = pool.area_slots(0).unwrap();
        let mut area = pool.new_area(0, vec![Slot::new(); len]).unwrap();
        let size = (pages << 12) as usize;
        let map = |area: &mut Area<Vec<Slot>>, page: u64| {
            let plan = pool.plan(&MapRequest::new(page << 12, size)).unwrap();
            area.try_alloc(&plan).unwrap().map(|b| b.addr)
        };
        // A history of maps and unmaps (originals at random pages or at multiples of 2 MiB)...
        let mut live = Vec::new();
        for (i, &page) in origs.iter().enumerate() {
            if let Some(b) = map(&mut area, page) {
                live.push(b);
            }
            if let Some(pick) = unmaps[i] {
                if !live.is_empty() {
                    let b = live.swap_remove(pick % live.len());
                    area.release(b, size).unwrap();
                }
            }
        }
        // ... then fill: every segment takes as many as fit in it.
        let mut k = 0u64;
        while let Some(b) = map(&mut area, (k * 0x1ff) % (1 << 28)) {
            live.push(b);
            k += 1;
            prop_assert!(live.len() <= nsegs * per_seg);
        }
        prop_assert_eq!(live.len(), nsegs * per_seg);
        area.check().unwrap();
    }

    /// The map decision is Direct exactly when every upstream condition holds.
    #[test]
    fn decision_matches_rules(
        bfns in prop::collection::vec(0u64..0x20_0000, 4),
        off in 0u64..(4 * 4096),
        size in 1usize..(3 * 4096),
        mask_bits in 20u32..=40,
        force in any::<bool>(),
        arch in any::<bool>(),
    ) {
        let map = TableMap::new(0, &bfns);
        let limits = DmaLimits::new((1u64 << mask_bits) - 1);
        let d = decide_map(&map, &limits, off, size, force, arch);
        let bus = xlate::phys_to_bus(&map, off);
        let direct = bus.is_some_and(|b| dma_capable(&limits, b, size))
            && xlate::range_is_bus_contiguous(&map, off, size)
            && !force
            && !arch;
        match d {
            MapDecision::Direct(b) => {
                prop_assert!(direct);
                prop_assert_eq!(Some(b), bus);
            }
            MapDecision::Bounce(reason) => {
                prop_assert!(!direct);
                // The reason names the first rule that failed.
                let want = if force || arch {
                    BounceReason::Forced
                } else if bus.is_none() {
                    BounceReason::NoTranslation
                } else if !bus.is_some_and(|b| dma_capable(&limits, b, size)) {
                    BounceReason::BeyondMask
                } else {
                    BounceReason::NotContiguous
                };
                prop_assert_eq!(reason, want);
            }
        }
    }
}

/// Guards against a vacuous property test: the generated workloads must
/// mostly succeed in mapping and also hit every failure path.
#[test]
fn generated_workload_is_not_vacuous() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::default();
    let mut total_ok = 0;
    let mut total_fail = 0;
    let mut ops_n = 0;
    for _ in 0..20 {
        let cfg = cfg_strategy().new_tree(&mut runner).unwrap().current();
        let ops = prop::collection::vec(op_strategy(), 1..200)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut h = Harness::new(cfg, 8).unwrap();
        for op in &ops {
            h.op(op).unwrap();
        }
        ops_n += ops.len();
        total_ok += h.maps_ok;
        total_fail += h.maps_failed;
        h.drain().unwrap();
    }
    assert!(total_ok * 5 > ops_n, "ops {ops_n} ok {total_ok}");
    assert!(total_fail * 20 > ops_n, "ops {ops_n} failed {total_fail}");
}
