// SPDX-License-Identifier: GPL-2.0
#include "helpers.c"

/*
 * The C API of odp_umem (include/odp_umem.h): exported wrappers of the Rust functions in
 * ffi/odp_abi.rs (a Rust module of 6.12 cannot export symbols itself).
 */
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/export.h>

#include "../include/odp_umem.h"

struct odp_umem *xendma_odp_abi_get(struct device *dev, unsigned long start, size_t len,
				    unsigned int page_shift, unsigned int access,
				    odp_umem_invalidate_t invalidate, void *priv, int *err);
int xendma_odp_abi_map_and_lock(struct odp_umem *umem, unsigned long addr, size_t len,
				unsigned int access);
void xendma_odp_abi_unlock(struct odp_umem *umem);
u64 xendma_odp_abi_dma_addr(struct odp_umem *umem, unsigned long addr);
int xendma_odp_abi_unmap(struct odp_umem *umem, unsigned long addr, size_t len);
void xendma_odp_abi_release(struct odp_umem *umem);

struct odp_umem *odp_umem_get(struct device *dev, unsigned long start, size_t len,
			      unsigned int page_shift, unsigned int access,
			      odp_umem_invalidate_t invalidate, void *priv)
{
	int err = -ENOMEM;
	struct odp_umem *umem;

	might_sleep();
	umem = xendma_odp_abi_get(dev, start, len, page_shift, access, invalidate, priv, &err);
	return umem ? umem : ERR_PTR(err);
}
EXPORT_SYMBOL_GPL(odp_umem_get);

int odp_umem_map_and_lock(struct odp_umem *umem, unsigned long addr, size_t len,
			  unsigned int access)
{
	might_sleep();
	return xendma_odp_abi_map_and_lock(umem, addr, len, access);
}
EXPORT_SYMBOL_GPL(odp_umem_map_and_lock);

void odp_umem_unlock(struct odp_umem *umem)
{
	xendma_odp_abi_unlock(umem);
}
EXPORT_SYMBOL_GPL(odp_umem_unlock);

dma_addr_t odp_umem_dma_addr(struct odp_umem *umem, unsigned long addr)
{
	return xendma_odp_abi_dma_addr(umem, addr);
}
EXPORT_SYMBOL_GPL(odp_umem_dma_addr);

int odp_umem_unmap(struct odp_umem *umem, unsigned long addr, size_t len)
{
	might_sleep();
	return xendma_odp_abi_unmap(umem, addr, len);
}
EXPORT_SYMBOL_GPL(odp_umem_unmap);

void odp_umem_release(struct odp_umem *umem)
{
	might_sleep();
	xendma_odp_abi_release(umem);
}
EXPORT_SYMBOL_GPL(odp_umem_release);
