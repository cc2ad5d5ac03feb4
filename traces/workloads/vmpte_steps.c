/* The vmpte_steps workload in C, for kernels booted under QEMU with a bare initramfs
 * (shared/reference/qemu-capture.md): no Python there. Writes its VmPTE to the trace
 * marker at known points. Build: gcc -O2 -static -o vmpte_steps vmpte_steps.c */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#define MB (1UL << 20)
#define PMD (2 * MB)

static int marker;

static long vmpte_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmPTE:", 6))
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

static void mark(const char *label)
{
	char buf[128];
	int n = snprintf(buf, sizeof buf, "VmPTE: %ld kB %s\n", vmpte_kb(), label);
	write(marker, buf, n);
}

/* Between steps: lets each step's RCU-deferred frees land before the next step starts
 * (under QEMU/TCG a 32 MiB munmap keeps a CPU in the kernel for ~20 ms, which holds
 * back the grace period of the previous step's tables). */
static void pause_ms(long ms)
{
	if (ms > 0)
		usleep(ms * 1000);
}

int main(int argc, char **argv)
{
	unsigned long size = (argc > 1 ? strtoul(argv[1], NULL, 0) : 64) * MB;
	long gap = argc > 2 ? strtol(argv[2], NULL, 0) : 0;   /* ms between steps */
	const char *path = getenv("PTVIZ_TRACE_MARKER");
	marker = open(path ? path : "/sys/kernel/tracing/trace_marker", O_WRONLY);
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);   /* PTE tables, not huge pages */
	mark("start");
	char *raw = mmap(NULL, size + PMD, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *base = (char *)(((unsigned long)raw + PMD - 1) & ~(PMD - 1));
	madvise(base, size, MADV_NOHUGEPAGE);
	for (unsigned long off = 0; off < size; off += 4096)
		base[off] = 1;
	mark("touched");
	pause_ms(gap);
	madvise(base, size / 2, MADV_DONTNEED);
	mark("dontneed");
	pause_ms(gap);
	munmap(base + size / 2, size / 2);
	mark("munmap");
	return 0;
}
