/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ioctls of /dev/odp_umem, odp_umem's test device (selftests/kunit/odp_umem_testdev.rs,
 * Documentation/odp-umem.rst), for the programs that drive it.
 */
#ifndef XENDMA_ODP_UMEM_IOCTL_H
#define XENDMA_ODP_UMEM_IOCTL_H

#include <stdint.h>
#include <sys/ioctl.h>

#define ODP_REGISTER _IOWR('O', 1, uint64_t[5])
#define ODP_UNREGISTER _IOW('O', 2, uint64_t)
#define ODP_READ _IOW('O', 3, uint64_t[5])
#define ODP_WRITE _IOW('O', 4, uint64_t[5])
#define ODP_STATS _IOWR('O', 5, uint64_t[7])
#define ODP_PARK_ARM _IO('O', 6)
#define ODP_PARK_WAIT _IO('O', 7)
#define ODP_PARK_RELEASE _IO('O', 8)
#define ODP_ABI_GET _IOW('O', 9, uint64_t[3])
#define ODP_ABI_MAP _IOWR('O', 10, uint64_t[4])
#define ODP_ABI_UNMAP _IOW('O', 11, uint64_t[2])
#define ODP_ABI_RELEASE _IO('O', 12)
#define ODP_ABI_INVALIDATIONS _IO('O', 13)
/* READ: through the mapping with the CPU instead of the edu device. */
#define ODP_XFER_CPU 1

#endif
