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
 *
 * A hold holds against the held: a SIGCONT to a member is answered with
 * SIGSTOP before it can run (each thread stopped by its own task_work), a
 * tracer's resume kills it, and a TCP socket a held process sends on (one
 * passed in, or in cgroup mode one made outside the cgroup) is marked for
 * egress to drop. Each attempt is counted for the sensor and `guard status`.
 * The root programs stay attached while any hold exists, cgroup holds too.
 *
 * A cgroup hold holds its members as processes too (quarantine_tgids, with
 * the cgroup id as the hold): the hold follows a member moved out of the
 * cgroup (which thaws it), not the directory. Inside the held cgroup the
 * freezer holds them and nothing is answered (a stop queued there would
 * outlast the thaw of a release); outside it, they are answered as a tree
 * hold's are, and the move itself is stopped and counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "guard.h"
#include "held.h"

#define BPF_DEVCG_DEV_CHAR 2 /* uapi bpf.h; not in BTF */
#define SIGKILL 9
#define SIGSTOP 19
#define SIGCONT 18
#define TASK_TRACED 0x8 /* __TASK_TRACED, include/linux/sched.h */
#define SI_USER 0
#define SI_KERNEL 0x80
#define ENOSYS 38
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

/* Tree mode: what tried to let a held process run, per hold and member
 * (struct guard_continue). Written here; read by the sensor, which reports
 * the growth and stops by pidfd what the kernel could not, and by `guard
 * status`; removed with the hold. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct guard_continue_key);
	__type(value, struct guard_continue);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} quarantine_continues SEC(".maps");

/* Cgroup mode: the levels (depth below the cgroup2 root) of the held
 * cgroups, a bit each, written by user space at each cgroup hold; stale bits
 * cost a lookup, nothing else. Where guard_qtree_tcp_send looks for a held
 * ancestor of the sender. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} quarantine_cgroup_levels SEC(".maps");

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

/* A held member that the freezer does not hold: any member of a tree hold,
 * a member of a cgroup hold that is outside the held cgroup. Only these are
 * stopped, killed or counted; every member is denied the network and GPUs. */
