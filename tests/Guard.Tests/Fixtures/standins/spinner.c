/*
 * A stand-in for compute that a hold must keep from running: it maps the
 * file named by argv[1] (8 bytes per thread, created by the caller) and
 * each of argv[2] threads (1 when absent) adds one to its own counter in a
 * tight loop. The caller reads the file: any growth while held is user code
 * that ran. Prints "ready" once every thread runs.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile unsigned long *counters;
static volatile int started;

static void *spin(void *arg)
{
	volatile unsigned long *mine = &counters[(long)arg];

	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	for (;;)
		(*mine)++;
	return NULL;
}

int main(int argc, char **argv)
{
	long threads = argc > 2 ? atol(argv[2]) : 1;
	pthread_t t;
	int fd;

	if (argc < 2 || threads < 1 || threads > 64)
		return 2;
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || ftruncate(fd, threads * 8) < 0)
		return 3;
	counters = mmap(NULL, threads * 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (counters == MAP_FAILED)
		return 4;
	for (long i = 1; i < threads; i++)
		if (pthread_create(&t, NULL, spin, (void *)i))
			return 5;
	while (started < threads - 1)
		;
	printf("ready\n");
	fflush(stdout);
	spin((void *)0);
	return 0;
}
