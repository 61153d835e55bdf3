// SPDX-License-Identifier: GPL-2.0

//! Map+unmap pairs per second for 1, 16 and 64 KiB requests on a 64 MiB
//! pool (2 KiB slots, 128-slot segments, 2 areas) pre-filled to 0 %, 50 %
//! and 90 % with a fragmented pattern, for this allocator (one `Mutex` per
//! area, through `slots::map`/`slots::unmap`) and for the upstream
//! stand-in of tests/common/upstream.rs (same locking).
//!
//! Before the timed runs it prints, for each case, the share of attempts
//! that found room (a failed attempt is timed too: it is the cost of a
//! "buffer full" answer).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use common::workload::{pair_ours, pair_upstream, prefill_ours, prefill_upstream};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const SIZES: [usize; 3] = [1024, 16 * 1024, 64 * 1024];
const OCCUPANCY: [usize; 3] = [0, 50, 90];

fn bench(c: &mut Criterion) {
    eprintln!("success rate of map attempts (ours / upstream-style):");
    for pct in OCCUPANCY {
        let set = prefill_ours(pct, 7);
        let up = prefill_upstream(pct, 7);
        for size in SIZES {
            let ok_ours = (0..1000).filter(|_| pair_ours(&set, size)).count();
            let ok_up = (0..1000).filter(|_| pair_upstream(&up, size)).count();
            eprintln!(
                "  {pct:>2}% full, {:>2} KiB: {:>5.1}% / {:>5.1}%  (largest free run in area 0: {} slots)",
                size / 1024,
                ok_ours as f64 / 10.0,
                ok_up as f64 / 10.0,
                set.host_pool(0).unwrap().areas[0].lock().unwrap().max_free_run()
            );
        }
    }

    for pct in OCCUPANCY {
        let mut g = c.benchmark_group(format!("map_unmap_{pct}pct"));
        let set = prefill_ours(pct, 7);
        let up = prefill_upstream(pct, 7);
        for size in SIZES {
            let kib = size / 1024;
            g.bench_with_input(
                BenchmarkId::new("ours", format!("{kib}KiB")),
                &size,
                |b, &s| b.iter(|| black_box(pair_ours(&set, black_box(s)))),
            );
            g.bench_with_input(
                BenchmarkId::new("upstream_style", format!("{kib}KiB")),
                &size,
                |b, &s| b.iter(|| black_box(pair_upstream(&up, black_box(s)))),
            );
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200));
    targets = bench
}
criterion_main!(benches);
