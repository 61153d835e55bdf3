/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers for the module-local bindgen pass. The 6.12 `kernel` crate lacks
 * these interfaces (or has them incomplete); only the items allowlisted in
 * bindgen_parameters are generated, everything else comes from
 * kernel::bindings so that there is one `struct device` type, not two.
 */
#include <linux/debugfs.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/dmapool.h>
#include <linux/hmm.h>
#include <linux/miscdevice.h>
#include <linux/mmu_notifier.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/timekeeping.h>
#include <kunit/device.h>
#include <kunit/test.h>
#include <xen/interface/xen.h>
#include <xen/interface/memory.h>
#include <xen/interface/version.h>
#include <xen/xen.h>

#include "helpers/helpers.h"
#include "../include/odp_umem.h"
