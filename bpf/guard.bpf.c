// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Guard's kernel side: one CO-RE object. It observes, and decides only what
 * the policy gives it (below). A program attached at the cgroup v2 root that
 * denied by mistake would deny the whole machine, so every cgroup program
 * returns 1 on every path but the Stratum drop.
 *
 * Hooks are chosen to keep syscalls off the slow path: process lifecycle from
 * the sched tracepoints, connections from cgroup sock_addr, TCP connect
 * outcomes, payloads and DNS from cgroup_skb egress (a failed handshake from
 * the error report and destroy tracepoints, which a working connection never
 * reaches while connecting), GPU opens from cgroup/dev. Only GPU
 * ioctls need a syscall tracepoint, and the sensor loads it only where GPU
 * devices exist or are configured.
 *
 * Where a program decides (the kill and job membership at exec, membership
 * at fork, the Stratum drop at egress) it decides and acts before it
 * reserves its record: a full ring (a reader that stalls, a flood of execs)
 * costs a counted record, never a verdict.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "guard.h"
#include "held.h"
#include "packet.h"
#include "verdicts.h"
#include "stream.h"

#define S_IFMT 00170000
#define S_IFCHR 0020000
#define MINORBITS 20
#define DNS_PORT 53
#define BPF_DEVCG_DEV_CHAR 2 /* uapi bpf.h; not in BTF */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct guard_config guard_config = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* the sensor sets the size before load */
} events SEC(".maps");

/* Records that found the ring buffer full, per record kind. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GUARD_RECORD_KIND_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Processes whose exec record found the ring full, by tgid (the value is the
 * process's start, CLOCK_BOOTTIME ns): the sensor reads them from /proc and
 * judges them late, then takes them out; one leaves at its exit. Full (a
 * flood of long-lived execs between two reads): exec_unrecorded_lost counts
 * what it could not take, and the sensor judges every process again. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} exec_unrecorded SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} exec_unrecorded_lost SEC(".maps");

/* Who owns a socket and how much of its first payload was seen. Written where
 * the owner is the current task (connect, sendmsg), read at egress where it
 * may not be, and by the sensor through a socket descriptor (guard.h struct
 * guard_sock_owner). Small on purpose: every socket made while Guard runs has
 * one; the bytes themselves go straight from the packet to the ring. */
struct sock_owner {
	struct guard_sock_owner who;
	struct stream_state stream; /* TCP */
	__u32 head_len;             /* bytes of the stream reported: set at its first byte (GUARD_TLS_HEAD_LEN for TLS) */
	__u8 handshake;             /* TCP: enum handshake, the connect's outcome record */
	__u8 pad;
	__u16 sport;                /* TCP: the local port its SYN left from (a failed connect's socket has released it) */
};

/* Where a TCP connect's outcome record is. A connect makes it HANDSHAKE_NONE;
 * its SYN leaving makes it OPEN; the first packet after it in another state
 * (the handshake's ACK, or data carrying it) reports ESTABLISHED, an error
 * report or the socket's end while still OPEN reports FAILED: DONE either
 * way, so each connect has one record, and a settled stream costs one
 * compare for it. */
enum handshake {
	HANDSHAKE_NONE = 0,
	HANDSHAKE_OPEN,
	HANDSHAKE_DONE,
};

struct payload_scratch {
	__u8 data[SCAN_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct payload_scratch);
} payload_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_owner);
} sock_owners SEC(".maps");

/* Context switches of each process in each non-default FPU rounding mode.
 * LRU: a miner's entry, updated at its every switch, is the last to go. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct guard_rounding);
} rounding_switches SEC(".maps");

/* The last counts of processes that ended, keyed by pid and start, until the
 * sensor's next sampling reads and deletes them: a process that lives less
 * than a sampling period (a miner hopping from process to process) is still
 * counted. LRU: a flood of short lives loses the oldest, never blocks. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct guard_rounding_key);
	__type(value, struct guard_rounding);
} rounding_exited SEC(".maps");

#define GPU_SEEN_OPEN 1
#define GPU_SEEN_IOCTL 2

/* Which processes already produced a first-touch GPU record. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} gpu_seen SEC(".maps");

/* Per process and ioctl kind (enum guard_ioctl_kind). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct guard_gpu_count_key);
	__type(value, __u64);
} gpu_ioctl_counts SEC(".maps");

/* The members of tree holds: bpf/quarantine.bpf.c's pinned quarantine_tgids,
 * which the sensor puts in slot 0 while a hold is pinned (a new hold makes a
 * new map, so it is looked up, never shared at load). */
/* Sizes, not types: libbpf 1.1 cannot size a typed inner map. */
struct held_tgids_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct guard_member));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct held_tgids_map);
} held_tgids SEC(".maps");

/* GPU ioctls issued by held processes, per hold and process: each one ran
 * when it should have been stopped. The sensor reports the growth. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct guard_continue_key);
	__type(value, struct guard_continue);
} held_gpu_ioctls SEC(".maps");

/* Per process and RM class allocated. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct guard_gpu_count_key);
	__type(value, __u64);
} gpu_class_counts SEC(".maps");

static __always_inline void count_drop(__u32 kind)
{
	__u64 *count = bpf_map_lookup_elem(&drops, &kind);

	if (count)
		(*count)++;
}

static __always_inline void *reserve(__u64 size, __u32 kind)
{
	void *record = bpf_ringbuf_reserve(&events, size, 0);

	if (!record)
		count_drop(kind);
	return record;
}

static __always_inline void submit(void *record)
{
	__u64 waiting = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(record, waiting >= guard_config.wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void fill_header(struct guard_header *h, __u16 kind, __u32 pid, __u64 start_time_ns)
{
	h->kind = kind;
	h->version = GUARD_ABI_VERSION;
	h->pid = pid;
	h->time_ns = bpf_ktime_get_boot_ns();
	h->start_time_ns = start_time_ns;
}

static __always_inline struct task_struct *current_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

/* ---- process lifecycle ------------------------------------------------ */

