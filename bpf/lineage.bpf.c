// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Lineage: which process created which, recorded at fork and kept while it
 * can matter, so `guard kill --tree` and tree holds find every descendant
 * however it was re-parented: setsid and exit, a double fork, CLONE_PARENT
 * (the creator is the caller, never real_parent). Keyed by identity (tgid
 * and start), so a reused pid inherits nothing.
 *
 * An entry lives while its process runs or any recorded descendant does
 * (refs), so an exited middle links a live ancestor to a live descendant.
 * An exited creator that only one entry still names is spliced out by that
 * entry's process at its next fork or exit: a process that hops (forks,
 * then exits, again and again) leaves a chain of a few, not one per hop.
 * A spliced-out creator is not forgotten: lineage_heirs names, by its
 * identity, the entry that took its place (a descendant of it), so a finding
 * about a process that exited before anyone acted still reaches what it left
 * however its descendants forked and hopped since (an LRU of 32,768: a
 * hopper must splice that many before the decision to push one out).
 * When the map is full a fork is not recorded, and lineage_lost counts it.
 *
 * Stopping: while user space stops a tree it lists the members it has
 * stopped in lineage_stopping. A process that forks below one of them, by
 * recorded lineage, is stopped at that fork, and its child before it first
 * runs (Linux 6.13; before that the child is stopped at its own first
 * fork), so a tree cannot outrun its stop by forking or hopping.
 *
 * Pinned under /sys/fs/bpf/guard/lineage by the first guard that needs it
 * and left there: `guard kill` runs with no sensor. `guard detach --all`
 * removes it. Nothing here denies or writes records.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "guard.h"

#define SIGSTOP 19
#define EEXIST 17
#define LINEAGE_ENTRIES 65536
#define HEIR_ENTRIES 32768
#define SPLICE_STEPS 8
#define STOP_WALK_STEPS 16

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LINEAGE_ENTRIES);
	__type(key, struct guard_process_id);
	__type(value, struct guard_lineage);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lineage SEC(".maps");

/* Members of trees being stopped, by tgid; written by user space and by the fork program. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct guard_member);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lineage_stopping SEC(".maps");

/* Spliced-out exited creators: each one's heir, the entry that named it when
 * it went (a descendant of it that was, or is, alive). Heirs chain: an heir
 * spliced out later has an heir of its own. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, HEIR_ENTRIES);
	__type(key, struct guard_process_id);
	__type(value, struct guard_process_id);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lineage_heirs SEC(".maps");

/* Forks not recorded because the lineage map was full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lineage_lost SEC(".maps");

/* Linux 6.13+: signals a task other than current (see quarantine.bpf.c). */
extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type, __u64 value) __ksym __weak;

static __always_inline struct guard_process_id process_id(struct task_struct *task)
{
	struct guard_process_id id = {};

	id.tgid = BPF_CORE_READ(task, tgid);
	id.start_time_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	return id;
}

static __always_inline bool same_process(const struct guard_process_id *a, const struct guard_process_id *b)
{
	return a->tgid == b->tgid && a->start_time_ns == b->start_time_ns;
}

/* Passes over exited creators above a running process's own entry that only
 * this entry still names: its creator becomes theirs, and they go, each
 * leaving this entry as its heir. Only the
 * process itself writes its entry's creator, while it runs or as it exits. */
static __always_inline void splice_exited(struct guard_lineage *mine)
{
	for (int i = 0; i < SPLICE_STEPS; i++) {
		struct guard_process_id up = mine->creator;
		struct guard_lineage *link = bpf_map_lookup_elem(&lineage, &up);

		if (!link || link->alive || !same_process(&link->self, &up))
			return;
		/* refs 1 is this entry's own reference: it alone may take the link. */
		if (__sync_val_compare_and_swap(&link->refs, 1, 0) != 1)
			return;
		mine->creator = link->creator; /* the link's reference on it passes to this entry */
		bpf_map_update_elem(&lineage_heirs, &up, &mine->self, BPF_ANY);
		bpf_map_delete_elem(&lineage, &up);
	}
}

