/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * jobnames.h: which cgroup directory names are a job's own cgroup (a Slurm
 * job, a Kubernetes pod, a container), as CgroupJobs.cs names them; shared by
 * verdicts.h (job membership) and confine.bpf.c (a new job confined at its
 * first exec). Global functions, no maps.
 */
#ifndef GUARD_JOBNAMES_H
#define GUARD_JOBNAMES_H

#include "guard.h"

#define CGROUP_NAME_MASK (GUARD_CGROUP_NAME_LEN - 1)

/*
 * The name tests below are arithmetic, not branches, and each kind of job is
 * judged in a global function of its own, which the verifier checks once:
 * a branch per character, or each kind's paths walked after every other's,
 * would not fit. The helpers return nonzero when the name does NOT match.
 */

/* 1 when c is outside lo..hi. */
static __always_inline __u32 outside(char c, char lo, char hi)
{
	__s32 x = (unsigned char)c;

	return (__u32)((x - lo) | (hi - x)) >> 31;
}

/* 1 when c is not want. */
static __always_inline __u32 differs(char c, char want)
{
	__s32 x = (unsigned char)c ^ (unsigned char)want;

	return (__u32)(x | -x) >> 31;
}

/* 1 when c is no lowercase hex digit. */
static __always_inline __u32 not_hex(char c)
{
	return outside(c, '0', '9') & outside(c, 'a', 'f');
}

/* Nonzero unless s[at..at+n) are n lowercase hex digits. */
static __always_inline __u32 hex_misses(const char *s, __u32 at, __u32 n)
{
	__u32 miss = 0;

	for (__u32 i = 0; i < n; i++)
		miss |= not_hex(s[(at + i) & CGROUP_NAME_MASK]);
	return miss;
}

/* Nonzero unless s (len bytes) ends with the literal suffix (n bytes); len >= n. */
static __always_inline __u32 suffix_misses(const char *s, __u32 len, const char *suffix, __u32 n)
{
	__u32 miss = 0;

	for (__u32 i = 0; i < n; i++)
		miss |= differs(s[(len - n + i) & CGROUP_NAME_MASK], suffix[i]);
	return miss;
}

/* Nonzero unless s starts with the literal prefix (n bytes). */
static __always_inline __u32 prefix_misses(const char *s, const char *prefix, __u32 n)
{
	__u32 miss = 0;

	for (__u32 i = 0; i < n; i++)
		miss |= differs(s[i], prefix[i]);
	return miss;
}

/* The levels of `cgroup` below the root a job's name is looked for in (at
 * most GUARD_CGROUP_JOB_LEVELS); *ancestors: &cgroup->ancestors[0], the
 * root, then each level down. */
static __always_inline __u32 job_levels(struct cgroup *cgroup, void **ancestors)
{
	__u32 levels = BPF_CORE_READ(cgroup, level);

	*ancestors = (void *)cgroup + bpf_core_field_offset(struct cgroup, ancestors);
	return levels > GUARD_CGROUP_JOB_LEVELS ? GUARD_CGROUP_JOB_LEVELS : levels;
}

/* Reads the directory name of the cgroup at level i + 1 of `ancestors` into
 * name (zeroed first): its kernfs node in *kn, its length without the NUL in
 * *len (negative when unreadable). False past the last ancestor. */
static __always_inline bool cgroup_level_name(void *ancestors, __u32 i, struct guard_cgroup_name *name, struct kernfs_node **kn,
					      long *len)
{
	struct cgroup *cgroup;

	if (bpf_probe_read_kernel(&cgroup, sizeof(cgroup), ancestors + (i + 1) * sizeof(cgroup)) || !cgroup)
		return false;
	*kn = BPF_CORE_READ(cgroup, kn);
	__builtin_memset(name, 0, sizeof(*name));
	*len = bpf_probe_read_kernel_str(name->name, sizeof(name->name), BPF_CORE_READ(*kn, name)) - 1;
	return true;
}

/* A cgroup directory name checked by the verifier: not NULL, and len
 * (its bytes, NUL-padded to the end) short enough to have been read whole. */
#define CGROUP_NAME_READ(name, len) ((name) && (len) > 0 && (len) < GUARD_CGROUP_NAME_LEN - 1)

/* "job_" then digits, nothing else: a Slurm job (job_778). */
__noinline int slurm_job(const struct guard_cgroup_name *name, __u32 len)
{
	const char *s;
	__u32 miss;

	if (!CGROUP_NAME_READ(name, len))
		return 0;
	s = name->name;
	miss = prefix_misses(s, "job_", 4);
	for (__u32 i = 4; i < GUARD_CGROUP_NAME_LEN; i++)
		miss |= outside(s[i], '0', '9') & differs(s[i], 0);
	return len > 4 && !miss;
}

/* A pod: "pod<UID>", alone or after a '-', then ".slice" or nothing
 * (kubepods-burstable-pod<UID>.slice, pod<UID>). The UID is 8-4-4-4-12 hex
 * digits, separated by '-' or by '_' (systemd escapes '-'). */
__noinline int kubernetes_pod(const struct guard_cgroup_name *name, __u32 len)
{
	const char *s;
	__u32 uid, miss;

	if (!CGROUP_NAME_READ(name, len))
		return 0;
	s = name->name;
	if (len >= 6 && !suffix_misses(s, len, ".slice", 6))
		len -= 6;
	if (len < 39)
		return 0;
	uid = len - 36;
	miss = suffix_misses(s, uid, "pod", 3);
	if (uid > 3)
		miss |= differs(s[(uid - 4) & CGROUP_NAME_MASK], '-');
	for (__u32 i = 0; i < 36; i++) {
		char c = s[(uid + i) & CGROUP_NAME_MASK];

		if (i == 8 || i == 13 || i == 18 || i == 23)
			miss |= differs(c, '-') & differs(c, '_');
		else
			miss |= not_hex(c);
	}
	return !miss;
}

#define CONTAINER_ID_LEN 64

/* A container: RUNTIME-<64 hex>.scope for docker, cri-containerd, crio and
 * libpod (a conmon scope is not one), or <64 hex> right under "docker". */
__noinline int container(const struct guard_cgroup_name *name, __u32 len, __u32 under_docker)
{
	__u32 runtime = len - CONTAINER_ID_LEN - 7; /* "-" and ".scope" */
	const char *s;

	if (!CGROUP_NAME_READ(name, len))
		return 0;
	s = name->name;
	if (under_docker && len == CONTAINER_ID_LEN)
		return !hex_misses(s, 0, CONTAINER_ID_LEN);
	if (runtime != 4 && runtime != 6 && runtime != 14)
		return 0;
	if (suffix_misses(s, len, ".scope", 6) | differs(s[runtime & CGROUP_NAME_MASK], '-') | hex_misses(s, runtime + 1, CONTAINER_ID_LEN))
		return 0;
	if (runtime == 4)
		return !prefix_misses(s, "crio", 4);
	if (runtime == 14)
		return !prefix_misses(s, "cri-containerd", 14);
	return !prefix_misses(s, "docker", 6) || !prefix_misses(s, "libpod", 6);
}

#endif /* GUARD_JOBNAMES_H */
