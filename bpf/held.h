/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * held.h: what the programs that answer for holds (quarantine.bpf.c, and
 * guard.bpf.c's GPU ioctl check) share about a member of a cgroup hold. A
 * cgroup hold's id is its cgroup's id (the kernfs id, the directory's inode
 * number); a tree hold's has bit 63 set, which no cgroup id has. Needs
 * vmlinux.h and bpf_core_read.h first.
 */
#ifndef GUARD_HELD_H
#define GUARD_HELD_H

/* Deepest cgroup nesting looked through; cgroup2 has no fixed limit, but
 * cgroup.max.depth defaults to unlimited and real hierarchies are < 16. */
#define GUARD_CGROUP_DEPTH_MAX 32

static __always_inline bool guard_cgroup_hold(__u64 hold_id)
{
	return !(hold_id >> 63);
}

/* Whether the cgroup cgrp is cgroup cgid or below it. Read through
 * bpf_probe_read_kernel (BPF_CORE_READ): the chain of parents is walked from
 * any context, sleepable or not. */
static __always_inline bool guard_cgroup_within(struct cgroup *cgrp, __u64 cgid)
{
	for (int i = 0; i < GUARD_CGROUP_DEPTH_MAX && cgrp; i++) {
		if (BPF_CORE_READ(cgrp, kn, id) == cgid)
			return true;
		/* struct cgroup begins with its css (self): a css's parent is the parent cgroup. */
		cgrp = (struct cgroup *)BPF_CORE_READ(cgrp, self.parent);
	}
	return false;
}

/* The cgroup2 cgroup task runs in (a thread's own, in a threaded subtree). */
static __always_inline struct cgroup *guard_task_cgroup(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp);
}

/* Whether a member of hold hold_id is where its hold has it: inside the held
 * cgroup (frozen there, so nothing to answer), for a cgroup hold; never, for
 * a tree hold, whose members are held wherever they run. */
static __always_inline bool guard_inside_hold(struct task_struct *task, __u64 hold_id)
{
	return guard_cgroup_hold(hold_id) && guard_cgroup_within(guard_task_cgroup(task), hold_id);
}

#endif