static __always_inline bool loose(struct guard_member *member, struct task_struct *task)
{
	return member && held_id(&member->id) && !guard_inside_hold(task, member->id);
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

/* The hold of the cgroup current runs in or below, in cgroup mode; 0 when none. */
static __always_inline __u64 held_cgroup_of_current(void)
{
	struct guard_quarantine *record;
	__u64 *levels, id;
	__u32 zero = 0;

	levels = bpf_map_lookup_elem(&quarantine_cgroup_levels, &zero);
	if (!levels || !*levels)
		return 0;
	for (int level = 1; level < 64; level++) {
		if (!(*levels & (1ULL << level)))
			continue;
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			return 0; /* current is above that level */
		record = bpf_map_lookup_elem(&quarantines, &id);
		if (record && record->mode == GUARD_QUARANTINE_CGROUP)
			return id;
	}
	return 0;
}

/* The cgroup hold whose cgroup holds cgrp (it or an ancestor), by the levels
 * held; 0 when none. For a task other than current (a child at fork, a task
 * being moved). */
static __always_inline __u64 held_cgroup_of(struct cgroup *cgrp)
{
	struct guard_quarantine *record;
	__u64 *levels, id;
	__u32 zero = 0;
	int level;

	levels = bpf_map_lookup_elem(&quarantine_cgroup_levels, &zero);
	if (!levels || !*levels)
		return 0;
	for (int i = 0; i < GUARD_CGROUP_DEPTH_MAX && cgrp; i++) {
		level = BPF_CORE_READ(cgrp, level);
		if (level < 1)
			return 0;
		if (level < 64 && (*levels & (1ULL << level))) {
			id = BPF_CORE_READ(cgrp, kn, id);
			record = bpf_map_lookup_elem(&quarantines, &id);
			if (record && record->mode == GUARD_QUARANTINE_CGROUP)
				return id;
		}
		cgrp = (struct cgroup *)BPF_CORE_READ(cgrp, self.parent);
	}
	return 0;
}

/*
 * A held process sends on a TCP socket that is not marked: one passed in
 * over a unix socket (SCM_RIGHTS) while it ran, or, in a cgroup hold, one
 * made outside the cgroup (a socket belongs to its creator's cgroup, so the
 * programs attached to the held cgroup never see its packets). The socket is
 * marked before the first byte is queued, and egress drops it like the
 * held's own. Runs for every TCP send on the machine while a hold exists;
 * a sender that is not held costs a lookup, and one per level a cgroup is
 * held at.
 */
SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(guard_qtree_tcp_send, struct sock *sk, struct msghdr *msg, struct sk_buff *skb, int size_goal)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct guard_member *member = membership(bpf_get_current_pid_tgid() >> 32, task);
	__u64 *mark, hold = 0;

	if (member && held_id(&member->id))
		hold = member->id;
	else
		hold = held_cgroup_of_current();
	if (!hold)
		return 0;
	mark = bpf_sk_storage_get(&quarantine_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (mark)
		*mark = hold;
	return 0;
}

/* A held process that forks (it was not stopped yet, or someone sent it
 * SIGCONT): the child is held too, and stopped before it first runs, unless
 * it is inside its held cgroup, where the freezer holds it. The holder is the
 * caller (parent here is current), so a child made with CLONE_PARENT, whose
 * real parent is the caller's parent, is held as well. A child anyone makes
 * in a held cgroup (clone3 with CLONE_INTO_CGROUP from outside, a fork
 * inside) is a member of that cgroup's hold: frozen there, held if it leaves. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(guard_qtree_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 child_tgid = child->tgid;
	struct guard_member *member, held;

	if (child->pid != child_tgid)
		return 0; /* a thread: its process is held already */
	held.start_ticks = child->start_boottime / GUARD_NS_PER_TICK;
	member = membership(parent->tgid, parent);
	if (member && held_id(&member->id)) {
		held.id = member->id;
	} else {
		held.id = held_cgroup_of(guard_task_cgroup(child));
		if (!held.id)
			return 0;
	}
	bpf_map_update_elem(&quarantine_tgids, &child_tgid, &held, BPF_ANY);
	if (bpf_send_signal_task && !guard_inside_hold(child, held.id))
		bpf_send_signal_task(child, SIGSTOP, PIDTYPE_TGID, 0);
	return 0;
}

/*
 * One stop per thread of a held process that is continued: a task_work
 * (Linux 6.18, bpf_task_work_schedule_signal) that runs as that thread
 * before it can return to user space. A group SIGSTOP wakes one thread; the
 * others would run user code until that one is scheduled, while a thread's
 * own task_work kicks it out of user space at once. Keyed by thread id; an
 * entry goes when its thread exits or its process is no longer held.
 */
struct thread_stop {
	struct bpf_task_work work;
};

/* Pinned: a task_work is scheduled only while the map has a user reference. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct thread_stop);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} quarantine_thread_stops SEC(".maps");

extern int bpf_task_work_schedule_signal_impl(struct task_struct *task, struct bpf_task_work *tw, void *map__map,
					      int (*callback)(struct bpf_map *, void *, void *), void *aux__prog) __ksym __weak;
extern int bpf_iter_task_new(struct bpf_iter_task *it, struct task_struct *task, unsigned int flags) __ksym __weak;
extern struct task_struct *bpf_iter_task_next(struct bpf_iter_task *it) __ksym __weak;
extern void bpf_iter_task_destroy(struct bpf_iter_task *it) __ksym __weak;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym __weak;

/* Runs as the thread, in task context with interrupts on, so the SIGSTOP is
 * queued at once; only while its process is still held (a work left pending
 * past a release stops nobody). */
static int stop_this_thread(struct bpf_map *map, void *key, void *value)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	if (loose(membership(bpf_get_current_pid_tgid() >> 32, task), task))
		bpf_send_signal(SIGSTOP);
	return 0;
}

