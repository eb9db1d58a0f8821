/* A stand-in for a miner's executable: it mines nothing, but carries the
 * markers a real one cannot drop, as xmrig's binary holds them: RandomX's
 * Argon2 salt for Monero (RANDOMX_ARGON_SALT), the Stratum methods a pool
 * client sends, and its own option names. Its first act, a second after it
 * starts, writes the file named by its argument: if that exists, it ran. */
#include <stdio.h>
#include <unistd.h>

__attribute__((used)) static const char markers[] =
	"RandomX\003\0"
	"mining.subscribe\0mining.authorize\0"
	"donate-level\0randomx-1gb-pages\0";

int main(int argc, char **argv)
{
	FILE *f;

	sleep(1);
	if (argc < 2 || !(f = fopen(argv[1], "w")))
		return 2;
	fputs("ran\n", f);
	fclose(f);
	return markers[0] == 'R' ? 0 : 1;
}