#define S_ISVTX 01000
#define S_IWOTH 00002

/* Where the executable comes from, judged on the inode, not the path string:
 * deleted, a memfd (fileless exec), or a directory anyone may write to. */
static __always_inline __u32 staging_flags(struct linux_binprm *bprm)
{
	struct file *file = BPF_CORE_READ(bprm, file);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	umode_t dir_mode = BPF_CORE_READ(dentry, d_parent, d_inode, i_mode);
	char name[6] = {};
	__u32 flags = 0;

	if (BPF_CORE_READ(file, f_inode, __i_nlink) == 0)
		flags |= GUARD_EXEC_UNLINKED;
	bpf_probe_read_kernel(name, sizeof(name), BPF_CORE_READ(dentry, d_name.name));
	if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' && name[5] == ':')
		flags |= GUARD_EXEC_MEMFD;
	if ((dir_mode & S_ISVTX) && (dir_mode & S_IWOTH))
		flags |= GUARD_EXEC_SHARED_DIR;
	return flags;
}

/* The exec's record was lost: the sensor is told which process to read from /proc. */
static __always_inline void note_unrecorded_exec(__u32 tgid, __u64 start_time_ns)
{
	__u32 zero = 0;
	__u64 *lost;

	if (bpf_map_update_elem(&exec_unrecorded, &tgid, &start_time_ns, BPF_ANY) == 0)
		return;
	lost = bpf_map_lookup_elem(&exec_unrecorded_lost, &zero);
	if (lost)
		__sync_fetch_and_add(lost, 1);
}

/* One guard_exec_args record of argv's tail (bpf_loop callback). */
struct args_tail {
	unsigned long arg_start;
	__u32 total; /* bytes of argv read, at most GUARD_ARGS_MAX */
	__u32 tgid;
	__u64 start_time_ns;
};

static long emit_args_chunk(__u32 i, void *ctx)
{
	struct args_tail *t = ctx;
	struct guard_exec_args *a;
	__u32 offset = GUARD_ARGS_LEN + i * GUARD_ARGS_CHUNK, n;

	if (offset >= t->total || offset >= GUARD_ARGS_MAX)
		return 1;
	n = t->total - offset;
	if (n > GUARD_ARGS_CHUNK)
		n = GUARD_ARGS_CHUNK;
	a = reserve(sizeof(*a), GUARD_RECORD_EXEC_ARGS);
	if (!a)
		return 1;
	if (n == 0 || bpf_probe_read_user(a->data, n, (void *)(t->arg_start + offset))) {
		bpf_ringbuf_discard(a, 0);
		return 1;
	}
	fill_header(&a->h, GUARD_RECORD_EXEC_ARGS, t->tgid, t->start_time_ns);
	a->offset = offset;
	a->len = n;
	submit(a);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(guard_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(task, tgid), uid;
	__u64 start_time_ns = process_start(task), uid_gid = bpf_get_current_uid_gid();
	char comm[GUARD_COMM_LEN] = {};
	struct task_struct *parent;
	struct exec_verdict v;
	struct guard_exec *e;
	struct mm_struct *mm;
	unsigned long arg_start, arg_end, len, total;
	long n;

	uid = (__u32)uid_gid;
	bpf_get_current_comm(comm, sizeof(comm));
	decide_exec(tgid, start_time_ns, comm, uid, bprm, &v);

	mm = BPF_CORE_READ(task, mm);
	arg_start = BPF_CORE_READ(mm, arg_start);
	arg_end = BPF_CORE_READ(mm, arg_end);
	total = arg_end > arg_start ? arg_end - arg_start : 0;
	if (total > GUARD_ARGS_LEN) {
		/* The tail first: the exec record that needs it comes after. */
		struct args_tail tail = {
			.arg_start = arg_start,
			.total = total > GUARD_ARGS_MAX ? GUARD_ARGS_MAX : total,
			.tgid = tgid,
			.start_time_ns = start_time_ns,
		};

		bpf_loop((GUARD_ARGS_MAX - GUARD_ARGS_LEN + GUARD_ARGS_CHUNK - 1) / GUARD_ARGS_CHUNK, emit_args_chunk, &tail, 0);
	}

	e = reserve(sizeof(*e), GUARD_RECORD_EXEC);
	if (!e) {
		note_unrecorded_exec(tgid, start_time_ns);
		return 0;
	}
	fill_header(&e->h, GUARD_RECORD_EXEC, tgid, start_time_ns);
	parent = BPF_CORE_READ(task, real_parent);
	e->ppid = BPF_CORE_READ(parent, tgid);
	e->parent_start_time_ns = process_start(parent);
	e->uid = uid;
	e->gid = uid_gid >> 32;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->flags = v.flags | staging_flags(bprm);
	e->job_root_pid = v.job_root_pid;
	e->file_ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
	e->file_dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev);
	e->args_total = total > 0xffffffffUL ? 0xffffffff : total;
	__builtin_memcpy(e->comm, comm, sizeof(e->comm));

	n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), BPF_CORE_READ(bprm, filename));
	e->path_len = n > 0 ? n - 1 : 0;

	len = total;
	if (len > GUARD_ARGS_LEN) {
		len = GUARD_ARGS_LEN;
		e->flags |= GUARD_EXEC_ARGS_TRUNCATED;
	}
	e->args_len = 0;
	if (len > 0 && bpf_probe_read_user(e->args, len, (void *)arg_start) == 0)
		e->args_len = len;
	submit(e);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(guard_fork, struct task_struct *parent, struct task_struct *child)
{
	struct task_struct *real_parent;
	struct guard_fork *f;
	__u32 tgid = BPF_CORE_READ(child, tgid), parent_tgid;

	/* A new thread is not a new process. */
	if (BPF_CORE_READ(child, pid) != tgid)
		return 0;
	/* CLONE_PARENT makes the parent someone other than the caller. */
	real_parent = BPF_CORE_READ(child, real_parent);
	parent_tgid = BPF_CORE_READ(real_parent, tgid);
	/* The job is the caller's (parent here is current), decided before any record: a CLONE_PARENT child stays in it. */
	inherit_job(BPF_CORE_READ(parent, tgid), tgid);

	f = reserve(sizeof(*f), GUARD_RECORD_FORK);
	if (!f)
		return 0;
	fill_header(&f->h, GUARD_RECORD_FORK, tgid, BPF_CORE_READ(child, start_boottime));
	f->parent_pid = parent_tgid;
	f->parent_start_time_ns = process_start(real_parent);
	f->uid = (__u32)bpf_get_current_uid_gid();
	f->cgroup_id = bpf_get_current_cgroup_id();
	bpf_probe_read_kernel_str(f->comm, sizeof(f->comm), child->comm);
	submit(f);
	return 0;
}

