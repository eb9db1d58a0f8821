/*
 * storm READYFILE: a tree that forks while it is being stopped. The root
 * sleeps; below it each generation forks the next and then, mostly, exits at
 * once: a pid hopper, faster than a look at /proc, whose every child is
 * re-parented. Every 3rd generation calls setsid, every 5th is made with
 * clone(CLONE_PARENT), every 500th stays, asleep. READYFILE appears at
 * generation 200. Bounded: 200000 generations, a sleeper ends after 120 s.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

static void storm(const char *ready)
{
	for (unsigned gen = 1; gen <= 200000; gen++) {
		long pid = gen % 5 == 0 ? syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0) : fork();

		if (pid < 0) {
			usleep(1000);
			continue;
		}
		if (pid == 0) {
			alarm(120);
			if (gen % 3 == 0)
				setsid();
			if (gen == 200)
				close(open(ready, O_CREAT | O_WRONLY, 0600));
			continue;
		}
		if (gen % 500 == 0)
			for (;;)
				pause();
		_exit(0);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	signal(SIGCHLD, SIG_IGN); /* nobody is left a zombie */
	alarm(120);
	if (fork() == 0)
		storm(argv[1]);
	for (;;)
		pause();
}
