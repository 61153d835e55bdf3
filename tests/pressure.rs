// SPDX-License-Identifier: GPL-2.0

//! Behaviour under pressure: the same map/unmap traces replayed on this
//! allocator and on a stand-in for upstream's next-fit search
//! (tests/common/upstream.rs). Prints the failure counts and checks that
//! this allocator never fails more often.

mod common;

use common::hostset::HostSet;
use common::upstream::Upstream;
use common::workload::{replay_ours, replay_upstream, trace};
use xendma_logic::slots::PoolConfig;

#[test]
fn fewer_failures_than_upstream_under_pressure() {
    const NSLABS: usize = 4096; // 8 MiB
    const CPUS: usize = 2;
    for (seed, pct) in [(1u64, 80usize), (2, 90), (3, 95), (4, 97), (5, 98), (6, 99)] {
        let ops = trace(seed, 60_000, NSLABS * 2048, pct, CPUS);
        let set =
            HostSet::with_pool(&PoolConfig::new(0x4000_0000, NSLABS).with_cpus(CPUS), 1).unwrap();
        let ours = replay_ours(&set, &ops);
        assert_eq!(set.check_all().unwrap(), 0);
        let up = Upstream::new(0x4000_0000, NSLABS, CPUS);
        let theirs = replay_upstream(&up, &ops);
        eprintln!(
            "seed {seed} target {pct}%: {} allocs; failed ours {:?} = {}, upstream-style {:?} = {}",
            ours.attempts,
            ours.failed,
            ours.total_failed(),
            theirs.failed,
            theirs.total_failed()
        );
        assert_eq!(ours.attempts, theirs.attempts);
        assert!(ours.total_failed() <= theirs.total_failed());
    }
}

/// A wider sweep for tuning (`cargo test --release --test pressure -- --ignored --nocapture`):
/// total failures over many seeds at each target occupancy.
#[test]
#[ignore]
fn sweep() {
    const NSLABS: usize = 4096;
    const CPUS: usize = 2;
    for pct in [95usize, 97, 98, 99] {
        let (mut ours, mut theirs) = (0, 0);
        for seed in 100..140u64 {
            let ops = trace(seed, 60_000, NSLABS * 2048, pct, CPUS);
            let set = HostSet::with_pool(&PoolConfig::new(0x4000_0000, NSLABS).with_cpus(CPUS), 1)
                .unwrap();
            ours += replay_ours(&set, &ops).total_failed();
            theirs +=
                replay_upstream(&Upstream::new(0x4000_0000, NSLABS, CPUS), &ops).total_failed();
        }
        eprintln!("target {pct}%: 40 seeds, failed ours {ours}, upstream-style {theirs}");
    }
}

/// Driver for instruction counting under callgrind (see the design note):
/// `PAIR_IMPL=ours|upstream PAIR_PCT=50 PAIR_SIZE=1024 valgrind --tool=callgrind
/// --collect-atstart=no --toggle-collect='*pairs_loop*' <pressure test binary>
/// --ignored --exact pair_cost_driver`.
#[test]
#[ignore]
fn pair_cost_driver() {
    use common::workload::{pair_ours, pair_upstream, prefill_ours, prefill_upstream};
    let imp = std::env::var("PAIR_IMPL").unwrap_or_else(|_| "ours".into());
    let pct: usize = std::env::var("PAIR_PCT").map_or(50, |v| v.parse().unwrap());
    let size: usize = std::env::var("PAIR_SIZE").map_or(1024, |v| v.parse().unwrap());
    const PAIRS: usize = 10_000;

    #[inline(never)]
    fn pairs_loop(f: &mut dyn FnMut() -> bool) -> usize {
        (0..PAIRS).filter(|_| f()).count()
    }

    let ok = if imp == "ours" {
        let set = prefill_ours(pct, 7);
        pairs_loop(&mut || pair_ours(&set, size))
    } else {
        let up = prefill_upstream(pct, 7);
        pairs_loop(&mut || pair_upstream(&up, size))
    };
    eprintln!("{imp} {pct}% {size}: {ok}/{PAIRS} succeeded");
}