/* Schedules a stop on every thread of the process led by leader; returns how many were scheduled. */
static __always_inline int stop_each_thread(struct task_struct *leader)
{
	struct thread_stop fresh = {}, *stop;
	struct task_struct *t, *ref;
	struct bpf_iter_task it;
	int scheduled = 0;
	__u32 tid;

	if (!bpf_iter_task_new || !bpf_task_work_schedule_signal_impl || !bpf_task_acquire)
		return 0;
	bpf_iter_task_new(&it, leader, BPF_TASK_ITER_PROC_THREADS);
	while ((t = bpf_iter_task_next(&it))) {
		tid = t->pid;
		stop = bpf_map_lookup_elem(&quarantine_thread_stops, &tid);
		if (!stop) {
			bpf_map_update_elem(&quarantine_thread_stops, &tid, &fresh, BPF_NOEXIST);
			stop = bpf_map_lookup_elem(&quarantine_thread_stops, &tid);
			if (!stop)
				continue;
		}
		ref = bpf_task_acquire(t);
		if (!ref)
			continue;
		/* -EBUSY: a stop is pending on that thread still, which does as well. */
		if (!bpf_task_work_schedule_signal_impl(ref, &stop->work, &quarantine_thread_stops, stop_this_thread, NULL))
			scheduled++;
		bpf_task_release(ref);
	}
	bpf_iter_task_destroy(&it);
	return scheduled;
}

/* Schedules a stop on every thread of process tgid, iterated from its
 * leader (an iterator started at another thread sees only those after it);
 * returns how many were scheduled. */
static __always_inline int stop_each_thread_of(__u32 tgid)
{
	struct task_struct *leader;
	int scheduled;

	if (!bpf_task_from_pid)
		return 0;
	leader = bpf_task_from_pid(tgid);
	if (!leader)
		return 0;
	scheduled = stop_each_thread(leader);
	bpf_task_release(leader);
	return scheduled;
}

/* Counts one attempt to let a held process run and what the stop returned. */
static __always_inline void count_continue(__u64 hold_id, __u32 tgid, __u64 start, __u32 via, int si_code, long error)
{
	struct guard_continue_key key = { .hold_id = hold_id, .tgid = tgid, .via = via };
	struct guard_continue fresh = { .start_ticks = start }, *seen;

	seen = bpf_map_lookup_elem(&quarantine_continues, &key);
	if (!seen || seen->start_ticks != start) {
		/* First time, or a pid of the hold's that changed hands: counted afresh. */
		bpf_map_update_elem(&quarantine_continues, &key, &fresh, BPF_ANY);
		seen = bpf_map_lookup_elem(&quarantine_continues, &key);
		if (!seen)
			return;
	}
	if (error)
		__sync_fetch_and_add(&seen->unanswered, 1);
	else
		__sync_fetch_and_add(&seen->refused, 1);
	seen->last_ns = bpf_ktime_get_boot_ns();
	seen->sender_tgid = bpf_get_current_pid_tgid() >> 32;
	seen->si_code = si_code;
	seen->via = via;
	seen->error = error;
	bpf_get_current_comm(seen->sender_comm, sizeof(seen->sender_comm));
}

/*
 * A held process is sent SIGCONT (kill, tgkill, a process group's, a POSIX
 * timer's, the kernel's to an orphaned process group): it is stopped again
 * at once. This runs after the kernel has flushed the pending stop and woken
 * every thread (prepare_signal), under the target's siglock with irqs off,
 * so the SIGSTOP is queued through the helper's irq_work: it lands as soon
 * as the sender's CPU takes interrupts again, before a woken thread can take
 * the siglock and leave the kernel. A SIGSTOP generated after the SIGCONT
 * also flushes it from the queue, so a SIGCONT handler never runs. When the
 * irq_work slot of this CPU is taken (-EBUSY) the stop is not queued:
 * counted as unanswered, and the sensor stops the process by its pidfd.
 */
SEC("tp_btf/signal_generate")
int BPF_PROG(guard_qtree_continue, int sig, struct kernel_siginfo *info, struct task_struct *task, int group, int result)
{
	struct guard_member *member;
	__u32 tgid;
	long err;
	int code;

	if (sig != SIGCONT)
		return 0;
	tgid = task->tgid;
	member = membership(tgid, task);
	if (!loose(member, task))
		return 0;
	err = bpf_send_signal_task ? bpf_send_signal_task(task, SIGSTOP, PIDTYPE_TGID, 0) : -ENOSYS;
	stop_each_thread_of(tgid);
	/* SEND_SIG_NOINFO (0) is a user's kill, SEND_SIG_PRIV (1) the kernel's. */
	code = (unsigned long)info == 0 ? SI_USER : (unsigned long)info == 1 ? SI_KERNEL : BPF_CORE_READ(info, si_code);
	count_continue(member->id, tgid, member->start_ticks, GUARD_CONTINUE_SIGNAL, code, err);
	return 0;
}

