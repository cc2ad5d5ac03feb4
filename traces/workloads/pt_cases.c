/* The kernel paths real programs take every day, one per mode, each step followed by the
 * process's VmPTE (from /proc/self/status) written to the trace marker, so a recording
 * can be checked against the kernel's own numbers (issue "real kernels, part 2").
 *
 *   pt_cases threads     six worker threads fault in their own slices of one mapping
 *   pt_cases fork-exec   a child inherits copied page tables, touches more, then execs
 *   pt_cases mremap      an aligned move (whole PTE tables move), an unaligned one
 *   pt_cases vma-split   mprotect splits 2 MiB spans into 1 MiB VMAs: MADV_DONTNEED
 *                        cannot reclaim them; merged again, it can
 *   pt_cases thp         huge-PMD faults deposit a PTE table each; a split withdraws
 *                        one, a zap of a whole huge PMD frees its deposit
 *
 * Build: gcc -O2 -pthread -o pt_cases pt_cases.c (the recordings used this machine's gcc).
 * Steps are 50 ms apart so that each step's RCU-deferred frees land before the next. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define KB 1024UL
#define MB (1024 * KB)
#define PMD (2 * MB)
#define PAGE (4 * KB)
/* One page in 64: eight faults per PTE table. The tables are what is measured, and a
 * recording of every page would be 64 times larger for the same page tables. */
#define STRIDE (64 * PAGE)

static int marker = -1;

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
	char buf[160];
	int n = snprintf(buf, sizeof buf, "VmPTE: %ld kB %s\n", vmpte_kb(), label);
	if (write(marker, buf, n) < 0)
		perror("trace_marker");
	usleep(50 * 1000);
}

