// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Enforcement that outlives the sensor. A `guard watch` that stops hands
 * over to these before it detaches its own: the exec-time kill of known
 * miners, with job membership kept from fork and cgroup moves, and the drop
 * of Stratum at egress. They decide exactly as guard.bpf.c does (verdicts.h, stream.h),
 * write no records (no one would read them), and are pinned under
 * /sys/fs/bpf/guard/enforce until the next `guard watch` has attached its
 * own programs and removes them: no gap either way.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "guard.h"
#include "packet.h"
#include "verdicts.h"
#include "stream.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Per TCP socket connected since the handover. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stream_state);
} enforce_streams SEC(".maps");

struct enforce_scratch {
	__u8 data[SCAN_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct enforce_scratch);
} enforce_scratch SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(guard_enf_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	char comm[GUARD_COMM_LEN] = {};
	struct exec_verdict v;

	bpf_get_current_comm(comm, sizeof(comm));
	decide_exec(task->tgid, process_start(task), comm, (__u32)bpf_get_current_uid_gid(), bprm, &v);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(guard_enf_fork, struct task_struct *parent, struct task_struct *child)
{
	if (child->pid != child->tgid)
		return 0;
	/* The job is the caller's (parent here is current): a CLONE_PARENT child,
	 * whose real parent is the caller's parent, stays in it. */
	inherit_job(parent->tgid, child->tgid);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(guard_enf_exit, struct task_struct *task)
{
	__u32 tgid;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = task->tgid;
	bpf_map_delete_elem(&job_members, &tgid);
	return 0;
}

SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(guard_enf_cgroup_attach, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
	if (dst == BPF_CORE_READ(task, cgroups, dfl_cgrp))
		join_job_cgroup(BPF_CORE_READ(task, tgid), dst);
	return 0;
}

static __always_inline int on_connect(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	if (ctx->protocol == IPPROTO_TCP)
		stream_restart(stream_claim(&enforce_streams, sk), sk);
	return 1;
}

SEC("cgroup/connect4")
int guard_enf_connect4(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx);
}

SEC("cgroup/connect6")
int guard_enf_connect6(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx);
}

/* Returns 0 to drop: the segment that completes a Stratum method the policy
 * stops, and every packet of that socket after it; segments held until the
 * scan decides (stream_advance). */
SEC("cgroup_skb/egress")
int guard_enf_egress(struct __sk_buff *skb)
{
	struct stream_step step;
	struct stream_state *st;
	struct l4_location loc;
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return 1;
	st = bpf_sk_storage_get(&enforce_streams, sk, 0, 0);
	if (!st)
		return 1;
	if (stream_settled(st, 0))
		return stream_verdict_return(st);
	/* A segment of a stream still read whose header cannot be found is held, never let through unread. */
	if (locate_l4(skb, &loc))
		return 0;
	if (loc.protocol != IPPROTO_TCP)
		return 1;
	return stream_advance(skb, &loc, st, &enforce_scratch, 0, &step);
}
