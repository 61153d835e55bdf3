// SPDX-License-Identifier: GPL-2.0
/*
 * sysfs attributes in the module's own directory (/sys/module/<name>/) whose show and store
 * call into Rust (kext/sysfs.rs). They stay writable under lockdown, where debugfs does not.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/version.h>

#include "helpers.h"

/*
 * Files in a module's kobject are module attributes: the kobject's sysfs_ops
 * (module_attr_show/store) take their container. Their callbacks gained a const
 * in 6.14.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 14, 0)
#define XENDMA_MODATTR const
#else
#define XENDMA_MODATTR
#endif

struct xendma_sysfs_file {
	struct module_attribute attr;
	const void *ctx;
	unsigned int id;
	xendma_debugfs_show_t show;
	xendma_debugfs_store_t store;
};

static ssize_t xendma_sysfs_show(XENDMA_MODATTR struct module_attribute *attr,
				 struct module_kobject *mk, char *buf)
{
	const struct xendma_sysfs_file *f = container_of(attr, struct xendma_sysfs_file, attr);

	if (!f->show)
		return -EINVAL;
	return f->show(f->ctx, f->id, buf, PAGE_SIZE);
}

static ssize_t xendma_sysfs_store(XENDMA_MODATTR struct module_attribute *attr,
				  struct module_kobject *mk, const char *buf, size_t count)
{
	const struct xendma_sysfs_file *f = container_of(attr, struct xendma_sysfs_file, attr);
	int ret;

	if (!f->store)
		return -EINVAL;
	/* The same limit as the debugfs files: one name or value per write. */
	if (count == 0 || count >= 128)
		return -EINVAL;
	/* sysfs hands a NUL-terminated copy of the write. */
	ret = f->store(f->ctx, f->id, buf, count);
	return ret ? ret : count;
}

struct xendma_sysfs_file *xendma_sysfs_file_create(const char *name, unsigned short mode,
						    const void *ctx, unsigned int id,
						    xendma_debugfs_show_t show,
						    xendma_debugfs_store_t store)
{
	struct xendma_sysfs_file *f = kzalloc(sizeof(*f), GFP_KERNEL);
	int err;

	if (!f)
		return ERR_PTR(-ENOMEM);
	sysfs_attr_init(&f->attr.attr);
	f->attr.attr.name = name;
	f->attr.attr.mode = mode;
	f->attr.show = xendma_sysfs_show;
	f->attr.store = xendma_sysfs_store;
	f->ctx = ctx;
	f->id = id;
	f->show = show;
	f->store = store;
	err = sysfs_create_file(&THIS_MODULE->mkobj.kobj, &f->attr.attr);
	if (err) {
		kfree(f);
		return ERR_PTR(err);
	}
	return f;
}

void xendma_sysfs_file_remove(struct xendma_sysfs_file *file)
{
	/* Waits for shows and stores in progress (kernfs drains active references). */
	sysfs_remove_file(&THIS_MODULE->mkobj.kobj, &file->attr.attr);
	kfree(file);
}