/* Moves an ending process's rounding counts (if it has any of its own) to rounding_exited. */
static __always_inline void keep_exited_rounding(__u32 tgid, __u64 start_time_ns)
{
	struct guard_rounding_key key = { .tgid = tgid, .start_time_ns = start_time_ns };
	struct guard_rounding *seen = bpf_map_lookup_elem(&rounding_switches, &tgid);

	if (seen && seen->start_time_ns == start_time_ns)
		bpf_map_update_elem(&rounding_exited, &key, seen, BPF_ANY);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(guard_exit, struct task_struct *task)
{
	struct guard_exit *x;
	__u32 tgid;

	/* The process ends with its last thread. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&gpu_seen, &tgid);
	bpf_map_delete_elem(&job_members, &tgid);
	keep_exited_rounding(tgid, process_start(task));
	bpf_map_delete_elem(&rounding_switches, &tgid);
	bpf_map_delete_elem(&exec_unrecorded, &tgid);
	x = reserve(sizeof(*x), GUARD_RECORD_EXIT);
	if (!x)
		return 0;
	fill_header(&x->h, GUARD_RECORD_EXIT, tgid, process_start(task));
	x->exit_code = BPF_CORE_READ(task, exit_code);
	x->pad = 0;
	submit(x);
	return 0;
}

/* A process moved into a job's cgroup is a member from then on (verdicts.h
 * join_job_cgroup), even if it is moved out before it forks or execs there. */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(guard_cgroup_attach, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
	if (dst == BPF_CORE_READ(task, cgroups, dfl_cgrp))
		join_job_cgroup(BPF_CORE_READ(task, tgid), dst);
	return 0;
}

/* RandomX switches the SSE rounding mode (MXCSR bits 13-14) all the time,
 * through all four modes; other software almost never leaves it set, and
 * what does (interval arithmetic) holds one or two directed modes (PyTorch
 * sets FTZ/DAZ, bits 15 and 6, which are not looked at). The x87 control
 * word's rounding control (bits 10-11, the same four modes in the same
 * order) does the same for x87 arithmetic, so a hasher that draws its modes
 * there (fldcw) is counted as one drawing them in MXCSR: a switch counts
 * once for each directed mode either register holds (fesetround sets both
 * alike: one count). Runs at every context switch away from a task: two
 * loads from the saved FPU state's first bytes and a test, unless a mode is
 * set; then a count for each mode it was in. AVX-512 embedded rounding
 * ({rz-sae}) is a per-instruction mode no register holds: out of reach. */
#define MXCSR_ROUNDING_SHIFT 13
#define X87_ROUNDING_SHIFT 10
#define XFEATURE_MASK_FP 1 /* arch/x86/include/asm/fpu/types.h: XSTATE_BV bit 0, the x87 state */
#define PF_EXITING 0x00000004 /* include/linux/sched.h; macros are not in BTF */

/* Adds one switch in mode (1 down, 2 up, 3 toward zero) to seen. */
static __always_inline void count_rounding(struct guard_rounding *seen, __u32 mode)
{
	if (mode >= 1 && mode <= GUARD_ROUNDING_MODES)
		__sync_fetch_and_add(&seen->switches[mode - 1], 1);
}

SEC("tp_btf/x86_fpu_regs_deactivated")
int BPF_PROG(guard_fpu, struct fpu *fpu)
{
	struct fpstate *state = fpu->fpstate;
	__u32 sse = (state->regs.fxsave.mxcsr >> MXCSR_ROUNDING_SHIFT) & 3;
	__u32 x87 = (state->regs.fxsave.cwd >> X87_ROUNDING_SHIFT) & 3, tgid;
	struct task_struct *task;
	struct guard_rounding *seen, first = {};
	__u64 start_time_ns;

	/* XSAVEOPT/XSAVES do not write the x87 area of a task whose x87 state
	 * is at its init value (control word 0x37f: nearest), so the bytes
	 * there may be an older state's: the control word is the saved one
	 * only when XSTATE_BV says the x87 state was saved. (A CPU without
	 * XSAVE leaves the header zero: x87 modes are not seen there.) */
	if (x87 != 0 && !(state->regs.xsave.header.xfeatures & XFEATURE_MASK_FP))
		x87 = 0;
	if (x87 == sse)
		x87 = 0;
	if (sse == 0 && x87 == 0)
		return 0;
	task = bpf_get_current_task_btf();
	/* Past sched_process_exit the FPU is dropped once more (exit_thread):
	 * counting that would make again the entry guard_exit removed. */
	if (task->flags & PF_EXITING)
		return 0;
	tgid = task->tgid;
	start_time_ns = process_start(task);
	seen = bpf_map_lookup_elem(&rounding_switches, &tgid);
	/* An entry of another process with this pid is never added to. */
	if (!seen || seen->start_time_ns != start_time_ns) {
		first.start_time_ns = start_time_ns;
		bpf_map_update_elem(&rounding_switches, &tgid, &first, BPF_ANY);
		seen = bpf_map_lookup_elem(&rounding_switches, &tgid);
		if (!seen)
			return 0;
	}
	count_rounding(seen, sse);
	count_rounding(seen, x87);
	return 0;
}

/* ---- sockets ------------------------------------------------------------ */

/* The socket's owner, claimed for the current process; *fresh: its storage
 * was made just now (zeroed: a stream whose first byte is still to come). */
static __always_inline struct sock_owner *claim_socket(struct bpf_sock *sk, bool *fresh)
{
	struct sock_owner *owner = stream_claim(&sock_owners, sk);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	*fresh = owner && owner->who.pid == 0;
	if (!owner || owner->who.pid == pid)
		return owner;
	owner->who.pid = pid;
	owner->who.start_time_ns = process_start(current_task());
	return owner;
}

static __always_inline void emit_udp_connect(struct bpf_sock_addr *ctx, __u16 family)
{
	struct guard_connect *c;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	c = reserve(sizeof(*c), GUARD_RECORD_CONNECT);
	if (!c)
		return;
	fill_header(&c->h, GUARD_RECORD_CONNECT, pid, process_start(current_task()));
	c->cookie = bpf_get_socket_cookie(ctx);
	c->family = family;
	c->protocol = ctx->protocol;
	c->dport = bpf_ntohs((__u16)ctx->user_port);
	c->sport = 0;
	c->result = GUARD_CONNECT_UDP;
	c->pad = 0;
	__builtin_memset(c->daddr, 0, sizeof(c->daddr));
	__builtin_memset(c->saddr, 0, sizeof(c->saddr));
	if (family == AF_INET) {
		__u32 ip4 = ctx->user_ip4;

		__builtin_memcpy(c->daddr, &ip4, 4);
	} else {
		__u32 ip6[4];

		ip6[0] = ctx->user_ip6[0];
		ip6[1] = ctx->user_ip6[1];
		ip6[2] = ctx->user_ip6[2];
		ip6[3] = ctx->user_ip6[3];
		__builtin_memcpy(c->daddr, ip6, 16);
	}
	submit(c);
}

static __always_inline int on_connect(struct bpf_sock_addr *ctx, __u16 family)
{
	struct bpf_sock *sk = ctx->sk;
	bool fresh;
	struct sock_owner *owner = claim_socket(sk, &fresh);

	/* TCP reports once the handshake has an outcome (egress, or its failure's tracepoints). */
	if (ctx->protocol == IPPROTO_UDP) {
		emit_udp_connect(ctx, family);
	} else if (owner && sk && sk->state == BPF_TCP_CLOSE) {
		owner->handshake = HANDSHAKE_NONE;
		if (!fresh)
			stream_restart(&owner->stream, sk);
	}
	return 1;
}

SEC("cgroup/connect4")
int guard_connect4(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx, AF_INET);
}

SEC("cgroup/connect6")
int guard_connect6(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx, AF_INET6);
}

