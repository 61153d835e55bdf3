/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface of /dev/odp_umem_cdrv (selftests/odp_cdrv/odp_umem_cdrv.c), shared by the module
 * and the test program (selftests/progs/odp_cdrv_test.c).
 */
#ifndef ODP_UMEM_CDRV_H
#define ODP_UMEM_CDRV_H

#include <linux/ioctl.h>
#include <linux/types.h>

struct odp_cdrv_xfer {
	__u64 addr;	/* user address */
	__u64 len;	/* bytes */
	__u64 out;	/* READ: where the bytes the device read go */
	__u32 flags;	/* REG: ODP_UMEM_READ/WRITE; WRITE, READ: ODP_CDRV_NOSYNC or 0 */
	__u32 seed;	/* WRITE: the pattern */
};

/* The negative control: no odp_umem_sync_for_cpu after the device writes (WRITE), no
 * odp_umem_sync_for_device before it reads (READ). */
#define ODP_CDRV_NOSYNC 0x100U
/* The longest WRITE or READ (each 2 KiB takes the device two transfers of 100 ms). */
#define ODP_CDRV_MAX_XFER (64U * 1024)

#define ODP_CDRV_REG _IOW('O', 0x40, struct odp_cdrv_xfer)
#define ODP_CDRV_WRITE _IOW('O', 0x41, struct odp_cdrv_xfer)
#define ODP_CDRV_READ _IOW('O', 0x42, struct odp_cdrv_xfer)
#define ODP_CDRV_UNMAP _IOW('O', 0x43, struct odp_cdrv_xfer)
/* Returns the invalidations the file's umem was told of. */
#define ODP_CDRV_INVALIDATIONS _IO('O', 0x44)

/* Byte i of the pattern of seed s. */
static inline __u8 odp_cdrv_pattern(__u32 s, __u64 i)
{
	return (__u8)((s * 2654435761U) ^ (i * 131U) ^ (i >> 8));
}

#endif
