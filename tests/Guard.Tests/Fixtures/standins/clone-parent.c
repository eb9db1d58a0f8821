/*
 * clone-parent PIDFILE PROGRAM [ARG...]: starts PROGRAM in a child made with
 * clone(CLONE_PARENT), whose parent is this process's parent, not this one:
 * by parent pid it is not below its creator. Writes the child's pid to
 * PIDFILE, then waits to be killed (at most 120 s).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char temp[4096];
	FILE *f;
	long child;

	if (argc < 3)
		return 2;
	alarm(120);
	child = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (child < 0)
		return 1;
	if (child == 0) {
		execv(argv[2], argv + 2);
		_exit(127);
	}
	snprintf(temp, sizeof(temp), "%s.tmp", argv[1]);
	f = fopen(temp, "w");
	if (!f)
		return 1;
	fprintf(f, "%ld\n", child);
	fclose(f);
	rename(temp, argv[1]);
	for (;;)
		pause();
}
