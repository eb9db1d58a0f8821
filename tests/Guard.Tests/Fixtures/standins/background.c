/*
 * background [ARG...]: xmrig's -B as a miner does it: forks, the parent exits
 * at once, and the child (same argv, a session of its own) prints its pid and
 * sleeps (at most 60 s). The arguments are only there to be read.
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	pid_t child = fork();

	if (child < 0)
		return 1;
	if (child > 0)
		_exit(0);
	setsid();
	printf("%d\n", (int)getpid());
	fflush(stdout);
	sleep(60);
	return 0;
}
