// Syscall storms for the overhead benchmark: each mode runs N operations and
// prints nanoseconds per operation. Plain C, so the figure is the kernel's
// cost and not an interpreter's.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: storms forkexec|getppid|pipe|pingpong|ioctl|ioctl-nv|connect|unix|tcp|sleepers N\n");
		return 2;
	}
	const char *mode = argv[1];
	long n = atol(argv[2]);
	long long start = now_ns();
	if (!strcmp(mode, "forkexec")) {
		for (long i = 0; i < n; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				execl("/bin/true", "true", (char *)0);
				_exit(127);
			}
			waitpid(pid, 0, 0);
		}
	} else if (!strcmp(mode, "getppid")) {
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
	} else if (!strcmp(mode, "pipe")) {
		int p[2];
		char b = 0;
		if (pipe(p))
			return 1;
		for (long i = 0; i < n; i++) {
			if (write(p[1], &b, 1) != 1 || read(p[0], &b, 1) != 1)
				return 1;
		}
	} else if (!strcmp(mode, "pingpong")) {
		/* Two processes, one byte back and forth: a context switch per message. */
		int ab[2], ba[2];
		char b = 0;
		if (pipe(ab) || pipe(ba))
			return 1;
		pid_t child = fork();
		if (child == 0) {
			for (long i = 0; i < n; i++) {
				if (read(ab[0], &b, 1) != 1 || write(ba[1], &b, 1) != 1)
					_exit(1);
			}
			_exit(0);
		}
		for (long i = 0; i < n; i++) {
			if (write(ab[1], &b, 1) != 1 || read(ba[0], &b, 1) != 1)
				return 1;
		}
		waitpid(child, 0, 0);
	} else if (!strcmp(mode, "ioctl")) {
		int fd = open("/dev/null", O_RDONLY);
		int v;
		for (long i = 0; i < n; i++)
			ioctl(fd, FIONREAD, &v);
	} else if (!strcmp(mode, "ioctl-nv")) {
		/* An NVIDIA-shaped command (type 'F', RM_CONTROL) on a non-GPU file:
		 * the path that must resolve the fd to say no. */
		int fd = open("/dev/null", O_RDONLY);
		char params[32] = { 0 };
		for (long i = 0; i < n; i++)
			ioctl(fd, _IOWR('F', 0x2A, char[32]), params);
	} else if (!strcmp(mode, "connect")) {
		/* A loopback listener of our own, drained by a child. */
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(a);
		int l = socket(AF_INET, SOCK_STREAM, 0);
		if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4096) || getsockname(l, (struct sockaddr *)&a, &len))
			return 1;
		pid_t server = fork();
		if (server == 0) {
			char buf[64];
			for (long i = 0; i < n; i++) {
				int c = accept(l, 0, 0);
				if (c < 0)
					_exit(1);
				while (read(c, buf, sizeof(buf)) > 0)
					;
				close(c);
			}
			_exit(0);
		}
		start = now_ns();
		for (long i = 0; i < n; i++) {
			int s = socket(AF_INET, SOCK_STREAM, 0);
			int one = 1;
			setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (connect(s, (struct sockaddr *)&a, sizeof(a)))
				return 1;
			if (write(s, "{\"id\":1}\n", 9) != 9)
				return 1;
			close(s);
		}
		waitpid(server, 0, 0);
	} else if (!strcmp(mode, "unix") || !strcmp(mode, "tcp")) {
		/* One byte written and read back over a unix stream pair, or a loopback
		 * TCP connection: each write makes the kernel call sk_data_ready. */
		int s[2];
		char b = 0;
		if (!strcmp(mode, "unix")) {
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, s))
				return 1;
		} else {
			struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
			socklen_t len = sizeof(a);
			int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
			if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len))
				return 1;
			s[0] = socket(AF_INET, SOCK_STREAM, 0);
			setsockopt(s[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (connect(s[0], (struct sockaddr *)&a, sizeof(a)) || (s[1] = accept(l, 0, 0)) < 0)
				return 1;
		}
		start = now_ns();
		for (long i = 0; i < n; i++) {
			if (write(s[0], &b, 1) != 1 || read(s[1], &b, 1) != 1)
				return 1;
		}
	} else if (!strcmp(mode, "sleepers")) {
		/* N idle processes for the memory benchmark; gone when stdin closes. */
		pid_t *kids = calloc(n, sizeof(pid_t));
		char c;
		for (long i = 0; i < n; i++) {
			kids[i] = fork();
			if (kids[i] == 0) {
				pause();
				_exit(0);
			}
		}
		printf("ready\n");
		fflush(stdout);
		while (read(0, &c, 1) > 0)
			;
		for (long i = 0; i < n; i++)
			kill(kids[i], SIGKILL);
		for (long i = 0; i < n; i++)
			waitpid(kids[i], 0, 0);
		return 0;
	} else {
		return 2;
	}
	printf("%.1f\n", (double)(now_ns() - start) / n);
	return 0;
}
