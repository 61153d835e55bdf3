// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU counters (kext/percpu.rs): allocation, the generic add, and the reads that sum or
 * pick the copies of other CPUs. The per-CPU pointer crosses to Rust as a plain void * (through
 * uintptr_t: with CONFIG_USE_X86_SEG_SUPPORT __percpu is the %gs address space).
 */
#include <linux/cpumask.h>
#include <linux/percpu.h>

#include "helpers.h"

static u64 __percpu *xendma_pcp(const void *pcp)
{
	return (u64 __percpu *)(__force uintptr_t)pcp;
}

void *xendma_percpu_alloc(size_t bytes)
{
	u64 __percpu *p = __alloc_percpu(bytes, __alignof__(u64));

	return (void *)(__force uintptr_t)p;
}

void xendma_percpu_free(void *pcp)
{
	free_percpu(xendma_pcp(pcp));
}

void xendma_percpu_add(void *pcp, u64 v)
{
	this_cpu_add(*xendma_pcp(pcp), v);
}

u64 xendma_percpu_sum(const void *pcp)
{
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(*per_cpu_ptr(xendma_pcp(pcp), cpu));
	return sum;
}

bool xendma_percpu_read_cpu(const void *pcp, unsigned int cpu, u64 *v)
{
	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return false;
	*v = READ_ONCE(*per_cpu_ptr(xendma_pcp(pcp), cpu));
	return true;
}

void xendma_percpu_set_cpu_ids(void *pcp)
{
	int cpu;

	for_each_possible_cpu(cpu)
		*per_cpu_ptr(xendma_pcp(pcp), cpu) = cpu;
}
