/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * verdicts.h: what the kernel decides by itself, shared by guard.bpf.c (the
 * sensor's programs) and enforce.bpf.c (the few that keep enforcing while no
 * sensor runs): the policy maps, job membership, the exec verdict and the
 * Stratum scan. Each object that includes it has maps of its own.
 */
#ifndef GUARD_VERDICTS_H
#define GUARD_VERDICTS_H

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define SIGKILL 9

/* Stratum methods from the policy, written by the sensor after load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct guard_method);
	__type(value, __u32);
} stratum_methods SEC(".maps");

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

/* Stratum scan across a connection's first segments: where in
 * `"method":"..."` the stream is. */
struct stream_scan {
	__u8 scan_stage;
	__u8 scan_index;
	__u8 method_len;
	__u8 pad;
	char method[GUARD_METHOD_LEN];
};

struct l4_location {
	__u32 offset; /* of the transport header */
	__u16 family;
	__u8 protocol;
	__u8 daddr[16];
};

/* Headers are read in place (direct packet access: no helper call per
 * packet); they sit in the linear part at egress. */
static __always_inline int locate_l4(struct __sk_buff *skb, struct l4_location *loc)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	__builtin_memset(loc->daddr, 0, sizeof(loc->daddr));
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end)
			return -1;
		loc->offset = ip->ihl * 4;
		loc->family = AF_INET;
		loc->protocol = ip->protocol;
		__builtin_memcpy(loc->daddr, &ip->daddr, 4);
		return 0;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end)
			return -1;
		loc->offset = sizeof(*ip6);
		loc->family = AF_INET6;
		loc->protocol = ip6->nexthdr; /* extension headers are not followed */
		__builtin_memcpy(loc->daddr, &ip6->daddr, 16);
		return 0;
	}
	return -1;
}

enum scan_stage {
	SCAN_KEY = 0,    /* looking for "method" */
	SCAN_COLON = 1,  /* then ':' */
	SCAN_QUOTE = 2,  /* then the value's opening quote */
	SCAN_VALUE = 3,  /* then the name, up to its closing quote */
	SCAN_GIVEN_UP = 4,
};

