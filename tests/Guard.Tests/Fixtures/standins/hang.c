/*
 * hang.so, for LD_PRELOAD: the process it is loaded into never reaches its
 * main(), as if something injected had taken it over (at most 120 s).
 */
#include <unistd.h>

__attribute__((constructor)) static void hang(void)
{
	alarm(120);
	for (;;)
		pause();
}
