// SPDX-License-Identifier: GPL-2.0
/*
 * PCI: the device of a pci_dev, a driver with one ID whose probe and remove call
 * into Rust, driver data, BAR lengths, MMIO accessors, the device lock.
 */
#include <linux/io.h>
#include <linux/pci.h>
#include <linux/slab.h>

#include "helpers.h"

struct device *xendma_pci_dev_device(struct pci_dev *pdev)
{
	return &pdev->dev;
}

struct xendma_pci_driver {
	struct pci_driver drv;
	struct pci_device_id ids[2];
	xendma_pci_probe_t probe;
	xendma_pci_remove_t remove;
};

static int xendma_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct xendma_pci_driver *d = container_of(pdev->driver, struct xendma_pci_driver, drv);
	int rc = pci_enable_device(pdev);

	if (rc)
		return rc;
	pci_set_master(pdev);
	rc = d->probe(pdev);
	if (rc) {
		pci_clear_master(pdev);
		pci_disable_device(pdev);
	}
	return rc;
}

static void xendma_pci_remove(struct pci_dev *pdev)
{
	struct xendma_pci_driver *d = container_of(pdev->driver, struct xendma_pci_driver, drv);

	d->remove(pdev);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
}

struct xendma_pci_driver *xendma_pci_driver_register(const char *name, u16 vendor, u16 device,
						     xendma_pci_probe_t probe,
						     xendma_pci_remove_t remove,
						     struct module *owner)
{
	struct xendma_pci_driver *d = kzalloc(sizeof(*d), GFP_KERNEL);
	int rc;

	if (!d)
		return ERR_PTR(-ENOMEM);
	d->ids[0].vendor = vendor;
	d->ids[0].device = device;
	d->ids[0].subvendor = PCI_ANY_ID;
	d->ids[0].subdevice = PCI_ANY_ID;
	d->probe = probe;
	d->remove = remove;
	d->drv.name = name;
	d->drv.id_table = d->ids;
	d->drv.probe = xendma_pci_probe;
	d->drv.remove = xendma_pci_remove;
	rc = __pci_register_driver(&d->drv, owner, name);
	if (rc) {
		kfree(d);
		return ERR_PTR(rc);
	}
	return d;
}

void xendma_pci_driver_unregister(struct xendma_pci_driver *d)
{
	pci_unregister_driver(&d->drv);
	kfree(d);
}

bool xendma_pci_driven_by(struct pci_dev *pdev, const struct xendma_pci_driver *d)
{
	return pdev->driver == &d->drv;
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