struct release {
	struct guard_process_id id;
};

/* Drops one reference; an entry that had the last goes, and so does its reference on its creator. */
static long release_step(__u64 index, void *data)
{
	struct release *r = data;
	struct guard_lineage *link = bpf_map_lookup_elem(&lineage, &r->id);
	struct guard_process_id up;

	if (!link || __sync_fetch_and_add(&link->refs, -1) != 1)
		return 1;
	up = link->creator;
	bpf_map_delete_elem(&lineage, &r->id);
	r->id = up;
	return 0;
}

/* The stop a forking process is below, if any: it, or a recorded creator up
 * to STOP_WALK_STEPS above it, is listed as stopping, by tgid and start,
 * and the stop has not lapsed (a guard that died mid-stop leaves nothing
 * that lasts). */
static __always_inline struct guard_member *stop_above(struct guard_process_id at)
{
	__u64 now = bpf_ktime_get_boot_ns();

	for (int i = 0; i < STOP_WALK_STEPS; i++) {
		struct guard_member *stop = bpf_map_lookup_elem(&lineage_stopping, &at.tgid);
		struct guard_lineage *link;

		if (stop && stop->start_ticks == at.start_time_ns / GUARD_NS_PER_TICK && now < stop->id)
			return stop;
		link = bpf_map_lookup_elem(&lineage, &at);
		if (!link || !same_process(&link->self, &at))
			return NULL;
		at = link->creator;
	}
	return NULL;
}

static __always_inline void mark_stopping(const struct guard_process_id *id, __u64 until)
{
	struct guard_member member = { .id = until, .start_ticks = id->start_time_ns / GUARD_NS_PER_TICK };
	__u32 tgid = id->tgid;

	bpf_map_update_elem(&lineage_stopping, &tgid, &member, BPF_ANY);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(guard_lin_fork, struct task_struct *creator, struct task_struct *child)
{
	struct guard_process_id me = process_id(creator), kid = {};
	struct guard_lineage link = {}, *mine;
	struct guard_member *stop;
	__u32 zero = 0;
	__u64 *lost;
	long err;

	if (child->pid != child->tgid)
		return 0; /* a thread: its process is recorded already */
	kid.tgid = child->tgid;
	kid.start_time_ns = child->start_boottime;
	mine = bpf_map_lookup_elem(&lineage, &me);
	if (mine)
		splice_exited(mine);
	link.self = kid;
	link.creator = me;
	link.refs = 1;
	link.alive = 1;
	err = bpf_map_update_elem(&lineage, &kid, &link, BPF_NOEXIST);
	if (!err) {
		if (mine)
			__sync_fetch_and_add(&mine->refs, 1);
	} else if (err != -EEXIST) {
		lost = bpf_map_lookup_elem(&lineage_lost, &zero);
		if (lost)
			__sync_fetch_and_add(lost, 1);
	}

	stop = stop_above(me);
	if (!stop)
		return 0;
	__u64 until = stop->id;

	mark_stopping(&me, until);
	mark_stopping(&kid, until);
	bpf_send_signal(SIGSTOP);
	if (bpf_send_signal_task)
		bpf_send_signal_task(child, SIGSTOP, PIDTYPE_TGID, 0);
	return 0;
}

/* The process ends with its last thread: its life's reference goes, and with it every link that only it kept. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(guard_lin_exit, struct task_struct *task)
{
	struct release r = {};
	struct guard_lineage *mine;
	__u32 tgid;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = task->tgid;
	bpf_map_delete_elem(&lineage_stopping, &tgid);
	r.id = process_id(task);
	mine = bpf_map_lookup_elem(&lineage, &r.id);
	/* Two threads can both see the last one gone: only one lets go. */
	if (!mine || __sync_lock_test_and_set(&mine->alive, 0) != 1)
		return 0;
	splice_exited(mine);
	bpf_loop(LINEAGE_ENTRIES, release_step, &r, 0);
	return 0;
}
