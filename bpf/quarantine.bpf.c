// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Quarantine: the programs that hold a job for a person. Unlike guard.bpf.c
 * these deny. Their maps are pinned by name under /sys/fs/bpf/guard and
 * their links are pinned beside them, so a hold stays in force while no
 * sensor runs; whoever loads this object later shares the same maps.
 *
 * Two ways to hold, as guard_quarantine.mode says:
 *  - cgroup: the job has its own cgroup. The guard_qcg_* programs are
 *    attached to that cgroup only and deny everything they see there.
 *  - tree: a process tree with no cgroup of its own. The guard_qtree_*
 *    programs are attached at the root and deny only processes (and sockets)
 *    whose quarantine record still exists: deleting the record releases them
 *    at once, whatever is left in the member maps.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "guard.h"

#define BPF_DEVCG_DEV_CHAR 2 /* uapi bpf.h; not in BTF */
#define SIGSTOP 19
#define DENY 0
#define ALLOW 1

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct guard_quarantine);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} quarantines SEC(".maps");

/* Tree mode: held processes (tgid -> quarantine id and the process's start),
 * kept from fork, dropped at exit. The start is checked wherever a member is
 * judged: an entry left for a pid that changed hands holds nobody. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct guard_member);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} quarantine_tgids SEC(".maps");

/* Tree mode: sockets the held processes had open (written from user space
 * through a duplicate of each socket's fd), -> quarantine id. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} quarantine_socks SEC(".maps");

/* GPU device files the held may not open. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct guard_device_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} quarantine_devices SEC(".maps");

/* Linux 6.13+: signals a task other than current. Older kernels resolve it
 * to NULL and a new child is stopped by user space instead, a moment later;
 * its network and GPU are denied from its first instruction either way. */
extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type, __u64 value) __ksym __weak;

static __always_inline bool held_id(__u64 *id)
{
	return id && bpf_map_lookup_elem(&quarantines, id);
}

static __always_inline __u64 start_ticks(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_boottime) / GUARD_NS_PER_TICK;
}

/* The hold entry of process tgid (task), if it is that very process's: by start. */
static __always_inline struct guard_member *membership(__u32 tgid, struct task_struct *task)
{
	struct guard_member *member = bpf_map_lookup_elem(&quarantine_tgids, &tgid);

	return member && member->start_ticks == start_ticks(task) ? member : NULL;
}

static __always_inline bool held_current(void)
{
	struct guard_member *member = membership(bpf_get_current_pid_tgid() >> 32, (struct task_struct *)bpf_get_current_task());

	return member && held_id(&member->id);
}

static __always_inline bool gpu_device(struct bpf_cgroup_dev_ctx *ctx)
{
	struct guard_device_key key = { .major = ctx->major, .minor = ctx->minor };

	if ((ctx->access_type & 0xFFFF) != BPF_DEVCG_DEV_CHAR)
		return false;
	if (bpf_map_lookup_elem(&quarantine_devices, &key))
		return true;
	key.minor = -1;
	return bpf_map_lookup_elem(&quarantine_devices, &key) != NULL;
}

/* ---- cgroup mode: attached to the held job's cgroup, everything in it is held ---- */

SEC("cgroup/connect4")
int guard_qcg_connect4(struct bpf_sock_addr *ctx) { return DENY; }

SEC("cgroup/connect6")
int guard_qcg_connect6(struct bpf_sock_addr *ctx) { return DENY; }

SEC("cgroup/sendmsg4")
int guard_qcg_sendmsg4(struct bpf_sock_addr *ctx) { return DENY; }

SEC("cgroup/sendmsg6")
int guard_qcg_sendmsg6(struct bpf_sock_addr *ctx) { return DENY; }

/* Sockets opened before the hold belong to the cgroup too: their packets drop here. */
SEC("cgroup_skb/egress")
int guard_qcg_egress(struct __sk_buff *skb) { return DENY; }

SEC("cgroup/dev")
int guard_qcg_dev(struct bpf_cgroup_dev_ctx *ctx)
{
	return gpu_device(ctx) ? DENY : ALLOW;
}

/* ---- tree mode: attached at the root, only the held are denied ---- */

SEC("cgroup/sock_create")
int guard_qtree_sock_create(struct bpf_sock *ctx)
{
	return held_current() ? DENY : ALLOW;
}

SEC("cgroup/connect4")
int guard_qtree_connect4(struct bpf_sock_addr *ctx)
{
	return held_current() ? DENY : ALLOW;
}

SEC("cgroup/connect6")
int guard_qtree_connect6(struct bpf_sock_addr *ctx)
{
	return held_current() ? DENY : ALLOW;
}

SEC("cgroup/sendmsg4")
int guard_qtree_sendmsg4(struct bpf_sock_addr *ctx)
{
	return held_current() ? DENY : ALLOW;
}

SEC("cgroup/sendmsg6")
int guard_qtree_sendmsg6(struct bpf_sock_addr *ctx)
{
	return held_current() ? DENY : ALLOW;
}

/* Egress runs in softirq as often as not: judge the socket, never current. */
SEC("cgroup_skb/egress")
int guard_qtree_egress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return ALLOW;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return ALLOW;
	return held_id(bpf_sk_storage_get(&quarantine_socks, sk, 0, 0)) ? DENY : ALLOW;
}

SEC("cgroup/dev")
int guard_qtree_dev(struct bpf_cgroup_dev_ctx *ctx)
{
	return gpu_device(ctx) && held_current() ? DENY : ALLOW;
}

/* A held process that forks (it was not stopped yet, or someone sent it
 * SIGCONT): the child is held too, and stopped before it first runs. The
 * holder is the caller (parent here is current), so a child made with
 * CLONE_PARENT, whose real parent is the caller's parent, is held as well. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(guard_qtree_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 child_tgid = child->tgid;
	struct guard_member *member, held;

	if (child->pid != child_tgid)
		return 0; /* a thread: its process is held already */
	member = membership(parent->tgid, parent);
	if (!member || !held_id(&member->id))
		return 0;
	held.id = member->id;
	held.start_ticks = child->start_boottime / GUARD_NS_PER_TICK;
	bpf_map_update_elem(&quarantine_tgids, &child_tgid, &held, BPF_ANY);
	if (bpf_send_signal_task)
		bpf_send_signal_task(child, SIGSTOP, PIDTYPE_TGID, 0);
	return 0;
}

/* Forget a process when it ends, before its pid can be given to another. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(guard_qtree_exit, struct task_struct *task)
{
	__u32 tgid;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = task->tgid;
	bpf_map_delete_elem(&quarantine_tgids, &tgid);
	return 0;
}
