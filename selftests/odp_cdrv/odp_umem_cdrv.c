// SPDX-License-Identifier: GPL-2.0
/*
 * odp_umem_cdrv: a C driver of QEMU's edu device that uses odp_umem only through its exported
 * C API (include/odp_umem.h), as an RDMA driver would. It is the test of that API: the device
 * really copies between a process's memory and its own buffer, through the bus addresses the
 * API gives, and the process checks the bytes.
 *
 * The edu device (1234:11e8) has a 4 KiB buffer at bus address 0x40000 of its own and copies
 * between it and RAM: registers 0x80 (source), 0x88 (destination), 0x90 (count), 0x98 (command:
 * bit 0 starts, bit 1 selects device-to-RAM; the device clears bit 0 when done). Its DMA mask is
 * 28 bits, so most of a guest's memory bounces.
 *
 * The driver binds every unclaimed edu device (one with no driver_override naming another
 * driver) and uses the first. /dev/odp_umem_cdrv, one umem per open file:
 *   ODP_CDRV_REG    register a range of the caller's memory (odp_umem_get)
 *   ODP_CDRV_WRITE  the device writes a pattern into it (RAM -> edu -> umem, then sync_for_cpu)
 *   ODP_CDRV_READ   the device reads it and hands the bytes back (sync_for_device, umem -> edu
 *                   -> RAM, then copy_to_user)
 *   ODP_CDRV_UNMAP  odp_umem_unmap
 * ODP_CDRV_NOSYNC leaves out the sync call: the negative control, which shows what a driver
 * without it gets when the page bounced.
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "../../include/odp_umem.h"
#include "odp_umem_cdrv.h"

#define EDU_REG_ID 0x00
#define EDU_REG_DMA_SRC 0x80
#define EDU_REG_DMA_DST 0x88
#define EDU_REG_DMA_COUNT 0x90
#define EDU_REG_DMA_CMD 0x98
#define EDU_CMD_RUN 1U
#define EDU_CMD_TO_RAM 2U
#define EDU_BUF_BUS 0x40000ULL
/* QEMU 7.2 mishandles a transfer of the whole 4 KiB buffer. */
#define EDU_MAX_XFER 2048U
/* A transfer takes QEMU 100 ms of virtual time; give it much more. */
#define EDU_TIMEOUT_MS 5000U

/*
 * A bound edu device. Open files hold a reference (kref); the device's resources (BAR, staging
 * buffer) are managed and go at unbind, before which remove() releases every file's umem and
 * marks the files gone, so that no transfer outlives the binding.
 */
struct cdrv_dev {
	struct kref ref;
	struct pci_dev *pdev;
	void __iomem *bar;
	void *buf;		/* coherent staging buffer, EDU_MAX_XFER bytes */
	dma_addr_t buf_bus;
	struct mutex lock;	/* one transfer at a time */
	struct list_head files;	/* under cdrv_devs_lock */
};

/* Lock order: cdrv_devs_lock, then a file's lock, then a device's lock. */
static DEFINE_MUTEX(cdrv_devs_lock);
static struct cdrv_dev *cdrv_bound;	/* the one device bound; under cdrv_devs_lock */

struct cdrv_file {
	struct mutex lock;	/* the fields below */
	struct odp_umem *umem;
	struct cdrv_dev *dev;
	bool gone;		/* the device was unbound */
	struct list_head node;	/* in dev->files, under cdrv_devs_lock */
	atomic_t invalidations;
};

static void cdrv_dev_free(struct kref *ref)
{
	struct cdrv_dev *d = container_of(ref, struct cdrv_dev, ref);

	pci_dev_put(d->pdev);
	kfree(d);
}

static int edu_run(struct cdrv_dev *d, u64 src, u64 dst, u32 len, bool to_ram)
{
	unsigned int waited = 0;

	writeq(src, d->bar + EDU_REG_DMA_SRC);
	writeq(dst, d->bar + EDU_REG_DMA_DST);
	writeq(len, d->bar + EDU_REG_DMA_COUNT);
	writel(EDU_CMD_RUN | (to_ram ? EDU_CMD_TO_RAM : 0), d->bar + EDU_REG_DMA_CMD);
	while (readl(d->bar + EDU_REG_DMA_CMD) & EDU_CMD_RUN) {
		if (waited >= EDU_TIMEOUT_MS) {
			dev_err_ratelimited(&d->pdev->dev, "DMA of %u bytes timed out\n", len);
			return -ETIMEDOUT;
		}
		msleep(2);
		waited += 2;
	}
	return 0;
}

static void cdrv_invalidate(void *priv, unsigned long start, unsigned long end)
{
	struct cdrv_file *f = priv;

	atomic_inc(&f->invalidations);
}

static long cdrv_reg(struct cdrv_file *f, struct odp_cdrv_xfer *x)
{
	struct odp_umem *umem;

	if (f->umem)
		return -EBUSY;
	umem = odp_umem_get(&f->dev->pdev->dev, x->addr, x->len, 12, x->flags, cdrv_invalidate, f);
	if (IS_ERR(umem))
		return PTR_ERR(umem);
	f->umem = umem;
	return 0;
}

