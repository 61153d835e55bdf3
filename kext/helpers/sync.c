// SPDX-License-Identifier: GPL-2.0
/*
 * Synchronisation and small services: irq-saving spinlocks, CPU numbers, ratelimiting,
 * module references.
 */
#include <linux/module.h>
#include <linux/ratelimit.h>
#include <linux/smp.h>
#include <linux/spinlock.h>

#include "helpers.h"

unsigned long xendma_spin_lock_irqsave(struct spinlock *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

void xendma_spin_unlock_irqrestore(struct spinlock *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

bool xendma_spin_trylock_irqsave(struct spinlock *lock, unsigned long *flags)
{
	return spin_trylock_irqsave(lock, *flags);
}

void xendma_spin_assert_held(struct spinlock *lock)
{
	lockdep_assert_held(lock);
}

unsigned int xendma_this_cpu(void)
{
	return raw_smp_processor_id();
}

unsigned int xendma_possible_cpus(void)
{
	return num_possible_cpus();
}

bool xendma_warn_ratelimit(void)
{
	static DEFINE_RATELIMIT_STATE(rs, DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST);

	return __ratelimit(&rs);
}

bool xendma_module_get(struct module *module)
{
	return try_module_get(module);
}

void xendma_module_put(struct module *module)
{
	module_put(module);
}
