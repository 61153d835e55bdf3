// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs: directories, and files whose read and write call into Rust.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "helpers.h"

struct xendma_debugfs_file {
	struct dentry *dentry;
	const void *ctx;
	unsigned int id;
	xendma_debugfs_show_t show;
	xendma_debugfs_store_t store;
};

/* Enough for the segment list of a 256 MiB pool (1024 lines). */
#define XENDMA_DEBUGFS_BUF (128 * 1024)

static ssize_t xendma_debugfs_read(struct file *file, char __user *ubuf, size_t count,
				   loff_t *ppos)
{
	struct xendma_debugfs_file *f = file->private_data;
	ssize_t ret;
	long len;
	char *buf;

	if (!f->show)
		return -EINVAL;
	buf = kvmalloc(XENDMA_DEBUGFS_BUF, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	len = f->show(f->ctx, f->id, buf, XENDMA_DEBUGFS_BUF);
	if (len < 0)
		ret = len;
	else
		ret = simple_read_from_buffer(ubuf, count, ppos, buf,
					      min_t(size_t, len, XENDMA_DEBUGFS_BUF));
	kvfree(buf);
	return ret;
}

static ssize_t xendma_debugfs_write(struct file *file, const char __user *ubuf, size_t count,
				    loff_t *ppos)
{
	struct xendma_debugfs_file *f = file->private_data;
	char buf[128];
	int ret;

	if (!f->store)
		return -EINVAL;
	if (*ppos != 0 || count == 0 || count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	ret = f->store(f->ctx, f->id, buf, count);
	if (ret)
		return ret;
	*ppos += count;
	return count;
}

static const struct file_operations xendma_debugfs_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = xendma_debugfs_read,
	.write = xendma_debugfs_write,
	.llseek = default_llseek,
};

struct xendma_debugfs_file *xendma_debugfs_file_create(const char *name, struct dentry *parent,
							unsigned short mode, const void *ctx,
							unsigned int id,
							xendma_debugfs_show_t show,
							xendma_debugfs_store_t store)
{
	struct xendma_debugfs_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return ERR_PTR(-ENOMEM);
	f->ctx = ctx;
	f->id = id;
	f->show = show;
	f->store = store;
	f->dentry = debugfs_create_file(name, mode, parent, f, &xendma_debugfs_fops);
	if (IS_ERR(f->dentry)) {
		long err = PTR_ERR(f->dentry);

		kfree(f);
		return ERR_PTR(err);
	}
	return f;
}

void xendma_debugfs_file_remove(struct xendma_debugfs_file *file)
{
	/* Waits for readers and writers in progress (debugfs file proxy). */
	debugfs_remove(file->dentry);
	kfree(file);
}

struct dentry *xendma_debugfs_dir(const char *name, struct dentry *parent)
{
	return debugfs_create_dir(name, parent);
}

void xendma_debugfs_dir_remove(struct dentry *dir)
{
	debugfs_remove(dir);
}
