/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * verdicts.h: the contract for what the kernel judges by itself, alike in
 * guard.bpf.c (the sensor's programs) and enforce.bpf.c (the few that keep
 * enforcing while no sensor runs): the policy maps, job membership and the
 * exec verdict. Each object that includes it has maps of its own; the sensor
 * writes the policy into each after load, finding every map by name
 * (sensor/Bpf/PolicyMaps.cs), and the job members besides. Job cgroups are
 * judged here by name (job_cgroup_of_current), so each object knows them
 * from their first process without being told. The Stratum
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

/* Policy miner names, whole or families (struct guard_name_key), written by
 * the sensor after load. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct guard_name_key);
	__type(value, __u32);
} miner_names SEC(".maps");

/* Job root names, written by the sensor after load. */
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

/* Which processes are inside a training job: set at exec (a root's exec, or
 * an exec in a job's cgroup), inherited at fork, so "is this inside a job?"
 * is one lookup, and a process that leaves its job's cgroup stays in the job. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct guard_job_member);
} job_members SEC(".maps");

/* Units the policy makes jobs ([jobs] units), written by the sensor after load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct guard_cgroup_name);
	__type(value, __u8);
} job_units SEC(".maps");

/* Each cgroup's job once judged: the id of the job's own cgroup, 0 for none.
 * A v2 cgroup is never renamed and its id (a 64-bit inode) never reused, so
 * an entry never goes stale; one evicted is judged again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} cgroup_jobs SEC(".maps");

/* The group leader's start: a process's identity with its pid. */
static __always_inline __u64 process_start(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_boottime);
}

#include "jobnames.h"

/* Whether a directory name (len bytes, NUL-padded to the end) names a job;
 * under_docker: its parent is named "docker". */
static __always_inline bool cgroup_names_job(const struct guard_cgroup_name *name, __u32 len, __u32 under_docker)
{
	if (!CGROUP_NAME_READ(name, len))
		return false;
	return slurm_job(name, len) || kubernetes_pod(name, len) || container(name, len, under_docker)
	       || bpf_map_lookup_elem(&job_units, name) != NULL;
}

struct cgroup_walk {
	void *ancestors; /* &cgroup->ancestors[0]: the root, then each level down */
	__u64 job;       /* the job's own cgroup once found */
	__u32 under_docker;
	struct guard_cgroup_name name;
};

/* bpf_loop callback: judges the directory name at level i + 1; stops at the first (outermost) job. */
static long judge_cgroup_level(__u32 i, void *ctx)
{
	struct cgroup_walk *w = ctx;
	struct kernfs_node *kn;
	long len;

	/* A name that fills the buffer may have been cut short, and names no job. */
	if (!cgroup_level_name(w->ancestors, i, &w->name, &kn, &len))
		return 1;
	if (len < 0)
		len = 0;
	if (cgroup_names_job(&w->name, len, w->under_docker)) {
		w->job = BPF_CORE_READ(kn, id);
		return 1;
	}
	w->under_docker = len == 6 && !prefix_misses(w->name.name, "docker", 6);
	return 0;
}

/* The job's own cgroup that `cgroup` (of the default hierarchy) is or is
 * below (its id: what bpf_get_current_cgroup_id gives, an inode number on
 * cgroup v2), or 0. Judged by name, as the kernel sees it at this moment: a
 * cgroup made a moment ago is judged as surely as an old one, with no help
 * from user space. */
static __always_inline __u64 job_cgroup_of(struct cgroup *cgroup)
{
	struct cgroup_walk w = {};
	__u64 id = BPF_CORE_READ(cgroup, kn, id), *known;
	__u32 levels;

	known = bpf_map_lookup_elem(&cgroup_jobs, &id);
	if (known)
		return *known;
	levels = job_levels(cgroup, &w.ancestors);
	if (levels > 0)
		bpf_loop(levels, judge_cgroup_level, &w, 0);
	bpf_map_update_elem(&cgroup_jobs, &id, &w.job, BPF_ANY);
	return w.job;
}

/* The job's own cgroup the current task is in (job_cgroup_of), or 0. */
static __always_inline __u64 job_cgroup_of_current(void)
{
	return job_cgroup_of(BPF_CORE_READ(bpf_get_current_task_btf(), cgroups, dfl_cgrp));
}

/* A process moved into a cgroup (tp_btf/cgroup_attach_task, after the
 * move): when it is a job's, the process is a member from now on, and stays
 * one when it is moved out again before it ever forks or execs there.
 * `cgroup` must be of the default hierarchy: callers check it is the task's
 * dfl_cgrp (a write to a v1 hierarchy attaches there too). */
