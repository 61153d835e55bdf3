/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The KTAP lines of the C test programs: one "ok N - what" or "not ok N - what" per check, skips
 * as "ok N - what # SKIP why" counted apart, and the summary line the lane report reads
 * ("NAME: N passed, M failed, K skipped").
 */
#ifndef XENDMA_KTAP_H
#define XENDMA_KTAP_H

#include <stdarg.h>
#include <stdio.h>

static int passed, failed, skipped;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", ok ? "ok" : "not ok", passed + failed + skipped + 1);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		passed++;
	else
		failed++;
}

/* A case that cannot run here: "ok N - what # SKIP why", counted apart from the passes. */
static void skip(const char *what, const char *why)
{
	printf("ok %d - %s # SKIP %s\n", passed + failed + skipped + 1, what, why);
	fflush(stdout);
	skipped++;
}

/* The summary line; the exit status (1 on any failure). */
static int ktap_finish(const char *name)
{
	printf("%s: %d passed, %d failed, %d skipped\n", name, passed, failed, skipped);
	return failed ? 1 : 0;
}

#endif
