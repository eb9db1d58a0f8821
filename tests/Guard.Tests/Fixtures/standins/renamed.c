/* A stand-in that renames itself (comm) with prctl once running, then
 * sleeps: a miner that no longer looks like one in ps or /proc/PID/stat. */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void)
{
	prctl(PR_SET_NAME, "kworker", 0, 0, 0);
	printf("renamed\n");
	fflush(stdout);
	sleep(60);
	return 0;
}
