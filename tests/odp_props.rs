// SPDX-License-Identifier: GPL-2.0

//! Property tests of `odp_umem`'s range arithmetic against a byte-level reference model.

use proptest::prelude::*;
use xendma_logic::odp::{
    chunks, Access, ArgError, DmaEntry, PageSize, Region, BASE_SIZE, MAX_REGION_PAGES, USER_END,
};

fn page_size() -> impl Strategy<Value = PageSize> {
    prop_oneof![Just(PageSize::Base), Just(PageSize::Huge)]
}

/// Reference: base page `i` of region `r` is in the span iff its unit overlaps `[s, e)`.
fn model_touches(r: &Region, i: usize, s: u64, e: u64) -> bool {
    let unit = r.page_size().bytes();
    let page = r.page_addr(i);
    let ustart = r.start() + ((page - r.start()) / unit) * unit;
    let uend = ustart + unit;
    ustart < e && s < uend && s < r.end() && r.start() < e
}

proptest! {
    #[test]
    fn region_new_matches_model(start in prop_oneof![0u64..1 << 40, any::<u64>()],
                                len in prop_oneof![0u64..1 << 24, any::<u64>()],
                                ps in page_size()) {
        let got = Region::new(start, len, ps, Access::RW);
        let unit = ps.bytes();
        let want = if len == 0 || start % unit != 0 || len % unit != 0 {
            Err(ArgError::Invalid)
        } else if start.checked_add(len).map_or(true, |e| e > USER_END) {
            Err(ArgError::Overflow)
        } else if len / BASE_SIZE > MAX_REGION_PAGES {
            Err(ArgError::TooBig)
        } else {
            Ok(())
        };
        prop_assert_eq!(got.map(|_| ()), want);
    }

    #[test]
    fn intersect_matches_model(units in 1u64..6, first in 0u64..1 << 20, ps in page_size(),
                               a in 0u64..1 << 24, b in 0u64..1 << 24) {
        let unit = ps.bytes();
        let r = Region::new(first * unit, units * unit, ps, Access::READ).unwrap();
        let s = r.start().saturating_sub(unit) + a % ((units + 2) * unit);
        let e = s + 1 + b % ((units + 2) * unit);
        let span = r.intersect(s, e);
        for i in 0..r.base_pages() {
            let inside = span.is_some_and(|sp| i >= sp.first && i < sp.end());
            prop_assert_eq!(inside, model_touches(&r, i, s, e), "page {}", i);
        }
    }

    #[test]
    fn fault_span_covers_exactly(units in 1u64..6, ps in page_size(), off in 0u64..1 << 23,
                                 len in 1u64..1 << 23) {
        let unit = ps.bytes();
        let r = Region::new(unit, units * unit, ps, Access::READ).unwrap();
        let addr = r.start() + off;
        match r.fault_span(addr, len, Access::READ) {
            Ok(sp) => {
                prop_assert!(addr + len <= r.end());
                prop_assert_eq!(Some(sp), r.intersect(addr, addr + len));
                prop_assert_eq!(sp.first as u64 % ps.base_pages(), 0);
                prop_assert_eq!(sp.count as u64 % ps.base_pages(), 0);
            }
            Err(e) => {
                prop_assert_eq!(e, ArgError::OutOfRange);
                prop_assert!(addr + len > r.end());
            }
        }
    }

    #[test]
    fn chunks_tile_the_range(addr in 0u64..1 << 30, len in 0u64..70_000, max in 1u64..5000) {
        let mut at = addr;
        for (a, n) in chunks(addr, len, max) {
            prop_assert_eq!(a, at);
            prop_assert!(n > 0 && n <= max);
            prop_assert_eq!(a / BASE_SIZE, (a + n - 1) / BASE_SIZE);
            at += n;
        }
        prop_assert_eq!(at, addr + len);
    }

    #[test]
    fn entries_round_trip(page in 0u64..1 << 40, rights in 1u8..4) {
        let access = match rights { 1 => Access::READ, 2 => Access::WRITE, _ => Access::RW };
        let e = DmaEntry::new(page << 12, access).unwrap();
        prop_assert_eq!(e.bus(), Some(page << 12));
        prop_assert_eq!(e.access(), access);
        prop_assert_eq!(e.dirty_on_unmap(), access.writable());
    }
}