/* The next transfer at x->addr + done: within one page, at most what the device does at once. */
static u32 cdrv_chunk(const struct odp_cdrv_xfer *x, u64 done)
{
	u64 in_page = PAGE_SIZE - offset_in_page(x->addr + done);

	return min3(x->len - done, in_page, (u64)EDU_MAX_XFER);
}

/* The device writes x->len bytes of the pattern x->seed to [x->addr, x->addr + x->len). */
static long cdrv_write(struct cdrv_file *f, struct odp_cdrv_xfer *x)
{
	struct cdrv_dev *d = f->dev;
	u64 done = 0;
	int err;

	err = odp_umem_map_and_lock(f->umem, x->addr, x->len, ODP_UMEM_READ | ODP_UMEM_WRITE);
	if (err)
		return err;
	mutex_lock(&d->lock);
	while (done < x->len) {
		unsigned long a = x->addr + done;
		u32 n = cdrv_chunk(x, done);
		dma_addr_t bus = odp_umem_dma_addr(f->umem, a);
		u32 i;

		if (bus == DMA_MAPPING_ERROR) {
			err = -EFAULT;
			break;
		}
		for (i = 0; i < n; i++)
			((u8 *)d->buf)[i] = odp_cdrv_pattern(x->seed, done + i);
		err = edu_run(d, d->buf_bus, EDU_BUF_BUS, n, false);
		if (!err)
			err = edu_run(d, EDU_BUF_BUS, bus, n, true);
		if (!err && !(x->flags & ODP_CDRV_NOSYNC))
			err = odp_umem_sync_for_cpu(f->umem, a, n);
		if (err)
			break;
		done += n;
	}
	mutex_unlock(&d->lock);
	odp_umem_unlock(f->umem);
	return err;
}

/*
 * The device reads [x->addr, x->addr + x->len) and the bytes go to x->out, after the unlock: a
 * fault on user memory while the umem is locked could wait for an invalidation that waits for
 * the lock.
 */
static long cdrv_read(struct cdrv_file *f, struct odp_cdrv_xfer *x)
{
	struct cdrv_dev *d = f->dev;
	u64 done = 0;
	u8 *data;
	int err;

	data = kvmalloc(x->len, GFP_KERNEL);
	if (!data)
		return -ENOMEM;
	err = odp_umem_map_and_lock(f->umem, x->addr, x->len, ODP_UMEM_READ);
	if (err)
		goto out;
	mutex_lock(&d->lock);
	while (done < x->len) {
		unsigned long a = x->addr + done;
		u32 n = cdrv_chunk(x, done);
		dma_addr_t bus = odp_umem_dma_addr(f->umem, a);

		if (bus == DMA_MAPPING_ERROR) {
			err = -EFAULT;
			break;
		}
		if (!(x->flags & ODP_CDRV_NOSYNC))
			err = odp_umem_sync_for_device(f->umem, a, n);
		if (!err)
			err = edu_run(d, bus, EDU_BUF_BUS, n, false);
		if (!err)
			err = edu_run(d, EDU_BUF_BUS, d->buf_bus, n, true);
		if (err)
			break;
		memcpy(data + done, d->buf, n);
		done += n;
	}
	mutex_unlock(&d->lock);
	odp_umem_unlock(f->umem);
	if (!err && copy_to_user(u64_to_user_ptr(x->out), data, x->len))
		err = -EFAULT;
out:
	kvfree(data);
	return err;
}

static long cdrv_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct cdrv_file *f = file->private_data;
	struct odp_cdrv_xfer x;
	long ret;

	switch (cmd) {
	case ODP_CDRV_REG:
	case ODP_CDRV_WRITE:
	case ODP_CDRV_READ:
	case ODP_CDRV_UNMAP:
		break;
	case ODP_CDRV_INVALIDATIONS:
		return atomic_read(&f->invalidations);
	default:
		return -ENOTTY;
	}
	if (copy_from_user(&x, u64_to_user_ptr((u64)arg), sizeof(x)))
		return -EFAULT;
	if (cmd != ODP_CDRV_REG && (x.flags & ~ODP_CDRV_NOSYNC))
		return -EINVAL;
	/* Bounded: every transfer takes the device 100 ms. */
	if (cmd != ODP_CDRV_REG && cmd != ODP_CDRV_UNMAP && (!x.len || x.len > ODP_CDRV_MAX_XFER))
		return -EINVAL;
	mutex_lock(&f->lock);
	if (f->gone) {
		mutex_unlock(&f->lock);
		return -ENODEV;
	}
	if (!f->umem && cmd != ODP_CDRV_REG) {
		mutex_unlock(&f->lock);
		return -ENOENT;
	}
	switch (cmd) {
	case ODP_CDRV_REG:
		ret = cdrv_reg(f, &x);
		break;
	case ODP_CDRV_WRITE:
		ret = cdrv_write(f, &x);
		break;
	case ODP_CDRV_READ:
		ret = cdrv_read(f, &x);
		break;
	default:
		ret = odp_umem_unmap(f->umem, x.addr, x.len);
		break;
	}
	mutex_unlock(&f->lock);
	return ret;
}

