// SPDX-License-Identifier: GPL-2.0
/*
 * The C helpers that odp_umem.ko links (see kext/xen_swiotlb_rs.c).
 */
#include "helpers/sync.c"
#include "helpers/device.c"
#include "helpers/page.c"
#include "helpers/dma.c"
#include "helpers/debugfs.c"
#include "helpers/mmu_notifier.c"
#include "helpers/odp_abi.c"
#ifdef XENDMA_TESTDEV
#include "helpers/xen.c"
#include "helpers/pci.c"
#endif
#ifdef XENDMA_KUNIT
#include "helpers/kunit.c"
#endif
/* Last: it defines the trace points (CREATE_TRACE_POINTS) of its header only. */
#include "helpers/trace_odp.c"
