// SPDX-License-Identifier: GPL-2.0
/*
 * odp_umem's trace events (trace_odp.h), defined here, and the wrappers the Rust code calls
 * (kext/trace.rs).
 */
#define CREATE_TRACE_POINTS
#include "trace_odp.h"
#undef CREATE_TRACE_POINTS

void xendma_trace_odp_fault(u64 start, u64 end, u64 pages, u32 retries, u64 mapped, int ret)
{
	trace_fault(start, end, pages, retries, mapped, ret);
}

void xendma_trace_odp_invalidate(u64 start, u64 end, int event, u64 unmapped)
{
	trace_invalidate(start, end, event, unmapped);
}

void xendma_trace_odp_map_page(u64 addr, u64 dma, bool writable)
{
	trace_map_page(addr, dma, writable);
}