static int cdrv_open(struct inode *inode, struct file *file)
{
	struct cdrv_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	atomic_set(&f->invalidations, 0);
	mutex_lock(&cdrv_devs_lock);
	f->dev = cdrv_bound;
	if (f->dev) {
		kref_get(&f->dev->ref);
		list_add(&f->node, &f->dev->files);
	}
	mutex_unlock(&cdrv_devs_lock);
	if (!f->dev) {
		kfree(f);
		return -ENODEV;
	}
	file->private_data = f;
	return 0;
}

static int cdrv_release(struct inode *inode, struct file *file)
{
	struct cdrv_file *f = file->private_data;

	mutex_lock(&cdrv_devs_lock);
	list_del(&f->node);
	mutex_unlock(&cdrv_devs_lock);
	odp_umem_release(f->umem);
	kref_put(&f->dev->ref, cdrv_dev_free);
	kfree(f);
	return 0;
}

static const struct file_operations cdrv_fops = {
	.owner = THIS_MODULE,
	.open = cdrv_open,
	.release = cdrv_release,
	.unlocked_ioctl = cdrv_ioctl,
};

static struct miscdevice cdrv_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "odp_umem_cdrv",
	.fops = &cdrv_fops,
};

static int cdrv_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct cdrv_dev *d;
	u32 ident;
	int err;

	/* One device is enough; leave the others to their drivers (silently: -ENODEV). */
	mutex_lock(&cdrv_devs_lock);
	err = cdrv_bound ? -ENODEV : 0;
	mutex_unlock(&cdrv_devs_lock);
	if (err)
		return err;
	err = pcim_enable_device(pdev);
	if (err)
		return err;
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	kref_init(&d->ref);
	mutex_init(&d->lock);
	INIT_LIST_HEAD(&d->files);
	d->pdev = pci_dev_get(pdev);
	err = -ENOMEM;
	d->bar = pcim_iomap(pdev, 0, 0);
	if (!d->bar)
		goto fail;
	ident = readl(d->bar + EDU_REG_ID);
	if ((ident & 0xff) != 0xed) {
		dev_warn(&pdev->dev, "not an edu device (identification %#x)\n", ident);
		err = -ENODEV;
		goto fail;
	}
	err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(28));
	if (err) {
		dev_warn(&pdev->dev, "the platform refuses a 28-bit DMA mask (%d)\n", err);
		goto fail;
	}
	err = -ENOMEM;
	d->buf = dmam_alloc_coherent(&pdev->dev, EDU_MAX_XFER, &d->buf_bus, GFP_KERNEL);
	if (!d->buf)
		goto fail;
	pci_set_master(pdev);
	pci_set_drvdata(pdev, d);
	mutex_lock(&cdrv_devs_lock);
	err = cdrv_bound ? -ENODEV : 0;
	if (!err)
		cdrv_bound = d;
	mutex_unlock(&cdrv_devs_lock);
	if (err)
		goto fail;
	dev_info(&pdev->dev, "odp_umem_cdrv: bound\n");
	return 0;
fail:
	kref_put(&d->ref, cdrv_dev_free);
	return err;
}

static void cdrv_remove(struct pci_dev *pdev)
{
	struct cdrv_dev *d = pci_get_drvdata(pdev);
	struct cdrv_file *f;

	/* Every open file gives up its umem (its pages stop being mapped for the device) now. */
	mutex_lock(&cdrv_devs_lock);
	cdrv_bound = NULL;
	list_for_each_entry(f, &d->files, node) {
		mutex_lock(&f->lock);
		odp_umem_release(f->umem);
		f->umem = NULL;
		f->gone = true;
		mutex_unlock(&f->lock);
	}
	mutex_unlock(&cdrv_devs_lock);
	pci_clear_master(pdev);
	kref_put(&d->ref, cdrv_dev_free);
}

static const struct pci_device_id cdrv_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, cdrv_ids);

static struct pci_driver cdrv_driver = {
	.name = "odp_umem_cdrv",
	.id_table = cdrv_ids,
	.probe = cdrv_probe,
	.remove = cdrv_remove,
};

static int __init cdrv_init(void)
{
	int err;

	/* An error path may release what odp_umem_get gave it: NULL or an ERR_PTR (no oops). */
	odp_umem_release(NULL);
	odp_umem_release(ERR_PTR(-EINVAL));
	err = pci_register_driver(&cdrv_driver);
	if (err)
		return err;
	err = misc_register(&cdrv_misc);
	if (err)
		pci_unregister_driver(&cdrv_driver);
	return err;
}

static void __exit cdrv_exit(void)
{
	misc_deregister(&cdrv_misc);
	pci_unregister_driver(&cdrv_driver);
}

module_init(cdrv_init);
module_exit(cdrv_exit);
MODULE_DESCRIPTION("A C driver of the edu device on odp_umem's C API (test)");
MODULE_LICENSE("GPL");
