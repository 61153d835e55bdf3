/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xen_swiotlb_rs's trace events (system "xen_swiotlb_rs"): every bounce, every failed mapping,
 * every growth of the pool, every attach and detach. Defined once, in trace_swiotlb.c; the Rust
 * code calls them through the xendma_trace_* wrappers there (kext/trace.rs). Disabled, an event
 * costs the wrapper's call and a static branch.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM xen_swiotlb_rs

#if !defined(_XENDMA_TRACE_SWIOTLB_H) || defined(TRACE_HEADER_MULTI_READ)
#define _XENDMA_TRACE_SWIOTLB_H

#include <linux/device.h>
#include <linux/dma-direction.h>
#include <linux/tracepoint.h>

/*
 * The enum constants in the print formats are exported as numbers in the events' format files, so
 * that user-space decoders (trace-cmd, perf, libtraceevent) can print their names.
 */
TRACE_DEFINE_ENUM(DMA_BIDIRECTIONAL);
TRACE_DEFINE_ENUM(DMA_TO_DEVICE);
TRACE_DEFINE_ENUM(DMA_FROM_DEVICE);
TRACE_DEFINE_ENUM(DMA_NONE);

#define XENDMA_TRACE_DIR                                                                   \
	{ DMA_BIDIRECTIONAL, "BIDIRECTIONAL" }, { DMA_TO_DEVICE, "TO_DEVICE" },             \
	{ DMA_FROM_DEVICE, "FROM_DEVICE" }, { DMA_NONE, "NONE" }

/* Why a mapping was bounced (kext/trace.rs BounceReason). */
#define XENDMA_TRACE_BOUNCE_REASON                                                         \
	{ 1, "forced" }, { 2, "beyond_mask" }, { 3, "not_contiguous" }, { 4, "no_translation" }

/* Why a mapping failed (kext/trace.rs MapFailure). */
#define XENDMA_TRACE_FAIL_REASON                                                           \
	{ 1, "pool_exhausted" }, { 2, "too_large" }, { 3, "out_of_reach" }, { 4, "invalid" }

TRACE_EVENT(bounced,
	TP_PROTO(struct device *dev, u64 phys, u64 bounce, size_t size, int dir, unsigned int reason),
	TP_ARGS(dev, phys, bounce, size, dir, reason),
	TP_STRUCT__entry(
		__string(dev, dev_name(dev))
		__field(u64, phys)
		__field(u64, bounce)
		__field(size_t, size)
		__field(int, dir)
		__field(unsigned int, reason)
	),
	TP_fast_assign(
		__assign_str(dev);
		__entry->phys = phys;
		__entry->bounce = bounce;
		__entry->size = size;
		__entry->dir = dir;
		__entry->reason = reason;
	),
	TP_printk("dev=%s phys=0x%llx bounce=0x%llx size=%zu dir=%s reason=%s", __get_str(dev),
		  __entry->phys, __entry->bounce, __entry->size,
		  __print_symbolic(__entry->dir, XENDMA_TRACE_DIR),
		  __print_symbolic(__entry->reason, XENDMA_TRACE_BOUNCE_REASON))
);

TRACE_EVENT(map_failed,
	TP_PROTO(struct device *dev, size_t size, unsigned int reason, u64 used_slots, u64 slots),
	TP_ARGS(dev, size, reason, used_slots, slots),
	TP_STRUCT__entry(
		__string(dev, dev_name(dev))
		__field(size_t, size)
		__field(unsigned int, reason)
		__field(u64, used_slots)
		__field(u64, slots)
	),
	TP_fast_assign(
		__assign_str(dev);
		__entry->size = size;
		__entry->reason = reason;
		__entry->used_slots = used_slots;
		__entry->slots = slots;
	),
	TP_printk("dev=%s size=%zu reason=%s used_slots=%llu slots=%llu", __get_str(dev),
		  __entry->size, __print_symbolic(__entry->reason, XENDMA_TRACE_FAIL_REASON),
		  __entry->used_slots, __entry->slots)
);

TRACE_EVENT(pool_grow,
	TP_PROTO(u64 bytes, bool worker, unsigned int min_bits, unsigned int max_bits, u64 duration_us,
		 u64 pool_bytes),
	TP_ARGS(bytes, worker, min_bits, max_bits, duration_us, pool_bytes),
	TP_STRUCT__entry(
		__field(u64, bytes)
		__field(bool, worker)
		__field(unsigned int, min_bits)
		__field(unsigned int, max_bits)
		__field(u64, duration_us)
		__field(u64, pool_bytes)
	),
	TP_fast_assign(
		__entry->bytes = bytes;
		__entry->worker = worker;
		__entry->min_bits = min_bits;
		__entry->max_bits = max_bits;
		__entry->duration_us = duration_us;
		__entry->pool_bytes = pool_bytes;
	),
	TP_printk("bytes=%llu by=%s min_bits=%u max_bits=%u duration_us=%llu pool_bytes=%llu",
		  __entry->bytes, __entry->worker ? "worker" : "mapping", __entry->min_bits,
		  __entry->max_bits, __entry->duration_us, __entry->pool_bytes)
);

DECLARE_EVENT_CLASS(xendma_dev_event,
	TP_PROTO(const char *dev, int ret),
	TP_ARGS(dev, ret),
	TP_STRUCT__entry(
		__string(dev, dev)
		__field(int, ret)
	),
	TP_fast_assign(
		__assign_str(dev);
		__entry->ret = ret;
	),
	TP_printk("dev=%s ret=%d", __get_str(dev), __entry->ret)
);

DEFINE_EVENT(xendma_dev_event, attach, TP_PROTO(const char *dev, int ret), TP_ARGS(dev, ret));
DEFINE_EVENT(xendma_dev_event, detach, TP_PROTO(const char *dev, int ret), TP_ARGS(dev, ret));

#endif /* _XENDMA_TRACE_SWIOTLB_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace_swiotlb
#include <trace/define_trace.h>