/* The tracer resumes the thread to deliver a SIGSTOP it stopped on: it goes
 * on into a group stop and runs no user code. Anything else it is resumed
 * from (a group-stop trap, a syscall stop, a SIGSTOP swapped for 0) runs it. */
static __always_inline bool resumed_into_stop(struct task_struct *p)
{
	kernel_siginfo_t *delivering = p->last_siginfo;

	return p->exit_code == SIGSTOP && delivering && delivering->si_signo == SIGSTOP;
}

/*
 * A tracer lets a held thread run (PTRACE_CONT, _SYSCALL, _SINGLESTEP,
 * _DETACH with a signal...): with PTRACE_SEIZE that works on a stopped
 * process and sends no signal, and a SIGSTOP sent back would only stop it
 * in a signal-delivery-stop its tracer ends at will. So the held process is
 * killed: held means nothing it holds is used, and a tracer can undo any
 * stop. Seen where the kernel wakes it from the tracing stop; nearly every
 * wakeup on the machine leaves at the first test (no tracer).
 */
SEC("tp_btf/sched_waking")
int BPF_PROG(guard_qtree_ptrace, struct task_struct *p)
{
	struct guard_member *member;
	__u32 tgid;
	long err;

	if (!p->ptrace)
		return 0;
	if (!(p->__state & TASK_TRACED) || (p->pending.signal.sig[0] & (1UL << (SIGKILL - 1))) || resumed_into_stop(p))
		return 0;
	tgid = p->tgid;
	member = membership(tgid, p);
	if (!loose(member, p))
		return 0;
	err = bpf_send_signal_task ? bpf_send_signal_task(p, SIGKILL, PIDTYPE_TGID, 0) : -ENOSYS;
	count_continue(member->id, tgid, member->start_ticks, GUARD_CONTINUE_PTRACE, 0, err);
	return 0;
}

/*
 * A task is moved to another cgroup (cgroup.procs, cgroup.threads), by
 * anyone. A member of a cgroup hold moved out of the held cgroup was thawed
 * by the move: it is stopped (SIGSTOP, and a stop on each thread, as for a
 * continue) and the move counted, with the mover as the sender; moved within
 * it (into a child cgroup) it stays frozen. A process moved into a held
 * cgroup is frozen by the move, and a member from then on. Runs after the
 * move, in the mover's context, once per write: task is the thread group's
 * leader when a whole process moved, else the one thread. Like a continue,
 * the move wakes the task before the stop can be queued: a few µs of user
 * code can run.
 */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(guard_qtree_move, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
	struct guard_member *member, held;
	__u32 tgid = task->tgid;
	long err;

	member = membership(tgid, task);
	if (member && held_id(&member->id)) {
		if (!guard_cgroup_hold(member->id) || guard_cgroup_within(dst, member->id))
			return 0;
		err = bpf_send_signal_task ? bpf_send_signal_task(task, SIGSTOP, PIDTYPE_TGID, 0) : -ENOSYS;
		stop_each_thread_of(tgid);
		count_continue(member->id, tgid, member->start_ticks, GUARD_CONTINUE_CGROUP_MOVE, 0, err);
		return 0;
	}
	held.id = held_cgroup_of(dst);
	if (!held.id)
		return 0;
	held.start_ticks = start_ticks(task);
	bpf_map_update_elem(&quarantine_tgids, &tgid, &held, BPF_ANY);
	return 0;
}

/* Forget a process when it ends, before its pid can be given to another. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(guard_qtree_exit, struct task_struct *task)
{
	__u32 tgid, tid = task->pid;

	/* Every thread: its pending stop, if any, goes with it. */
	if (bpf_map_lookup_elem(&quarantine_thread_stops, &tid))
		bpf_map_delete_elem(&quarantine_thread_stops, &tid);
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = task->tgid;
	bpf_map_delete_elem(&quarantine_tgids, &tgid);
	return 0;
}