/* A PMD-aligned anonymous mapping of `size` bytes (over-map, trim both ends). */
static char *aligned_anon(unsigned long size, int prot)
{
	char *raw = mmap(NULL, size + PMD, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	char *base = (char *)(((unsigned long)raw + PMD - 1) & ~(PMD - 1));
	if (base > raw)
		munmap(raw, base - raw);
	if (raw + size + PMD > base + size)
		munmap(base + size, raw + size + PMD - (base + size));
	return base;
}

static void touch(char *start, unsigned long size, unsigned long stride)
{
	for (unsigned long off = 0; off < size; off += stride)
		start[off] = 1;
}

/* -- threads ------------------------------------------------------------------------- */
#define THREADS 6
static char *shared_base;

static void *worker(void *arg)
{
	long i = (long)arg;
	touch(shared_base + (i + 1) * 8 * MB, 8 * MB, STRIDE);   /* 4 PTE tables each */
	return NULL;
}

static int threads(void)
{
	pthread_t t[THREADS];
	shared_base = aligned_anon((THREADS + 1) * 8 * MB, PROT_READ | PROT_WRITE);
	touch(shared_base, 8 * MB, STRIDE);
	mark("main touched 8M");
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	mark("6 threads touched 8M each");
	munmap(shared_base, (THREADS + 1) * 8 * MB);
	mark("munmap");
	return 0;
}

/* -- fork and exec ------------------------------------------------------------------- */
static int exec_child(void)
{
	mark("exec: new image");
	char *base = aligned_anon(16 * MB, PROT_READ | PROT_WRITE);
	touch(base, 16 * MB, STRIDE);
	mark("exec: touched 16M");
	return 0;
}

static int fork_exec(const char *self)
{
	char *base = aligned_anon(32 * MB, PROT_READ | PROT_WRITE);
	touch(base, 32 * MB, STRIDE);
	mark("parent touched 32M");
	pid_t pid = fork();
	if (pid == 0) {
		mark("child: after fork (copied tables)");
		char *more = aligned_anon(8 * MB, PROT_READ | PROT_WRITE);
		touch(more, 8 * MB, STRIDE);
		mark("child: touched 8M more");
		execl(self, self, "exec-child", (char *)NULL);
		perror("execl");
		_exit(1);
	}
	int status;
	waitpid(pid, &status, 0);
	mark("parent: child done");
	munmap(base, 32 * MB);
	mark("parent: munmap");
	return 0;
}

/* -- mremap -------------------------------------------------------------------------- */
static int move(void)
{
	unsigned long size = 16 * MB;
	char *a = aligned_anon(size, PROT_READ | PROT_WRITE);
	touch(a, size, STRIDE);
	mark("touched 16M");
	/* A PMD-aligned destination: move_normal_pmd moves whole PTE tables. */
	char *hole = aligned_anon(size + PMD, PROT_NONE);
	char *b = mremap(a, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	mark("aligned move");
	madvise(b, size / 2, MADV_DONTNEED);
	mark("dontneed half at the new address");
	touch(b, size, STRIDE);
	mark("retouched at the new address");
	/* An unaligned destination: new tables there, the old range's freed. */
	char *hole2 = aligned_anon(size + PMD, PROT_NONE);
	char *c = mremap(b, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, hole2 + 64 * KB);
	mark("unaligned move");
	munmap(c, size);
	munmap(hole2, 64 * KB);
	munmap(hole2 + 64 * KB + size, PMD - 64 * KB);
	mark("munmap");
	return 0;
}

/* -- VMA-bounded reclaim ------------------------------------------------------------- */
static int vma_split(void)
{
	unsigned long size = 16 * MB;
	char *a = aligned_anon(size, PROT_READ | PROT_WRITE);
	touch(a, size, STRIDE);
	mark("touched 16M");
	/* The second MiB of every 2 MiB read-only: each PMD span is two VMAs. */
	for (unsigned long off = 0; off < size; off += PMD)
		mprotect(a + off + MB, MB, PROT_READ);
	mark("mprotect split");
	madvise(a, size, MADV_DONTNEED);
	mark("dontneed over split VMAs");
	/* The first half's emptied tables stay until munmap takes them. */
	munmap(a, size / 2);
	mark("munmap the first half");
	mprotect(a + size / 2, size / 2, PROT_READ | PROT_WRITE);   /* one VMA again */
	touch(a + size / 2, size / 2, STRIDE);
	mark("merged and retouched the second half");
	madvise(a + size / 2, size / 2, MADV_DONTNEED);
	mark("dontneed over one VMA");
	munmap(a + size / 2, size / 2);
	mark("munmap");
	return 0;
}

/* -- transparent huge pages ---------------------------------------------------------- */
static int thp(void)
{
	unsigned long size = 16 * MB;
	char *a = aligned_anon(size, PROT_READ | PROT_WRITE);
	madvise(a, size, MADV_HUGEPAGE);
	touch(a, size, PMD);                      /* one fault per 2 MiB: huge PMDs */
	mark("huge faults");
	mprotect(a + 4 * PAGE, PAGE, PROT_READ);  /* splits the first huge PMD */
	mark("split one");
	madvise(a + 2 * PMD, PMD, MADV_DONTNEED); /* a whole huge PMD: its deposit freed */
	mark("dontneed one whole huge PMD");
	munmap(a, size);
	mark("munmap");
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = getenv("PTVIZ_TRACE_MARKER");
	marker = open(path ? path : "/sys/kernel/tracing/trace_marker", O_WRONLY);
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "thp"))
		prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);  /* PTE tables, not huge pages */
	if (!strcmp(mode, "exec-child"))
		return exec_child();
	mark("start");
	if (!strcmp(mode, "threads"))
		return threads();
	if (!strcmp(mode, "fork-exec"))
		return fork_exec("/proc/self/exe");
	if (!strcmp(mode, "mremap"))
		return move();
	if (!strcmp(mode, "vma-split"))
		return vma_split();
	if (!strcmp(mode, "thp"))
		return thp();
	fprintf(stderr, "usage: %s threads|fork-exec|mremap|vma-split|thp\n", argv[0]);
	return 2;
}
