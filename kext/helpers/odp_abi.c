// SPDX-License-Identifier: GPL-2.0
/*
 * The C API of odp_umem (include/odp_umem.h): exported functions that call the Rust
 * implementation through a table that kext/odp_abi.rs registers at module init (a Rust module
 * of 6.12 cannot export symbols itself).
 */
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/export.h>

#include "helpers.h"
#include "../../include/odp_umem.h"

static const struct xendma_odp_abi_ops *xendma_odp_abi;

void xendma_odp_abi_set_ops(const struct xendma_odp_abi_ops *ops)
{
	WRITE_ONCE(xendma_odp_abi, ops);
}

struct odp_umem *odp_umem_get(struct device *dev, unsigned long start, size_t len,
			      unsigned int page_shift, unsigned int access,
			      odp_umem_invalidate_t invalidate, void *priv)
{
	const struct xendma_odp_abi_ops *ops = READ_ONCE(xendma_odp_abi);
	int err = -ENOMEM;
	void *umem;

	might_sleep();
	if (!ops)
		return ERR_PTR(-ENODEV);
	umem = ops->get(dev, start, len, page_shift, access, invalidate, priv, &err);
	return umem ? umem : ERR_PTR(err);
}
EXPORT_SYMBOL_GPL(odp_umem_get);

/* A umem exists only while the table does (see kext/odp_abi.rs), so these need no check. */
int odp_umem_map_and_lock(struct odp_umem *umem, unsigned long addr, size_t len,
			  unsigned int access)
{
	might_sleep();
	return READ_ONCE(xendma_odp_abi)->map_and_lock(umem, addr, len, access);
}
EXPORT_SYMBOL_GPL(odp_umem_map_and_lock);

void odp_umem_unlock(struct odp_umem *umem)
{
	READ_ONCE(xendma_odp_abi)->unlock(umem);
}
EXPORT_SYMBOL_GPL(odp_umem_unlock);

dma_addr_t odp_umem_dma_addr(struct odp_umem *umem, unsigned long addr)
{
	return READ_ONCE(xendma_odp_abi)->dma_addr(umem, addr);
}
EXPORT_SYMBOL_GPL(odp_umem_dma_addr);

int odp_umem_unmap(struct odp_umem *umem, unsigned long addr, size_t len)
{
	might_sleep();
	return READ_ONCE(xendma_odp_abi)->unmap(umem, addr, len);
}
EXPORT_SYMBOL_GPL(odp_umem_unmap);

int odp_umem_sync_for_cpu(struct odp_umem *umem, unsigned long addr, size_t len)
{
	return READ_ONCE(xendma_odp_abi)->sync(umem, addr, len, true);
}
EXPORT_SYMBOL_GPL(odp_umem_sync_for_cpu);

int odp_umem_sync_for_device(struct odp_umem *umem, unsigned long addr, size_t len)
{
	return READ_ONCE(xendma_odp_abi)->sync(umem, addr, len, false);
}
EXPORT_SYMBOL_GPL(odp_umem_sync_for_device);

void odp_umem_release(struct odp_umem *umem)
{
	might_sleep();
	/* Like an error path's kfree(): nothing for NULL, nor for what odp_umem_get refused. */
	if (!IS_ERR_OR_NULL(umem))
		READ_ONCE(xendma_odp_abi)->release(umem);
}
EXPORT_SYMBOL_GPL(odp_umem_release);
