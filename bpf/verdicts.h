/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * verdicts.h: the contract for what the kernel judges by itself, alike in
 * guard.bpf.c (the sensor's programs) and enforce.bpf.c (the few that keep
 * enforcing while no sensor runs): the policy maps, job membership and the
 * exec verdict. Each object that includes it has maps of its own; the sensor
 * writes the policy into each after load, finding every map by name
 * (sensor/Bpf/PolicyMaps.cs), and the job members besides. The Stratum
 * verdict, which reads stratum_methods and allowed_destinations, is in
 * stream.h.
 */
#ifndef GUARD_VERDICTS_H
#define GUARD_VERDICTS_H

#include "guard.h"

#define SIGKILL 9

/* Stratum methods from the policy, written by the sensor after load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct guard_method);
	__type(value, __u32);
} stratum_methods SEC(".maps");

/* The policy's allowed destinations: a Stratum match to one is reported, never dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct guard_destination_key);
	__type(value, __u8);
} allowed_destinations SEC(".maps");

/* Policy names, written by the sensor after load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct guard_name);
	__type(value, __u32);
} miner_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct guard_name);
	__type(value, __u32);
} job_root_names SEC(".maps");

/* uids the policy allows: never killed here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} allowed_uids SEC(".maps");

/* Executables the policy allows: never killed at exec, whatever their name. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct guard_file_key);
	__type(value, __u8);
} allowed_files SEC(".maps");

/* Which processes are inside a training job, and its root: set when a root
 * execs, inherited at fork, so "is this inside a job?" is one lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct guard_job_member);
} job_members SEC(".maps");

/* The group leader's start: a process's identity with its pid. */
static __always_inline __u64 process_start(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_boottime);
}

/* What exec decided and did: job membership (a root's exec starts a job)
 * and whether the new program was a miner the policy kills. */
struct exec_verdict {
	__u32 flags; /* GUARD_EXEC_IN_JOB, GUARD_EXEC_KNOWN_MINER, GUARD_EXEC_KILLED */
	__u32 job_root_pid;
};

static __always_inline bool allowed_file(struct linux_binprm *bprm)
{
	struct inode *inode = BPF_CORE_READ(bprm, file, f_inode);
	struct guard_file_key key = {
		.ino = BPF_CORE_READ(inode, i_ino),
		.dev = BPF_CORE_READ(inode, i_sb, s_dev),
	};

	return bpf_map_lookup_elem(&allowed_files, &key) != NULL;
}

/* Judges the exec of the current task and carries the verdict out: call it
 * from sched_process_exec, where a SIGKILL lands before the new program's
 * first user-space instruction. Callers call it before they reserve a
 * record, so that a full ring loses the record, never the job membership or
 * the kill. `comm` is the new comm (bpf_get_current_comm). */
static __always_inline void decide_exec(__u32 tgid, __u64 start_time_ns, const char *comm, __u32 uid,
					struct linux_binprm *bprm, struct exec_verdict *v)
{
	struct guard_job_member *member, root;
	struct guard_name name = {};
	__u32 *flags;

	v->flags = 0;
	v->job_root_pid = 0;
	__builtin_memcpy(name.name, comm, sizeof(name.name));
	member = bpf_map_lookup_elem(&job_members, &tgid);
	if (!member && bpf_map_lookup_elem(&job_root_names, &name)) {
		root.root_pid = tgid;
		root.pad = 0;
		root.root_start_time_ns = start_time_ns;
		bpf_map_update_elem(&job_members, &tgid, &root, BPF_ANY);
		member = bpf_map_lookup_elem(&job_members, &tgid);
	}
	if (member) {
		v->job_root_pid = member->root_pid;
		v->flags |= GUARD_EXEC_IN_JOB;
	}

	flags = bpf_map_lookup_elem(&miner_names, &name);
	if (!flags || bpf_map_lookup_elem(&allowed_uids, &uid) || allowed_file(bprm))
		return;
	if (!(*flags & GUARD_MINER_ANYWHERE) && !(member && (*flags & GUARD_MINER_IN_JOB)))
		return;
	v->flags |= GUARD_EXEC_KNOWN_MINER;
	if ((*flags & GUARD_MINER_KILL) && bpf_send_signal(SIGKILL) == 0)
		v->flags |= GUARD_EXEC_KILLED;
}

/* A child stays in its parent's job, however it is re-parented later.
 * Called before a fork record is reserved: a full ring loses the record,
 * never the membership. */
static __always_inline void inherit_job(__u32 parent_tgid, __u32 child_tgid)
{
	struct guard_job_member *member = bpf_map_lookup_elem(&job_members, &parent_tgid);

	if (member)
		bpf_map_update_elem(&job_members, &child_tgid, member, BPF_ANY);
}

#endif /* GUARD_VERDICTS_H */