static __always_inline void join_job_cgroup(__u32 tgid, struct cgroup *cgroup)
{
	struct guard_job_member *member, joined = {};
	__u64 job_cgroup = job_cgroup_of(cgroup);

	if (!job_cgroup)
		return;
	member = bpf_map_lookup_elem(&job_members, &tgid);
	if (member)
		joined = *member;
	joined.cgroup_id = job_cgroup;
	bpf_map_update_elem(&job_members, &tgid, &joined, BPF_ANY);
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

/* The miner_names entry for the exec's comm, else for the name of the file
 * the kernel opened: comm is the name the exec was asked by (a symlink's,
 * "3" for /dev/fd/3, whatever fexecve's path says), the file keeps its own;
 * a memfd's is "memfd:" and the name its creator gave it. NULL: neither is
 * on the list, whole or by family. */
/* ASCII capitals made small: miner_names keys are folded (MinerNamePattern.Fold). */
static __always_inline void fold_name(char *name)
{
#pragma unroll
	for (int i = 0; i < GUARD_COMM_LEN; i++)
		name[i] += (name[i] >= 'A' && name[i] <= 'Z') ? 'a' - 'A' : 0;
}

static __always_inline __u32 *miner_name_flags(const char *comm, struct linux_binprm *bprm)
{
	struct guard_name_key key = { .prefixlen = 8 * GUARD_COMM_LEN };
	const unsigned char *dname;
	char memfd[6] = {};
	__u32 *flags;

	__builtin_memcpy(key.name, comm, sizeof(key.name));
	fold_name(key.name);
	flags = bpf_map_lookup_elem(&miner_names, &key);
	if (flags)
		return flags;
	dname = BPF_CORE_READ(bprm, file, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel(memfd, sizeof(memfd), dname) == 0 && memfd[0] == 'm' && memfd[1] == 'e' &&
	    memfd[2] == 'm' && memfd[3] == 'f' && memfd[4] == 'd' && memfd[5] == ':')
		dname += sizeof(memfd);
	__builtin_memset(key.name, 0, sizeof(key.name));
	if (bpf_probe_read_kernel_str(key.name, sizeof(key.name), dname) <= 0)
		return NULL;
	fold_name(key.name);
	return bpf_map_lookup_elem(&miner_names, &key);
}

/* Judges the exec of the current task and carries the verdict out: call it
 * from sched_process_exec, where a SIGKILL lands before the new program's
 * first user-space instruction. Callers call it before they reserve a
 * record, so that a full ring loses the record, never the job membership or
 * the kill. `comm` is the new comm (bpf_get_current_comm).
 *
 * The name: the exec's comm, or else the name of the file the kernel opened
 * (a symlink or a /dev/fd path renames the first, not the second).
 *
 * The job: its cgroup's (whatever launched the process: a shell in a pod is
 * in the pod), else the one it was in at fork or its last exec, else a new
 * tree when it is a launcher the policy names. A launcher inside a job with
 * none above it roots a tree there (the job's workers). */
static __always_inline void decide_exec(__u32 tgid, __u64 start_time_ns, const char *comm, __u32 uid,
					struct linux_binprm *bprm, struct exec_verdict *v)
{
	struct guard_job_member *member, joined = {};
	struct guard_name name = {};
	__u64 job_cgroup = job_cgroup_of_current();
	__u32 *flags;
	bool in_job;

	v->flags = 0;
	v->job_root_pid = 0;
	__builtin_memcpy(name.name, comm, sizeof(name.name));
	member = bpf_map_lookup_elem(&job_members, &tgid);
	if (member)
		joined = *member;
	if (!joined.root_pid && bpf_map_lookup_elem(&job_root_names, &name)) {
		joined.root_pid = tgid;
		joined.root_start_time_ns = start_time_ns;
	}
	if (job_cgroup)
		joined.cgroup_id = job_cgroup;
	in_job = joined.root_pid || joined.cgroup_id;
	if (in_job) {
		if (!member || member->root_pid != joined.root_pid || member->cgroup_id != joined.cgroup_id)
			bpf_map_update_elem(&job_members, &tgid, &joined, BPF_ANY);
		v->job_root_pid = joined.root_pid;
		v->flags |= GUARD_EXEC_IN_JOB;
	}

	flags = miner_name_flags(comm, bprm);
	if (!flags || bpf_map_lookup_elem(&allowed_uids, &uid) || allowed_file(bprm))
		return;
	if (!(*flags & GUARD_MINER_ANYWHERE) && !(in_job && (*flags & GUARD_MINER_IN_JOB)))
		return;
	v->flags |= GUARD_EXEC_KNOWN_MINER;
	if (*flags & GUARD_MINER_ANYWHERE)
		v->flags |= GUARD_EXEC_MINER_ANYWHERE;
	if ((*flags & GUARD_MINER_KILL) && bpf_send_signal(SIGKILL) == 0)
		v->flags |= GUARD_EXEC_KILLED;
}

/* A child stays in its parent's job, however it is re-parented or moved
 * later; a child of a process that is in a job by its cgroup alone (there
 * before Guard, or not exec'd since) is recorded as a member now, so it too
 * stays in the job when it leaves the cgroup. Call it from
 * sched_process_fork, where the current task is the one that forked. Called
 * before a fork record is reserved: a full ring loses the record, never the
 * membership. */
static __always_inline void inherit_job(__u32 parent_tgid, __u32 child_tgid)
{
	struct guard_job_member *member = bpf_map_lookup_elem(&job_members, &parent_tgid);
	struct guard_job_member joined = {};

	if (member) {
		bpf_map_update_elem(&job_members, &child_tgid, member, BPF_ANY);
		return;
	}
	joined.cgroup_id = job_cgroup_of_current();
	if (joined.cgroup_id)
		bpf_map_update_elem(&job_members, &child_tgid, &joined, BPF_ANY);
}

#endif /* GUARD_VERDICTS_H */
