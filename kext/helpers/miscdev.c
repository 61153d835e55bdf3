// SPDX-License-Identifier: GPL-2.0
/*
 * Misc devices: a dynamic-minor device whose file operations call into Rust.
 */
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/slab.h>

#include "helpers.h"

struct xendma_misc {
	struct miscdevice misc;
	struct file_operations fops;
	struct kref ref;
	void *ctx;
	xendma_misc_open_t open;
	xendma_misc_release_t release;
	xendma_misc_mmap_t mmap;
	xendma_misc_ioctl_t ioctl;
};

/* What each open file holds: its Rust data and a reference on the C object. */
struct xendma_misc_file {
	struct xendma_misc *m;
	void *data;
};

static void xendma_misc_free(struct kref *ref)
{
	kfree(container_of(ref, struct xendma_misc, ref));
}

static int xendma_misc_fop_open(struct inode *inode, struct file *file)
{
	/* misc_open() stored the miscdevice here, under misc_mtx, which deregistration also takes. */
	struct xendma_misc *m = container_of(file->private_data, struct xendma_misc, misc);
	struct xendma_misc_file *f = kzalloc(sizeof(*f), GFP_KERNEL);
	int err = -ENOMEM;

	if (!f)
		return -ENOMEM;
	f->data = m->open(m->ctx, &err);
	if (!f->data) {
		kfree(f);
		return err;
	}
	kref_get(&m->ref);
	f->m = m;
	file->private_data = f;
	return 0;
}

static int xendma_misc_fop_release(struct inode *inode, struct file *file)
{
	struct xendma_misc_file *f = file->private_data;
	struct xendma_misc *m = f->m;

	m->release(f->data);
	kfree(f);
	kref_put(&m->ref, xendma_misc_free);
	return 0;
}

static int xendma_misc_fop_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct xendma_misc_file *f = file->private_data;

	return f->m->mmap(f->data, vma);
}

static long xendma_misc_fop_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct xendma_misc_file *f = file->private_data;

	return f->m->ioctl(f->data, cmd, arg);
}

struct xendma_misc *xendma_misc_register(const char *name, void *ctx, xendma_misc_open_t open,
					 xendma_misc_release_t release, xendma_misc_mmap_t mmap,
					 xendma_misc_ioctl_t ioctl, struct module *owner)
{
	struct xendma_misc *m = kzalloc(sizeof(*m), GFP_KERNEL);
	int rc;

	if (!m)
		return ERR_PTR(-ENOMEM);
	kref_init(&m->ref);
	m->ctx = ctx;
	m->open = open;
	m->release = release;
	m->mmap = mmap;
	m->ioctl = ioctl;
	m->fops.owner = owner;
	m->fops.open = xendma_misc_fop_open;
	m->fops.release = xendma_misc_fop_release;
	m->fops.mmap = xendma_misc_fop_mmap;
	m->fops.unlocked_ioctl = xendma_misc_fop_ioctl;
	m->fops.compat_ioctl = compat_ptr_ioctl;
	m->misc.minor = MISC_DYNAMIC_MINOR;
	m->misc.name = name;
	m->misc.fops = &m->fops;
	m->misc.mode = 0600;
	rc = misc_register(&m->misc);
	if (rc) {
		kfree(m);
		return ERR_PTR(rc);
	}
	return m;
}

void xendma_misc_deregister(struct xendma_misc *m)
{
	misc_deregister(&m->misc);
	kref_put(&m->ref, xendma_misc_free);
}
