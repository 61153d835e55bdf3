// SPDX-License-Identifier: GPL-2.0
/*
 * The C helpers that xen_swiotlb_rs.ko links: one translation unit per module, so that each
 * module carries only the helpers of the subsystems it uses (kext/mod.rs gates the Rust side
 * with the same split).
 */
#include "helpers/sync.c"
#include "helpers/percpu.c"
#include "helpers/device.c"
#include "helpers/page.c"
#include "helpers/dma.c"
#include "helpers/dma_ops.c"
#include "helpers/debugfs.c"
#include "helpers/sysfs.c"
#include "helpers/xen.c"
#include "helpers/params.c"
#ifdef XENDMA_TESTDEV
#include "helpers/pci.c"
#endif
#ifdef XENDMA_KUNIT
#include "helpers/kunit.c"
#endif
/* Last: it defines the trace points (CREATE_TRACE_POINTS) of its header only. */
#include "helpers/trace_swiotlb.c"
