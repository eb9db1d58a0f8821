/*
 * A helper outside a hold that starts a process straight into a cgroup:
 * clone3(CLONE_INTO_CGROUP) with the cgroup directory argv[1], the child
 * execs argv[3..]. Writes the child's pid to the file argv[2] and exits.
 * The child, never run in a frozen cgroup, keeps every descriptor it was
 * born with: its stdio is /dev/null, so no reader of ours waits on it.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct clone_args args;
	long pid;
	int cgroup, null;
	FILE *out;

	if (argc < 4)
		return 2;
	null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		return 5;
	cgroup = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgroup < 0)
		return 3;
	memset(&args, 0, sizeof(args));
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = cgroup;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0)
		return 4;
	if (pid == 0) {
		execv(argv[3], argv + 3);
		_exit(127);
	}
	out = fopen(argv[2], "w");
	if (!out || fprintf(out, "%ld\n", pid) < 0 || fclose(out))
		return 6;
	return 0;
}
