/*
 * Rounding-mode stand-in for the RandomX tests (never a miner): numeric work
 * in rounding modes drawn at random from those named, a new draw every few
 * microseconds of work, as RandomX's CFROUND draws among all four; name one
 * mode and it is held, as interval arithmetic holds FE_UPWARD. After each
 * millisecond of work it sleeps 100 us, so the scheduler switches it out
 * (where the kernel samples the rounding mode) even on an idle CPU. With
 * --x87 the modes are set in the x87 control word alone (fldcw, as a hasher
 * hiding from an MXCSR reader would) and the work is x87 long double
 * arithmetic; MXCSR stays at nearest.
 *
 * usage: rounding [--x87] SECONDS MODE...   MODE: nearest, down, up, zero
 */
#include <fenv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int mode;
	} known[] = { { "nearest", FE_TONEAREST }, { "down", FE_DOWNWARD }, { "up", FE_UPWARD }, { "zero", FE_TOWARDZERO } };
	const struct timespec pause = { 0, 100 * 1000 };
	unsigned long long draw = 0x9E3779B97F4A7C15ULL;
	volatile double x = 0.1;
	volatile long double wide = 0.1L;
	unsigned short control;
	int modes[4], count = 0, x87 = argc > 1 && strcmp(argv[1], "--x87") == 0;
	double end;

	argv += x87;
	argc -= x87;
	if (argc < 3 || argc > 6) {
		fprintf(stderr, "usage: %s [--x87] SECONDS MODE...\n", argv[0]);
		return 2;
	}
	__asm__ volatile("fnstcw %0" : "=m"(control));
	for (int a = 2; a < argc; a++) {
		int found = -1;

		for (int k = 0; k < 4; k++)
			if (strcmp(argv[a], known[k].name) == 0)
				found = known[k].mode;
		if (found < 0) {
			fprintf(stderr, "%s: unknown mode %s\n", argv[0], argv[a]);
			return 2;
		}
		modes[count++] = found;
	}
	end = seconds_now() + atof(argv[1]);
	while (seconds_now() < end) {
		for (int chunk = 0; chunk < 200; chunk++) {
			draw ^= draw << 13;
			draw ^= draw >> 7;
			draw ^= draw << 17;
			if (x87) {
				/* On x86 glibc's FE_* are the x87 rounding control bits 10-11 (Intel SDM vol. 1, 8.1.5.3). */
				unsigned short set = (control & ~0x0c00) | modes[draw % count];

				__asm__ volatile("fldcw %0" : : "m"(set));
				for (int i = 0; i < 500; i++)
					wide = wide * 1.0000001L + 0.1L;
				continue;
			}
			fesetround(modes[draw % count]);
			for (int i = 0; i < 500; i++)
				x = x * 1.0000001 + 0.1;
		}
		nanosleep(&pause, NULL);
	}
	fesetround(FE_TONEAREST);
	printf("%g %Lg\n", x, wide);
	return 0;
}
