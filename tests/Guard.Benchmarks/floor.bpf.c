// The floor under any sensor that follows every TCP stream from its first
// byte on this kernel, as Guard's guard.bpf.c does: storage made for each
// socket at its connect (160 bytes, the size of guard.bpf.c's struct
// sock_owner, `bpftool btf dump file sensor/obj/bpf/guard.bpf.o`), found
// again at each packet it sends (cgroup_skb/egress at the root: the only
// hook that sees a stream's bytes here, with no fentry or kprobe). Nothing
// read, nothing reported. The empty tracepoint programs are where Guard's
// other detections hook (unix relays, failed connects, rounding modes):
// attached separately, so each share shows.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct owner {
	__u8 bytes[160];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct owner);
} floor_owners SEC(".maps");

SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->sk)
		bpf_sk_storage_get(&floor_owners, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	return 1;
}

SEC("cgroup_skb/egress")
int floor_egress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (sk)
		bpf_sk_storage_get(&floor_owners, sk, 0, 0);
	return 1;
}

SEC("tp_btf/sk_data_ready")
int floor_data_ready(void *ctx)
{
	return 0;
}

SEC("tp_btf/tcp_destroy_sock")
int floor_tcp_destroy(void *ctx)
{
	return 0;
}

SEC("tp_btf/x86_fpu_regs_deactivated")
int floor_fpu(void *ctx)
{
	return 0;
}
