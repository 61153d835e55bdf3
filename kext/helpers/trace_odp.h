/* SPDX-License-Identifier: GPL-2.0 */
/*
 * odp_umem's trace events (system "odp_umem"): every fault-in, every invalidation that reached a
 * umem, every page DMA-mapped. Defined once, in trace_odp.c; the Rust code calls them through the
 * xendma_trace_odp_* wrappers there (kext/trace.rs).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM odp_umem

#if !defined(_XENDMA_TRACE_ODP_H) || defined(TRACE_HEADER_MULTI_READ)
#define _XENDMA_TRACE_ODP_H

#include <linux/mmu_notifier.h>
#include <linux/tracepoint.h>

/* As in trace_swiotlb.h: the constants as numbers in the format files, for user-space decoders. */
TRACE_DEFINE_ENUM(MMU_NOTIFY_UNMAP);
TRACE_DEFINE_ENUM(MMU_NOTIFY_CLEAR);
TRACE_DEFINE_ENUM(MMU_NOTIFY_PROTECTION_VMA);
TRACE_DEFINE_ENUM(MMU_NOTIFY_PROTECTION_PAGE);
TRACE_DEFINE_ENUM(MMU_NOTIFY_SOFT_DIRTY);
TRACE_DEFINE_ENUM(MMU_NOTIFY_RELEASE);
TRACE_DEFINE_ENUM(MMU_NOTIFY_MIGRATE);
TRACE_DEFINE_ENUM(MMU_NOTIFY_EXCLUSIVE);

#define XENDMA_TRACE_MMU_EVENT                                                             \
	{ MMU_NOTIFY_UNMAP, "unmap" }, { MMU_NOTIFY_CLEAR, "clear" },                       \
	{ MMU_NOTIFY_PROTECTION_VMA, "protection_vma" },                                   \
	{ MMU_NOTIFY_PROTECTION_PAGE, "protection_page" },                                 \
	{ MMU_NOTIFY_SOFT_DIRTY, "soft_dirty" }, { MMU_NOTIFY_RELEASE, "release" },         \
	{ MMU_NOTIFY_MIGRATE, "migrate" }, { MMU_NOTIFY_EXCLUSIVE, "exclusive" }

TRACE_EVENT(fault,
	TP_PROTO(u64 start, u64 end, u64 pages, u32 retries, u64 mapped, int ret),
	TP_ARGS(start, end, pages, retries, mapped, ret),
	TP_STRUCT__entry(
		__field(u64, start)
		__field(u64, end)
		__field(u64, pages)
		__field(u32, retries)
		__field(u64, mapped)
		__field(int, ret)
	),
	TP_fast_assign(
		__entry->start = start;
		__entry->end = end;
		__entry->pages = pages;
		__entry->retries = retries;
		__entry->mapped = mapped;
		__entry->ret = ret;
	),
	TP_printk("start=0x%llx end=0x%llx pages=%llu retries=%u mapped=%llu ret=%d",
		  __entry->start, __entry->end, __entry->pages, __entry->retries, __entry->mapped,
		  __entry->ret)
);

TRACE_EVENT(invalidate,
	TP_PROTO(u64 start, u64 end, int event, u64 unmapped),
	TP_ARGS(start, end, event, unmapped),
	TP_STRUCT__entry(
		__field(u64, start)
		__field(u64, end)
		__field(int, event)
		__field(u64, unmapped)
	),
	TP_fast_assign(
		__entry->start = start;
		__entry->end = end;
		__entry->event = event;
		__entry->unmapped = unmapped;
	),
	TP_printk("start=0x%llx end=0x%llx event=%s unmapped=%llu", __entry->start, __entry->end,
		  __print_symbolic(__entry->event, XENDMA_TRACE_MMU_EVENT), __entry->unmapped)
);

TRACE_EVENT(map_page,
	TP_PROTO(u64 addr, u64 dma, bool writable),
	TP_ARGS(addr, dma, writable),
	TP_STRUCT__entry(
		__field(u64, addr)
		__field(u64, dma)
		__field(bool, writable)
	),
	TP_fast_assign(
		__entry->addr = addr;
		__entry->dma = dma;
		__entry->writable = writable;
	),
	TP_printk("addr=0x%llx dma=0x%llx access=%s", __entry->addr, __entry->dma,
		  __entry->writable ? "rw" : "r")
);

#endif /* _XENDMA_TRACE_ODP_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace_odp
#include <trace/define_trace.h>
