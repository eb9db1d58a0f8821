// The baseline for the ioctl program's cost: an empty program on the same tracepoint.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp/syscalls/sys_enter_ioctl")
int empty_ioctl(void *ctx)
{
	return 0;
}
