/*
 * flood SECONDS ARGBYTES: execs /bin/true with one argument of ARGBYTES
 * bytes, one after another (vfork, wait), for SECONDS: a flood of records
 * that keeps a small ring full. Prints how many it ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int seconds, bytes;
	char *big, *args[3];
	time_t end;
	long n = 0;

	if (argc < 3)
		return 2;
	seconds = atoi(argv[1]);
	bytes = atoi(argv[2]);
	big = malloc(bytes + 1);
	if (!big)
		return 1;
	memset(big, 'A', bytes);
	big[bytes] = 0;
	args[0] = "true";
	args[1] = big;
	args[2] = 0;
	end = time(0) + seconds;
	while (time(0) < end) {
		pid_t p = vfork();

		if (p == 0) {
			execv("/bin/true", args);
			_exit(1);
		}
		if (p > 0)
			waitpid(p, 0, 0);
		n++;
	}
	printf("%ld\n", n);
	return 0;
}
