// SPDX-License-Identifier: GPL-2.0
/*
 * Devices: the name, the bound driver, the device lock.
 */
#include <linux/device.h>

#include "helpers.h"

const char *xendma_dev_name(struct device *dev)
{
	return dev_name(dev);
}

bool xendma_dev_has_driver(struct device *dev)
{
	return READ_ONCE(dev->driver) != NULL;
}

void xendma_device_lock(struct device *dev)
{
	device_lock(dev);
}

void xendma_device_unlock(struct device *dev)
{
	device_unlock(dev);
}