/* Unconnected UDP (a resolver's sendto) gets its owner here. */
SEC("cgroup/sendmsg4")
int guard_sendmsg4(struct bpf_sock_addr *ctx)
{
	bool fresh;

	claim_socket(ctx->sk, &fresh);
	return 1;
}

SEC("cgroup/sendmsg6")
int guard_sendmsg6(struct bpf_sock_addr *ctx)
{
	bool fresh;

	claim_socket(ctx->sk, &fresh);
	return 1;
}

/* A TCP connect's outcome record, its addresses from the socket as egress
 * sees it. Often softirq context: the owner comes from storage, never current. */
static __always_inline void emit_tcp_outcome(struct __sk_buff *skb, struct bpf_sock *sk, struct sock_owner *owner, __u32 result)
{
	struct guard_connect *c;

	c = reserve(sizeof(*c), GUARD_RECORD_CONNECT);
	if (!c)
		return;
	fill_header(&c->h, GUARD_RECORD_CONNECT, owner->who.pid, owner->who.start_time_ns);
	c->cookie = bpf_get_socket_cookie(skb);
	c->family = sk->family;
	c->protocol = IPPROTO_TCP;
	c->dport = bpf_ntohs(sk->dst_port);
	c->sport = sk->src_port;
	c->result = result;
	c->pad = 0;
	__builtin_memset(c->daddr, 0, sizeof(c->daddr));
	__builtin_memset(c->saddr, 0, sizeof(c->saddr));
	if (sk->family == AF_INET) {
		__u32 d4 = sk->dst_ip4, s4 = sk->src_ip4;

		__builtin_memcpy(c->daddr, &d4, 4);
		__builtin_memcpy(c->saddr, &s4, 4);
	} else {
		__u32 d6[4], s6[4];

		d6[0] = sk->dst_ip6[0];
		d6[1] = sk->dst_ip6[1];
		d6[2] = sk->dst_ip6[2];
		d6[3] = sk->dst_ip6[3];
		s6[0] = sk->src_ip6[0];
		s6[1] = sk->src_ip6[1];
		s6[2] = sk->src_ip6[2];
		s6[3] = sk->src_ip6[3];
		__builtin_memcpy(c->daddr, d6, 16);
		__builtin_memcpy(c->saddr, s6, 16);
	}
	submit(c);
}

/* At egress, before the stream is read: the SYN opens the handshake; the
 * first packet after it in another state is its ACK (or data or a FIN
 * carrying it): established. */
static __always_inline void follow_handshake(struct __sk_buff *skb, struct bpf_sock *sk, struct sock_owner *owner)
{
	if (sk->state == BPF_TCP_SYN_SENT) {
		owner->handshake = HANDSHAKE_OPEN;
		owner->sport = sk->src_port;
		return;
	}
	if (owner->handshake != HANDSHAKE_OPEN)
		return;
	owner->handshake = HANDSHAKE_DONE;
	emit_tcp_outcome(skb, sk, owner, GUARD_CONNECT_ESTABLISHED);
}

/* A handshake that ends without being established: its failure record, the
 * addresses read from the socket itself (tracing context). */
