/* SPDX-License-Identifier: GPL-2.0 */
/*
 * xendma_bench: the ioctl interface of the benchmark driver (bench/kmod/xendma_bench.c), shared
 * with its user-space program (bench/prog/xendma_bench.c). Every argument is an array of __u64.
 */
#ifndef XENDMA_BENCH_H
#define XENDMA_BENCH_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define XENDMA_BENCH_DEV "/dev/xendma_bench"

/*
 * MEMCPY: in  [0] bytes per copy, [1] threads (one per CPU), [2] milliseconds,
 *             [3] bit 0 clear: the same destination every time (hot), set: destinations
 *                 rotating through 32 MiB (cold, like a pool whose slots rotate); bit 1 clear:
 *                 memcpy() as GCC expands it inline (as in kernel/dma/swiotlb.c), set: a call
 *                 of the kernel's out-of-line memcpy() (what Rust's copy_nonoverlapping calls)
 *         out [4] copies made (all threads), [5] picoseconds per copy (mean over threads)
 */
#define XB_MEMCPY _IOWR('X', 1, __u64[6])

/*
 * PRESSURE: in  [0] PCI domain, [1] bus, [2] devfn, [3] pool slots (2 KiB each),
 *               [4] target occupancy in percent, [5] milliseconds, [6] random seed
 *           out [7] map attempts, [8] failed maps, [9] successful maps per second,
 *               [10] slots held at the end (our accounting), [11] mappings held at the end,
 *               [12] failures while filling to the target
 * Mixed-size DMA_TO_DEVICE dma_map_single() calls of 1..32 pages are held outstanding up to the
 * target occupancy; then, for the duration, one random mapping is unmapped and the pool is
 * refilled to the target (at most 4 attempts per round).
 */
#define XB_PRESSURE _IOWR('X', 2, __u64[13])

/*
 * REGION: in [0] PCI domain, [1] bus, [2] devfn, [3] start, [4] length (page-aligned, at most
 * 64 MiB), [5] 1: also odp_umem_get(ODP_UMEM_READ) of it (0: GUP only, no notifier): the region
 * of the calling process the ODP and GUP calls below work on, and the device they map it for.
 */
#define XB_REGION _IOW('X', 3, __u64[6])
/*
 * ODP_FAULT: in [0] address, [1] length, [2] bytes per fault; out [3] nanoseconds.
 * odp_umem_map_and_lock() + odp_umem_dma_addr() of each page + odp_umem_unlock(), chunk by chunk.
 */
#define XB_ODP_FAULT _IOWR('X', 4, __u64[4])
/* ODP_UNMAP: in [0] address, [1] length: odp_umem_unmap(). */
#define XB_ODP_UNMAP _IOW('X', 5, __u64[2])
/* ODP_INVALIDATIONS: returns the number of invalidate callbacks so far. */
#define XB_ODP_INVALIDATIONS _IO('X', 6)
/* RELEASE: odp_umem_release() and unpin what is pinned; the region is forgotten. */
#define XB_RELEASE _IO('X', 7)
/*
 * GUP_PIN: in [0] address, [1] length, [2] bytes per call; out [3] nanoseconds.
 * pin_user_pages_fast() (read access) + dma_map_page() of each page, the pinned model's fault.
 */
#define XB_GUP_PIN _IOWR('X', 8, __u64[4])
/* GUP_UNPIN: in [0] address, [1] length; out [2] nanoseconds. dma_unmap_page() + unpin. */
#define XB_GUP_UNPIN _IOWR('X', 9, __u64[3])

/*
 * PLACE: in  [0] PCI domain, [1] bus, [2] devfn, [3] pages per mapping (1..64), [4] direction
 *            (0 bidirectional, 1 to-device, 2 from-device, as dma_map_benchmark's -d),
 *            [5] the buffer's offset in pages into a 4 MiB-aligned block of 4 MiB, [6] milliseconds
 *       out [7] map+unmap pairs made, [8] picoseconds per pair, [9] the last mapping's bus
 *           address, [10] the buffer's physical address, [11] distinct bus addresses seen (up to
 *           a count of 64), [12] picoseconds per map
 * dma_map_benchmark's loop (memset unless from-device, map, unmap, each timed with ktime) on a
 * buffer placed where the caller says: how a mapping's cost depends on where the pool puts it
 * relative to the buffer (Documentation/bench.rst, "Spells of the emulated machine").
 */
#define XB_PLACE _IOWR('X', 10, __u64[13])

#endif
