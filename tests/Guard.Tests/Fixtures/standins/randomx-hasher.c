/*
 * A real RandomX hasher for the RandomX tests and benchmark, never a miner:
 * no network, no pool, no wallet; it hashes a counter. It runs tevador's
 * reference implementation (Debian's librandomx) in light mode (a 256 MiB
 * cache, no 2 GiB dataset) with the JIT and hardware AES where the library
 * has them, so the rounding-mode changes the sensor counts are RandomX's own
 * CFROUND, not a model of them.
 *
 * usage: randomx-hasher [--nearest-sleep] SECONDS [HOP_MS]
 * With --nearest-sleep, after every hash it sets the SSE rounding mode back
 * to nearest (MXCSR bits 13-14) and sleeps 1 ms, as a miner would that hides
 * its modes from a kernel that sees them only when it is switched out.
 * With HOP_MS the hashing hops from process to process: every HOP_MS each
 * process forks the next, which goes on with the same cache and VM, and
 * exits, as a miner does that keeps each process under a per-process count.
 * Each process prints "hashes N" when it is done.
 */
#include <randomx.h>
#include <string.h>
#include <xmmintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double seconds_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const char key[] = "guard randomx test key";
	randomx_flags flags = randomx_get_flags();
	randomx_cache *cache;
	randomx_vm *vm;
	char hash[RANDOMX_HASH_SIZE];
	uint64_t nonce = 0, hashes = 0;
	double end, hop_at, hop;
	const char *self = argv[0];
	int nearest_sleep = argc > 1 && strcmp(argv[1], "--nearest-sleep") == 0;
	const struct timespec one_ms = { 0, 1000000 };

	argc -= nearest_sleep;
	argv += nearest_sleep;
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s [--nearest-sleep] SECONDS [HOP_MS]\n", self);
		return 2;
	}
	cache = randomx_alloc_cache(flags);
	if (!cache) {
		/* Large pages or the JIT refused: the portable interpreter. */
		flags = RANDOMX_FLAG_DEFAULT;
		cache = randomx_alloc_cache(flags);
	}
	if (!cache) {
		fprintf(stderr, "%s: cannot allocate the RandomX cache\n", self);
		return 1;
	}
	randomx_init_cache(cache, key, sizeof(key) - 1);
	vm = randomx_create_vm(flags, cache, NULL);
	if (!vm) {
		fprintf(stderr, "%s: cannot create the RandomX VM\n", self);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	end = seconds_now() + atof(argv[1]);
	hop = argc == 3 ? atof(argv[2]) / 1000 : 0;
	hop_at = seconds_now() + hop;
	while (seconds_now() < end) {
		randomx_calculate_hash(vm, &nonce, sizeof(nonce), hash);
		nonce++;
		hashes++;
		if (nearest_sleep) {
			_mm_setcsr(_mm_getcsr() & ~(3u << 13));
			nanosleep(&one_ms, NULL);
		}
		if (hop > 0 && seconds_now() >= hop_at) {
			pid_t next = fork();

			if (next < 0)
				return 1;
			if (next > 0) {
				printf("hashes %llu\n", (unsigned long long)hashes);
				return 0;
			}
			hashes = 0;
			hop_at = seconds_now() + hop;
		}
	}
	printf("hashes %llu\n", (unsigned long long)hashes);
	return 0;
}