static __always_inline bool json_space(__u8 c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct scan_context {
	struct stream_scan *scan;
	const __u8 *buf;
	__u32 n;
	__u32 stream_offset;
	__u32 verdict;
};

/* The bytes of "method", quotes included. (A static array would land in
 * .rodata beside guard_config.) */
static __always_inline char method_key(__u8 i)
{
	switch (i) {
	case 1: return 'm';
	case 2: return 'e';
	case 3: return 't';
	case 4: return 'h';
	case 5: return 'o';
	case 6: return 'd';
	default: return '"';
	}
}

#define METHOD_KEY_LEN 8

static long scan_byte(__u32 i, struct scan_context *ctx)
{
	struct stream_scan *o = ctx->scan;
	__u8 c;

	if (i >= ctx->n || o->scan_stage == SCAN_GIVEN_UP)
		return 1;
	c = ctx->buf[i & (GUARD_PAYLOAD_LEN - 1)];
	if (ctx->stream_offset + i == 0 && c != '{') {
		o->scan_stage = SCAN_GIVEN_UP;
		return 1;
	}
	switch (o->scan_stage) {
	case SCAN_KEY:
		if (c == method_key(o->scan_index)) {
			o->scan_index++;
			if (o->scan_index == METHOD_KEY_LEN)
				o->scan_stage = SCAN_COLON;
		} else {
			o->scan_index = c == '"' ? 1 : 0;
		}
		break;
	case SCAN_COLON:
		if (c == ':')
			o->scan_stage = SCAN_QUOTE;
		else if (!json_space(c))
			o->scan_stage = SCAN_KEY, o->scan_index = 0;
		break;
	case SCAN_QUOTE:
		if (c == '"') {
			o->scan_stage = SCAN_VALUE;
			o->method_len = 0;
			__builtin_memset(o->method, 0, sizeof(o->method));
		} else if (!json_space(c)) {
			o->scan_stage = SCAN_KEY, o->scan_index = 0;
		}
		break;
	case SCAN_VALUE:
		if (c == '"') {
			__u32 *verdict = bpf_map_lookup_elem(&stratum_methods, o->method);

			o->scan_stage = SCAN_KEY;
			o->scan_index = 0;
			if (verdict) {
				ctx->verdict = *verdict;
				return 1;
			}
		} else if (o->method_len < GUARD_METHOD_LEN - 1) {
			o->method[o->method_len & (GUARD_METHOD_LEN - 1)] = c;
			o->method_len++;
		} else {
			o->scan_stage = SCAN_KEY, o->scan_index = 0;
		}
		break;
	}
	return 0;
}

/* Feeds one segment of the stream to the Stratum scan; returns the verdict
 * (GUARD_STRATUM_*) once a method the policy names is complete. A Stratum
 * first line is a JSON object: a stream that does not open with '{' is not
 * one. bpf_loop keeps the verifier's work to one pass over the body. */
static __always_inline __u32 scan_stratum(struct stream_scan *o, const __u8 *buf, __u32 n, __u32 stream_offset)
{
	struct scan_context ctx = { .scan = o, .buf = buf, .n = n, .stream_offset = stream_offset, .verdict = 0 };

	bpf_loop(GUARD_PAYLOAD_LEN, scan_byte, &ctx, 0);
	return ctx.verdict;
}

/* The policy's allowed destinations: a Stratum match to one is reported, never dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct guard_destination_key);
	__type(value, __u8);
} allowed_destinations SEC(".maps");

static __always_inline bool destination_allowed(struct l4_location *loc, __u16 dport)
{
	struct guard_destination_key key = {};

	key.prefixlen = 16 + 128;
	key.port[0] = dport >> 8;
	key.port[1] = dport & 0xFF;
	if (loc->family == AF_INET) {
		key.addr[10] = 0xFF;
		key.addr[11] = 0xFF;
		__builtin_memcpy(&key.addr[12], loc->daddr, 4);
	} else {
		__builtin_memcpy(key.addr, loc->daddr, 16);
	}
	if (bpf_map_lookup_elem(&allowed_destinations, &key))
		return true;
	key.port[0] = 0;
	key.port[1] = 0;
	return bpf_map_lookup_elem(&allowed_destinations, &key) != NULL;
}

/* A TCP segment's payload, read from headers in place. */
struct tcp_segment {
	__u32 payload_offset;
	__u32 payload_len;
	__u32 seq;
	__u16 dport;
};

/* 0 when the packet is a TCP segment carrying payload. */
static __always_inline int read_tcp_segment(struct __sk_buff *skb, struct l4_location *loc, struct tcp_segment *seg)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct tcphdr *th;

	if (loc->offset > 60)
		return -1;
	th = data + loc->offset;
	if ((void *)(th + 1) > end)
		return -1;
	seg->payload_offset = loc->offset + th->doff * 4;
	if (skb->len <= seg->payload_offset)
		return -1;
	seg->payload_len = skb->len - seg->payload_offset;
	seg->seq = bpf_ntohl(th->seq);
	seg->dport = bpf_ntohs(th->dest);
	return 0;
}

/* The group leader's start: a process's identity with its pid. */
static __always_inline __u64 process_start(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_boottime);
}

/* What exec decides: job membership (a root's exec starts a job) and
 * whether the new program is a miner the policy kills. */
struct exec_verdict {
	__u32 flags; /* GUARD_EXEC_IN_JOB, GUARD_EXEC_KNOWN_MINER */
	__u32 job_root_pid;
	bool kill;
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

/* A SIGKILL sent where this is called (sched_process_exec) lands before the
 * new program's first user-space instruction. */
static __always_inline void judge_exec(__u32 tgid, __u64 start_time_ns, const char *comm, __u32 uid,
				       struct linux_binprm *bprm, struct exec_verdict *v)
{
	struct guard_job_member *member, root;
	struct guard_name name = {};
	__u32 *flags;

	v->flags = 0;
	v->job_root_pid = 0;
	v->kill = false;
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
	v->kill = (*flags & GUARD_MINER_KILL) != 0;
}

/* A child stays in its parent's job, however it is re-parented later. */
static __always_inline void inherit_job(__u32 parent_tgid, __u32 child_tgid)
{
	struct guard_job_member *member = bpf_map_lookup_elem(&job_members, &parent_tgid);

	if (member)
		bpf_map_update_elem(&job_members, &child_tgid, member, BPF_ANY);
}

#endif /* GUARD_VERDICTS_H */
