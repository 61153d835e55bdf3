// SPDX-License-Identifier: GPL-2.0
/*
 * PCI: what is static inline in 6.12 (the device of a pci_dev, driver data, BAR lengths,
 * MMIO accessors). The struct pci_driver itself is built in Rust (kext/pci.rs).
 */
#include <linux/io.h>
#include <linux/pci.h>

#include "helpers.h"

struct device *xendma_pci_dev_device(struct pci_dev *pdev)
{
	return &pdev->dev;
}

void *xendma_pci_get_drvdata(struct pci_dev *pdev)
{
	return pci_get_drvdata(pdev);
}

void xendma_pci_set_drvdata(struct pci_dev *pdev, void *data)
{
	pci_set_drvdata(pdev, data);
}

u64 xendma_pci_resource_len(struct pci_dev *pdev, int bar)
{
	if (bar < 0 || bar >= PCI_STD_NUM_BARS)
		return 0;
	return pci_resource_len(pdev, bar);
}

u32 xendma_mmio_read32(void __iomem *base, unsigned long offset)
{
	return readl(base + offset);
}

void xendma_mmio_write32(void __iomem *base, unsigned long offset, u32 value)
{
	writel(value, base + offset);
}

void xendma_mmio_write64(void __iomem *base, unsigned long offset, u64 value)
{
	writeq(value, base + offset);
}
