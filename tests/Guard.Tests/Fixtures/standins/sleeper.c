/*
 * sleeper [ARG...]: a worker that only sleeps (at most 60 s), whatever its
 * arguments say: they are there to be read.
 */
#include <unistd.h>

int main(void)
{
	sleep(60);
	return 0;
}
