// SPDX-License-Identifier: GPL-2.0
/*
 * fail_nth: one system call with the N-th fault point of the calling task failed
 * (/proc/thread-self/fail-nth, CONFIG_FAULT_INJECTION: every slab allocation, page allocation
 * and fail_function probe the task reaches counts, whatever the filters say), for the fault
 * injection test (a tool run by fault_inject; not a test by itself).
 *
 *   fail_nth N insmod MODULE.ko [PARAMS]   finit_module
 *   fail_nth N write FILE VALUE            one write(2) of VALUE (no newline added)
 *
 * Prints one line "rc=R errno=E injected=I left=L" (I: 1 if the N-th fault point was reached
 * and failed, 0 if the call made fewer than N, N - L of them) and exits 0, or 2 on bad usage or
 * setup failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int set_nth(int fd, long n)
{
	char s[32];
	int len = snprintf(s, sizeof(s), "%ld", n);

	return pwrite(fd, s, len, 0) == len ? 0 : -1;
}

int main(int argc, char **argv)
{
	long n, left = -1;
	int fd, target, rc, err;
	char buf[32] = "";
	ssize_t r;

	if (argc < 4 || (strcmp(argv[2], "insmod") && strcmp(argv[2], "write")) ||
	    (!strcmp(argv[2], "write") && argc != 5)) {
		fprintf(stderr, "usage: fail_nth N insmod MODULE.ko [PARAMS] | fail_nth N write FILE VALUE\n");
		return 2;
	}
	n = strtol(argv[1], NULL, 0);
	if (n < 1) {
		fprintf(stderr, "fail_nth: N must be at least 1\n");
		return 2;
	}
	fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "fail_nth: /proc/thread-self/fail-nth: %s\n", strerror(errno));
		return 2;
	}
	target = !strcmp(argv[2], "insmod") ? open(argv[3], O_RDONLY | O_CLOEXEC)
					     : open(argv[3], O_WRONLY);
	if (target < 0) {
		fprintf(stderr, "fail_nth: %s: %s\n", argv[3], strerror(errno));
		return 2;
	}
	if (set_nth(fd, n)) {
		fprintf(stderr, "fail_nth: writing fail-nth: %s\n", strerror(errno));
		return 2;
	}
	if (!strcmp(argv[2], "insmod"))
		rc = syscall(SYS_finit_module, target, argc > 4 ? argv[4] : "", 0);
	else
		rc = write(target, argv[4], strlen(argv[4])) < 0 ? -1 : 0;
	err = rc ? errno : 0;
	r = pread(fd, buf, sizeof(buf) - 1, 0);
	if (r > 0) {
		buf[r] = 0;
		left = strtol(buf, NULL, 0);
	}
	set_nth(fd, 0);
	printf("rc=%d errno=%d injected=%d left=%ld\n", rc ? -1 : 0, err, left == 0, left);
	return 0;
}