static __always_inline void handshake_failed(const struct sock *sk)
{
	struct sock_owner *owner;
	struct guard_connect *c;
	__u16 family = sk->__sk_common.skc_family;

	if ((family != AF_INET && family != AF_INET6) || sk->sk_protocol != IPPROTO_TCP)
		return;
	owner = bpf_sk_storage_get(&sock_owners, (struct sock *)sk, 0, 0);
	if (!owner || owner->handshake != HANDSHAKE_OPEN)
		return;
	owner->handshake = HANDSHAKE_DONE;
	c = reserve(sizeof(*c), GUARD_RECORD_CONNECT);
	if (!c)
		return;
	fill_header(&c->h, GUARD_RECORD_CONNECT, owner->who.pid, owner->who.start_time_ns);
	c->cookie = bpf_get_socket_cookie((struct sock *)sk);
	c->family = family;
	c->protocol = IPPROTO_TCP;
	c->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	c->sport = owner->sport; /* tcp_done released the socket's own (inet_num is 0 by now) */
	c->result = GUARD_CONNECT_FAILED;
	c->pad = 0;
	__builtin_memset(c->daddr, 0, sizeof(c->daddr));
	__builtin_memset(c->saddr, 0, sizeof(c->saddr));
	if (family == AF_INET) {
		__u32 d4 = sk->__sk_common.skc_daddr, s4 = sk->__sk_common.skc_rcv_saddr;

		__builtin_memcpy(c->daddr, &d4, 4);
		__builtin_memcpy(c->saddr, &s4, 4);
	} else {
		bpf_probe_read_kernel(c->daddr, 16, &sk->__sk_common.skc_v6_daddr);
		bpf_probe_read_kernel(c->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	}
	submit(c);
}

/* The kernel reports a socket error: a refused or timed-out connect, or an
 * ICMP error, once the handshake is over (TCP_CLOSE). Only errors reach it. */
SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(guard_tcp_error, const struct sock *sk)
{
	if (sk->__sk_common.skc_state == TCP_CLOSE)
		handshake_failed(sk);
	return 0;
}

/* A TCP socket ends (once for each): a connect its process gave up on while
 * the handshake was open (closed in SYN_SENT) failed too. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(guard_tcp_destroy, struct sock *sk)
{
	handshake_failed(sk);
	return 0;
}

/* What the stream decided past its head: a proxy handshake done, or a
 * verdict. Recorded after the decision is in force, one record each. */
static __always_inline void emit_stream(struct __sk_buff *skb, struct sock_owner *owner, struct l4_location *loc,
					const struct stream_step *step)
{
	struct stream_state *st = &owner->stream;
	struct guard_stream *r;

	r = reserve(sizeof(*r), GUARD_RECORD_STREAM);
	if (!r)
		return;
	fill_header(&r->h, GUARD_RECORD_STREAM, owner->who.pid, owner->who.start_time_ns);
	r->cookie = bpf_get_socket_cookie(skb);
	r->family = loc->family;
	r->dport = step->dport;
	r->offset = step->decided ? step->decided_at : step->offset + step->len;
	r->verdict = step->decided ? st->verdict : 0;
	r->proxy = st->scan.proxy;
	r->proxy_address = st->scan.proxy_address;
	r->proxy_host_len = st->scan.proxy_host_len;
	r->proxy_port = st->scan.proxy_port;
	r->pad = 0;
	__builtin_memcpy(r->daddr, loc->daddr, sizeof(r->daddr));
	__builtin_memcpy(r->method, st->scan.method, sizeof(r->method));
	if (!step->decided || st->verdict == GUARD_STRATUM_HOLD)
		__builtin_memset(r->method, 0, sizeof(r->method));
	__builtin_memcpy(r->proxy_host, st->scan.proxy_host, sizeof(r->proxy_host));
	submit(r);
}

/* One payload record of a segment's reported bytes (chunk i of
 * GUARD_PAYLOAD_LEN), called directly for the first and by bpf_loop for the
 * rest, which only a TLS stream's head has. */
struct head_chunks {
	struct __sk_buff *skb;
	struct sock_owner *owner;
	struct l4_location *loc;
	__u32 offset; /* stream offset of the segment's first new byte */
	__u32 at;     /* its skb offset */
	__u32 end;    /* stream offset where the reported bytes end */
	__u16 dport;
	__u8 flags;   /* the last record's */
};

static __noinline long emit_head_chunk(__u32 i, void *ctx)
{
	struct head_chunks *c = ctx;
	struct guard_payload *p;
	__u32 offset, n;

	if (!c || i >= GUARD_TLS_HEAD_LEN / GUARD_PAYLOAD_LEN)
		return 1;
	offset = c->offset + i * GUARD_PAYLOAD_LEN;
	if (offset >= c->end)
		return 1;
	n = c->end - offset;
	if (n > GUARD_PAYLOAD_LEN)
		n = GUARD_PAYLOAD_LEN;
	if (n == 0)
		return 1;
	p = reserve(sizeof(*p), GUARD_RECORD_PAYLOAD);
	if (!p)
		return 1;
	if (bpf_skb_load_bytes(c->skb, c->at + i * GUARD_PAYLOAD_LEN, p->data, n)) {
		bpf_ringbuf_discard(p, 0);
		return 1;
	}
	fill_header(&p->h, GUARD_RECORD_PAYLOAD, c->owner->who.pid, c->owner->who.start_time_ns);
	p->cookie = bpf_get_socket_cookie(c->skb);
	p->family = c->loc->family;
	p->dport = c->dport;
	p->offset = offset;
	p->len = n;
	p->segments = c->owner->stream.segments;
	p->flags = offset + n >= c->end ? c->flags : 0;
	p->pad = 0;
	__builtin_memcpy(p->daddr, c->loc->daddr, sizeof(p->daddr));
	submit(p);
	return 0;
}

static long emit_next_head_chunk(__u32 i, void *ctx)
{
	return emit_head_chunk(i + 1, ctx);
}

/* Follows a TCP stream (stream.h) and reports its head, one record per
 * GUARD_PAYLOAD_LEN bytes of each segment: its first GUARD_PAYLOAD_LEN
 * bytes, or GUARD_TLS_HEAD_LEN when it opens with a TLS handshake record;
 * then what it decided. Returns 0 to drop the packet (stream_advance says
 * when). */
static __always_inline int capture_tcp(struct __sk_buff *skb, struct sock_owner *owner, struct l4_location *loc)
{
	struct stream_state *st = &owner->stream;
	struct head_chunks chunks;
	struct stream_step step;
	__u32 head_len = owner->head_len ? owner->head_len : GUARD_PAYLOAD_LEN;
	__u8 first;
	int verdict;

	verdict = stream_advance(skb, loc, st, &payload_scratch, head_len, &step);
	if (step.len && step.offset == 0) {
		/* The stream's first byte says how much of it is reported. */
		head_len = bpf_skb_load_bytes(skb, step.at, &first, 1) == 0 && first == 0x16 ? GUARD_TLS_HEAD_LEN : GUARD_PAYLOAD_LEN;
		owner->head_len = head_len;
	}
	if (step.len && step.offset < head_len) {
		chunks.skb = skb;
		chunks.owner = owner;
		chunks.loc = loc;
		chunks.offset = step.offset;
		chunks.at = step.at;
		chunks.end = step.offset + step.len < head_len ? step.offset + step.len : head_len;
		chunks.dport = step.dport;
		chunks.flags = (st->offset >= head_len || st->verdict ? GUARD_PAYLOAD_FINAL : 0) |
			       (step.decided && st->verdict != GUARD_STRATUM_HOLD ? GUARD_PAYLOAD_STRATUM : 0) |
			       (st->verdict == GUARD_STRATUM_DROP ? GUARD_PAYLOAD_DROPPED : 0);
		if (emit_head_chunk(0, &chunks) == 0 && chunks.end - chunks.offset > GUARD_PAYLOAD_LEN)
			bpf_loop(GUARD_TLS_HEAD_LEN / GUARD_PAYLOAD_LEN - 1, emit_next_head_chunk, &chunks, 0);
	}
	if (step.decided || st->scan.proxies != st->reported) {
		st->reported = st->scan.proxies;
		emit_stream(skb, owner, loc, &step);
	}
	return verdict;
}

static __always_inline void capture_dns(struct __sk_buff *skb, struct sock_owner *owner, struct l4_location *loc)
{
	struct udp_datagram dgram;
	struct guard_dns *d;
	__u32 n;

	if (read_udp_datagram(skb, loc, &dgram) || dgram.dport != DNS_PORT)
		return;
	n = dgram.payload_len;
	if (n > GUARD_DNS_LEN)
		n = GUARD_DNS_LEN;
	if (n == 0)
		return;
	d = reserve(sizeof(*d), GUARD_RECORD_DNS);
	if (!d)
		return;
	if (bpf_skb_load_bytes(skb, dgram.payload_offset, d->message, n)) {
		bpf_ringbuf_discard(d, 0);
		return;
	}
	fill_header(&d->h, GUARD_RECORD_DNS, owner->who.pid, owner->who.start_time_ns);
	d->cookie = bpf_get_socket_cookie(skb);
	d->family = loc->family;
	d->dport = DNS_PORT;
	d->len = n;
	d->pad = 0;
	__builtin_memcpy(d->daddr, loc->daddr, sizeof(d->daddr));
	submit(d);
}

SEC("cgroup_skb/egress")
int guard_egress(struct __sk_buff *skb)
{
	struct l4_location loc;
	struct sock_owner *owner;
	struct bpf_sock *sk = skb->sk;
	bool tcp;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	/* Only sockets that connected or sent while Guard watched have an owner. */
	owner = bpf_sk_storage_get(&sock_owners, sk, 0, 0);
	if (!owner)
		return 1;
	tcp = sk->protocol == IPPROTO_TCP;
	if (tcp && owner->handshake != HANDSHAKE_DONE)
		follow_handshake(skb, sk, owner);
	if (tcp && stream_settled(&owner->stream, owner->head_len ? owner->head_len : GUARD_PAYLOAD_LEN))
		return stream_verdict_return(&owner->stream);
	/* A segment of a stream still read whose header cannot be found is held, never let through unread. */
	if (locate_l4(skb, &loc))
		return tcp ? 0 : 1;
	if (loc.protocol == IPPROTO_TCP && tcp)
		return capture_tcp(skb, owner, &loc);
	if (loc.protocol == IPPROTO_UDP)
		capture_dns(skb, owner, &loc);
	return 1;
}

/* ---- unix sockets -------------------------------------------------------- */

/* What was first written into each unix stream or seqpacket socket, kept on
 * the receiving end. A relay's unix clients are told apart by it: the one
 * whose first bytes hold what the relay sent on is the sender. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct guard_unix_head);
} unix_heads SEC(".maps");

/* The same for unix datagram sockets, a head per sender: any process may
 * send to a named datagram socket, connected or not. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct guard_unix_dgram_heads);
} unix_dgram_heads SEC(".maps");

#define AF_UNIX 1 /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET and TCP_LISTEN are enum values in vmlinux.h */

/* Appends the linear bytes of the newest skb queued on sk to head, naming the
 * first writer and marking the head mixed when another writes into it later.
 * A reader racing to free the skb makes a short read, not a fault. */
static __always_inline void unix_capture(struct guard_unix_head *head, const struct sock *sk, __u32 tgid)
{
	struct sk_buff *skb;
	__u32 off, n, linear;

	if (head->len >= GUARD_UNIX_HEAD_LEN)
		return;
	skb = sk->sk_receive_queue.prev;
	if (!skb || (void *)skb == (void *)&sk->sk_receive_queue)
		return;
	linear = skb->len - skb->data_len;
	off = head->len;
	n = GUARD_UNIX_HEAD_LEN - off;
	if (n > linear)
		n = linear;
	if (n == 0 || off >= GUARD_UNIX_HEAD_LEN || n > GUARD_UNIX_HEAD_LEN)
		return;
	if (!head->pid) {
		head->pid = tgid;
		head->start_time_ns = process_start(bpf_get_current_task_btf());
	} else if (head->pid != tgid) {
		head->flags |= GUARD_UNIX_HEAD_MIXED;
	}
	if (bpf_probe_read_kernel(&head->data[off], n, skb->data))
		return;
	head->len = off + n;
}

/* A datagram into sk: into its sender's head, a free one taken for a new sender. */
static __always_inline void unix_dgram_capture(const struct sock *sk, __u32 tgid)
{
	struct guard_unix_dgram_heads *heads;
	int slot = -1;

	heads = bpf_sk_storage_get(&unix_dgram_heads, (struct sock *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!heads)
		return;
	for (int i = 0; i < GUARD_UNIX_DGRAM_WRITERS; i++) {
		if (heads->writers[i].pid == tgid || !heads->writers[i].pid) {
			slot = i;
			break;
		}
	}
	if (slot < 0 || slot >= GUARD_UNIX_DGRAM_WRITERS) {
		__sync_fetch_and_add(&heads->others, 1);
		return;
	}
	unix_capture(&heads->writers[slot], sk, tgid);
}

/* sk_data_ready runs on the receiving socket once bytes are queued on it; for
 * a unix socket of any type that is inside the writer's sendmsg, so current is
 * the writer. Every other socket leaves on its family (each received TCP
 * segment passes here: two loads and a compare). */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(guard_unix_data, const struct sock *sk)
{
	struct guard_unix_head *head;
	__u32 tgid;

	if (sk->__sk_common.skc_family != AF_UNIX || sk->__sk_common.skc_state == TCP_LISTEN)
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	if (sk->sk_type == SOCK_DGRAM) {
		unix_dgram_capture(sk, tgid);
		return 0;
	}
	if (sk->sk_type != SOCK_STREAM && sk->sk_type != SOCK_SEQPACKET)
		return 0;
	head = bpf_sk_storage_get(&unix_heads, (struct sock *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (head)
		unix_capture(head, sk, tgid);
	return 0;
}

/* ---- GPU ------------------------------------------------------------------ */

static __always_inline __u32 gpu_role(__u32 major, __u32 minor)
{
	for (int i = 0; i < GUARD_MAX_GPU_DEVICES; i++) {
		if (i >= guard_config.gpu_device_count)
			break;
		if (guard_config.gpu_devices[i].major == major &&
		    (guard_config.gpu_devices[i].minor < 0 || guard_config.gpu_devices[i].minor == (__s32)minor))
			return guard_config.gpu_devices[i].role;
	}
	return GUARD_GPU_NONE;
}

/* True the first time a process reaches this kind of touch. */
static __always_inline bool first_touch(__u32 pid, __u32 bit)
{
	__u64 *seen = bpf_map_lookup_elem(&gpu_seen, &pid);
	__u64 bits = bit;

	if (seen) {
		if (*seen & bit)
			return false;
		__sync_fetch_and_or(seen, bit);
		return true;
	}
	bpf_map_update_elem(&gpu_seen, &pid, &bits, BPF_NOEXIST);
	return true;
}

/* The first-touch record was lost to a full ring: the next touch tries again,
 * so a process that floods the ring first is not hidden for good. */
static __always_inline void forget_touch(__u32 pid, __u32 bit)
{
	__u64 *seen = bpf_map_lookup_elem(&gpu_seen, &pid);

	if (seen)
		__sync_fetch_and_and(seen, ~(__u64)bit);
}

SEC("cgroup/dev")
int guard_dev(struct bpf_cgroup_dev_ctx *ctx)
{
	struct guard_gpu_open *o;
	__u32 role, pid;

	if ((ctx->access_type & 0xFFFF) != BPF_DEVCG_DEV_CHAR)
		return 1;
	role = gpu_role(ctx->major, ctx->minor);
	if (role == GUARD_GPU_NONE)
		return 1;
	pid = bpf_get_current_pid_tgid() >> 32;
	if (pid == guard_config.self_pid || !first_touch(pid, GPU_SEEN_OPEN))
		return 1;
	o = reserve(sizeof(*o), GUARD_RECORD_GPU_OPEN);
	if (!o) {
		forget_touch(pid, GPU_SEEN_OPEN);
		return 1;
	}
	fill_header(&o->h, GUARD_RECORD_GPU_OPEN, pid, process_start(current_task()));
	o->major = ctx->major;
	o->minor = ctx->minor;
	o->access = ctx->access_type >> 16;
	o->role = role;
	submit(o);
	return 1;
}

static __always_inline void count(void *map, __u32 pid, __u32 slot)
{
	struct guard_gpu_count_key key = { .pid = pid, .slot = slot };
	__u64 one = 1, *value;

	value = bpf_map_lookup_elem(map, &key);
	if (value) {
		__sync_fetch_and_add(value, 1);
		return;
	}
	if (bpf_map_update_elem(map, &key, &one, BPF_NOEXIST)) {
		value = bpf_map_lookup_elem(map, &key);
		if (value)
			__sync_fetch_and_add(value, 1);
	}
}

struct nv_ioctl_xfer {
	__u32 cmd;
	__u32 size;
	__u64 ptr;
};

/* Which counter an RM escape goes to; the XFER escape wraps the real one. */
static __always_inline __u32 classify_rm(__u32 cmd, __u64 arg, __u32 *rm_class)
{
	__u32 nr = cmd & 0xFF;
	__u64 params = arg;

	if (((cmd >> 8) & 0xFF) != GUARD_NV_IOCTL_MAGIC)
		return GUARD_IOCTL_RM_OTHER;
	if (nr == GUARD_NV_ESC_IOCTL_XFER_CMD) {
		struct nv_ioctl_xfer xfer;

		if (bpf_probe_read_user(&xfer, sizeof(xfer), (void *)arg))
			return GUARD_IOCTL_RM_OTHER;
		nr = xfer.cmd & 0xFF;
		params = xfer.ptr;
	}
	switch (nr) {
	case GUARD_NV_ESC_RM_ALLOC:
	case GUARD_NV_ESC_RM_ALLOC_MEMORY:
		if (bpf_probe_read_user(rm_class, sizeof(*rm_class), (void *)(params + GUARD_NV_RM_ALLOC_CLASS_OFFSET)))
			*rm_class = 0;
		return GUARD_IOCTL_RM_ALLOC;
	case GUARD_NV_ESC_RM_FREE:
		return GUARD_IOCTL_RM_FREE;
	case GUARD_NV_ESC_RM_CONTROL:
		return GUARD_IOCTL_RM_CONTROL;
	case GUARD_NV_ESC_RM_MAP_MEMORY:
		return GUARD_IOCTL_RM_MAP;
	}
	return GUARD_IOCTL_RM_OTHER;
}

#define SIGSTOP 19

/*
 * A held process issues a GPU ioctl: something let it run (a stop it slipped
 * past, a continue from a path the quarantine programs do not see). It is
 * stopped again (the ioctl itself goes on: a signal lands as the syscall
 * returns) and counted. Current is the caller: process context, so the
 * SIGSTOP is queued at once.
 */
static __always_inline void stop_if_held(struct task_struct *task, __u32 tgid)
{
	struct guard_continue_key key = { .tgid = tgid, .via = GUARD_CONTINUE_GPU_IOCTL };
	struct guard_continue fresh = {}, *seen;
	struct guard_member *member;
	__u32 zero = 0;
	void *held;
	long err;

	held = bpf_map_lookup_elem(&held_tgids, &zero);
	if (!held)
		return;
	member = bpf_map_lookup_elem(held, &tgid);
	if (!member || member->start_ticks != task->group_leader->start_boottime / GUARD_NS_PER_TICK)
		return;
	/* A member inside its held cgroup was let run by a thaw, which the sensor answers (a stop would outlast a release's thaw). */
	if (guard_inside_hold(task, member->id))
		return;
	err = bpf_send_signal(SIGSTOP);
	key.hold_id = member->id;
	fresh.start_ticks = member->start_ticks;
	seen = bpf_map_lookup_elem(&held_gpu_ioctls, &key);
	if (!seen || seen->start_ticks != fresh.start_ticks) {
		bpf_map_update_elem(&held_gpu_ioctls, &key, &fresh, BPF_ANY);
		seen = bpf_map_lookup_elem(&held_gpu_ioctls, &key);
		if (!seen)
			return;
	}
	if (err)
		__sync_fetch_and_add(&seen->unanswered, 1);
	else
		__sync_fetch_and_add(&seen->refused, 1);
	seen->last_ns = bpf_ktime_get_boot_ns();
	seen->sender_tgid = tgid;
	seen->via = GUARD_CONTINUE_GPU_IOCTL;
	seen->error = err;
	bpf_get_current_comm(seen->sender_comm, sizeof(seen->sender_comm));
}

/* The syscall tracepoint's own record layout: every field is 8 bytes wide. */
struct sys_enter_ioctl_args {
	__u64 common;
	__s64 syscall_nr;
	__u64 fd;
	__u64 cmd;
	__u64 arg;
};

extern void *bpf_rdonly_cast(void *obj, __u32 btf_id) __ksym;

static __always_inline bool any_role(__u32 role)
{
	for (int i = 0; i < GUARD_MAX_GPU_DEVICES; i++) {
		if (i >= guard_config.gpu_device_count)
			break;
		if (guard_config.gpu_devices[i].role == role)
			return true;
	}
	return false;
}

/* Could this command be a GPU driver's? RM escapes are _IOC type 'F'; UVM
 * uses bare numbers (1..~100, and 0x3000000N for initialise). Every other
 * ioctl on the machine (terminals, sockets, block devices) leaves here,
 * before the fd table is touched. */
static __always_inline bool maybe_gpu_command(__u32 cmd)
{
	if (((cmd >> 8) & 0xFF) == GUARD_NV_IOCTL_MAGIC && any_role(GUARD_GPU_RM))
		return true;
	return (cmd < 0x1000 || (cmd & 0xFFFF0000) == 0x30000000) && any_role(GUARD_GPU_UVM);
}

SEC("tp/syscalls/sys_enter_ioctl")
int guard_ioctl(struct sys_enter_ioctl_args *ctx)
{
	struct task_struct *task;
	struct guard_gpu_ioctl *r;
	struct fdtable *fdt;
	struct file **fds;
	struct file *file;
	__u32 fd = ctx->fd, cmd = ctx->cmd, role, major, minor, pid, slot, rm_class = 0;
	dev_t rdev;

	if (!maybe_gpu_command(cmd))
		return 0;
	/* Resolve the fd, not a record of opens: fds inherited or opened before
	 * the sensor started count too. BTF pointer walks are plain loads; only
	 * the fd array entry needs a helper. */
	task = bpf_get_current_task_btf();
	fdt = task->files->fdt;
	if (fd >= fdt->max_fds)
		return 0;
	fds = fdt->fd;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	file = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
	if ((file->f_inode->i_mode & S_IFMT) != S_IFCHR)
		return 0;
	rdev = file->f_inode->i_rdev;
	major = rdev >> MINORBITS;
	minor = rdev & ((1U << MINORBITS) - 1);
	role = gpu_role(major, minor);
	if (role == GUARD_GPU_NONE)
		return 0;
	pid = bpf_get_current_pid_tgid() >> 32;
	if (pid == guard_config.self_pid)
		return 0;
	stop_if_held(task, pid);

	slot = role == GUARD_GPU_UVM ? GUARD_IOCTL_UVM : classify_rm(cmd, ctx->arg, &rm_class);
	count(&gpu_ioctl_counts, pid, slot);
	if (slot == GUARD_IOCTL_RM_ALLOC && rm_class)
		count(&gpu_class_counts, pid, rm_class);

	if (!first_touch(pid, GPU_SEEN_IOCTL))
		return 0;
	r = reserve(sizeof(*r), GUARD_RECORD_GPU_IOCTL);
	if (!r) {
		forget_touch(pid, GPU_SEEN_IOCTL);
		return 0;
	}
	fill_header(&r->h, GUARD_RECORD_GPU_IOCTL, pid, task->group_leader->start_boottime);
	r->major = major;
	r->minor = minor;
	r->cmd = cmd;
	r->role = role;
	submit(r);
	return 0;
}
