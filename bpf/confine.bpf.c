// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Confinement: where a confined training job may connect and send. Attached
 * at the cgroup v2 root (or a cgroup of a test's) and pinned under
 * PIN_ROOT/confine from the first start with a [[confine]] section until
 * `guard detach --all`: it never hands over, so it is in force whether a
 * sensor runs or not. User space writes the maps live (which jobs, what
 * they may reach); nothing is re-attached.
 *
 * - connect4/6: a TCP connect or a UDP connect to a destination outside the
 *   job's allow list fails with EPERM (audit: counted, let through).
 * - sendmsg4/6: so does an unconnected UDP send (QUIC included).
 * - egress: a packet of a confined job's socket that was connected before
 *   the rule (before this was attached, before the job was confined, or
 *   before its list changed) is judged by its destination and dropped when
 *   denied; sockets judged at connect carry their verdict (socket storage)
 *   for the list's generation. A socket the job accepted (its local port has
 *   a listener) is inbound: let through.
 *
 * Speed: only sockets of confined jobs get socket storage (at their connect
 * or send, or their first packet), so a process outside every confined job
 * costs a bit test (confine_levels) and a NULL storage pointer, nothing more.
 * - fork/exit/exec: a launcher's tree stays confined however it forks.
 *
 * A root program must allow by default: anything it cannot judge passes.
 * A quarantine hold is a program of its own at the same root: both must
 * allow, so a hold beats any allow. Decides first, records second: a full
 * denial map loses a count, never a verdict.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "guard.h"
#include "packet.h"

#define EPERM_DENY 0
#define ALLOW 1

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Job cgroups confined, by id (bpf_get_current_cgroup_id of the job's own cgroup). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct guard_confine_job);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_cgroups SEC(".maps");

/* Bit L set: some confined job cgroup is L levels below the root (1..31).
 * Bit 0 (CONFINE_TREES): some launcher tree may be confined (confine_tgids,
 * confine_launchers hold entries); clear, no tgid is looked up. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_levels SEC(".maps");

/* Members of launcher-tree jobs, by tgid, with their start. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct guard_confine_job);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_tgids SEC(".maps");

/* The next own rule set of a tree the kernel starts at a launcher's exec
 * (GUARD_CONFINE_KERNEL_SETS + n): each job's set is its identity in
 * confine_denials and holds what its DNS answers allow. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_next_set SEC(".maps");

/* Launchers (comm) whose exec starts a confined tree; value: the job entry to give it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct guard_name);
	__type(value, struct guard_confine_job);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_launchers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct guard_confine_key);
	__type(value, struct guard_confine_ports);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_allow SEC(".maps");

/* Bumped by user space after it changes the lists: a socket's cached verdict is of one generation. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_generation SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct guard_confine_denial_key);
	__type(value, struct guard_confine_denial);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_denials SEC(".maps");

#define SOCK_JUDGED 1  /* verdict is for generation */
#define SOCK_DENIED 2
#define SOCK_INBOUND 4 /* accepted: its peer came to it */

#define CONFINE_TREES 1ULL
#define BPF_F_CURRENT_NETNS_ID (-1L)

struct confine_sock {
	struct guard_confine_job job; /* the job that connected it, when a confined process did */
	__u64 generation;
	__u32 flags;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct confine_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_socks SEC(".maps");

/* A process's start as /proc shows it, so entries user space seeds and the kernel's agree. */
static __always_inline __u64 start_ticks(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_boottime) / GUARD_NS_PER_TICK;
}

static __always_inline __u64 generation(void)
{
	__u32 zero = 0;
	__u64 *g = bpf_map_lookup_elem(&confine_generation, &zero);

	return g ? *g : 0;
}

static __always_inline __u64 confined_levels(void)
{
	__u32 zero = 0;
	__u64 *levels = bpf_map_lookup_elem(&confine_levels, &zero);

	return levels ? *levels : 0;
}

/* The confined job of the current task: its cgroup's (the one job function:
 * a cgroup job first), else its launcher tree's; NULL when it is in none. */
static __always_inline struct guard_confine_job *job_of_current(void)
{
	struct task_struct *task;
	struct guard_confine_job *job;
	__u64 levels = confined_levels();
	__u32 tgid;

	for (int level = 1; level < GUARD_CONFINE_LEVELS && levels >> level; level++) {
		__u64 id;

		if (!(levels & (1ULL << level)))
			continue;
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break;
		job = bpf_map_lookup_elem(&confine_cgroups, &id);
		if (job)
			return job;
	}
	if (!(levels & CONFINE_TREES))
		return NULL;
	tgid = bpf_get_current_pid_tgid() >> 32;
	job = bpf_map_lookup_elem(&confine_tgids, &tgid);
	if (!job)
		return NULL;
	task = bpf_get_current_task_btf();
	return job->start_ticks == start_ticks(task) ? job : NULL;
}

/* The confined job a socket's cgroup is in (at egress, where current is anyone). */
static __always_inline struct guard_confine_job *job_of_skb(struct __sk_buff *skb)
{
	__u64 levels = confined_levels();

	for (int level = 1; level < GUARD_CONFINE_LEVELS && levels >> level; level++) {
		struct guard_confine_job *job;
		__u64 id;

		if (!(levels & (1ULL << level)))
			continue;
		id = bpf_skb_ancestor_cgroup_id(skb, level);
		if (!id)
			break;
		job = bpf_map_lookup_elem(&confine_cgroups, &id);
		if (job)
			return job;
	}
	return NULL;
}

static __always_inline bool allowed_by(__u32 set, const __u8 *addr, __u16 port, __u8 protocol)
{
	struct guard_confine_key key = { .prefixlen = 32 + 128, .set = set };
	struct guard_confine_ports *ports;

	if (!set)
		return false;
	__builtin_memcpy(key.addr, addr, 16);
	ports = bpf_map_lookup_elem(&confine_allow, &key);
	if (!ports || (ports->expires_ns && ports->expires_ns < bpf_ktime_get_boot_ns()))
		return false;
	for (int i = 0; i < GUARD_CONFINE_RANGES; i++) {
		struct guard_port_range *r = &ports->ranges[i];

		if (i >= ports->count)
			break;
		if ((r->protocol == 0 || r->protocol == protocol) && port >= r->low && port <= r->high)
			return true;
	}
	return false;
}

static __always_inline bool allowed(const struct guard_confine_job *job, const __u8 *addr, __u16 port, __u8 protocol)
{
	return allowed_by(job->section, addr, port, protocol) || allowed_by(job->job, addr, port, protocol);
}

/* Counts a denial; returns what the caller returns: deny, or in audit let through. */
static __always_inline int deny(const struct guard_confine_job *job, const __u8 *addr, __u16 port, __u8 protocol, __u8 what, bool in_task)
{
	struct guard_confine_denial_key key = { .section = job->section, .job = job->job, .port = port, .protocol = protocol, .what = what };
	struct guard_confine_denial *d, fresh = {};
	__u64 now = bpf_ktime_get_boot_ns();

	__builtin_memcpy(key.addr, addr, 16);
	d = bpf_map_lookup_elem(&confine_denials, &key);
	if (!d) {
		fresh.first_ns = now;
		bpf_map_update_elem(&confine_denials, &key, &fresh, BPF_NOEXIST);
		d = bpf_map_lookup_elem(&confine_denials, &key);
	}
	if (d) {
		__sync_fetch_and_add(&d->count, 1);
		d->last_ns = now;
		d->mode = job->mode;
		if (in_task) {
			struct task_struct *task = bpf_get_current_task_btf();

			d->tgid = bpf_get_current_pid_tgid() >> 32;
			d->start_time_ns = BPF_CORE_READ(task, group_leader, start_boottime);
			bpf_get_current_comm(d->comm, sizeof(d->comm));
		}
	}
	return job->mode == GUARD_CONFINE_AUDIT ? ALLOW : EPERM_DENY;
}

static __always_inline void v4_mapped(__u8 *addr, __u32 ip4)
{
	__builtin_memset(addr, 0, 10);
	addr[10] = 0xff;
	addr[11] = 0xff;
	__builtin_memcpy(addr + 12, &ip4, 4);
}

static __always_inline __u8 protocol_of(struct bpf_sock_addr *ctx)
{
	if (ctx->protocol == IPPROTO_TCP || ctx->type == 1 /* SOCK_STREAM */)
		return IPPROTO_TCP;
	return ctx->protocol ? ctx->protocol : IPPROTO_UDP;
}

/* Judges a connect or send of the current task to addr:port; remembers a connect's verdict on its socket. */
static __always_inline int judge(struct bpf_sock_addr *ctx, const __u8 *addr, __u8 what)
{
	struct guard_confine_job *job = job_of_current();
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	__u8 protocol = protocol_of(ctx);
	struct confine_sock *st;
	bool ok;

	if (!job)
		return ALLOW;
	ok = allowed(job, addr, port, protocol);
	if (what == GUARD_CONFINE_CONNECT) {
		st = bpf_sk_storage_get(&confine_socks, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (st) {
			st->job = *job;
			st->generation = generation();
			st->flags = SOCK_JUDGED | (ok ? 0 : SOCK_DENIED);
		}
	}
	return ok ? ALLOW : deny(job, addr, port, protocol, what, true);
}

SEC("cgroup/connect4")
int guard_confine_connect4(struct bpf_sock_addr *ctx)
{
	__u8 addr[16];

	v4_mapped(addr, ctx->user_ip4);
	return judge(ctx, addr, GUARD_CONFINE_CONNECT);
}

SEC("cgroup/connect6")
int guard_confine_connect6(struct bpf_sock_addr *ctx)
{
	__u32 addr[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

	return judge(ctx, (__u8 *)addr, GUARD_CONFINE_CONNECT);
}

SEC("cgroup/sendmsg4")
int guard_confine_sendmsg4(struct bpf_sock_addr *ctx)
{
	__u8 addr[16];

	v4_mapped(addr, ctx->user_ip4);
	return judge(ctx, addr, GUARD_CONFINE_SEND);
}

SEC("cgroup/sendmsg6")
int guard_confine_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 addr[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

	return judge(ctx, (__u8 *)addr, GUARD_CONFINE_SEND);
}

/* Whether a connected TCP socket was accepted: a listener holds its local
 * port. Looked up with remote port 0, which no established socket has, so
 * the lookup falls through to the listeners. Only for a confined job's
 * socket the first time egress sees it. */
static __always_inline bool accepted(struct __sk_buff *skb, struct bpf_sock *sk)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *found;
	__u32 size;
	bool listener;

	if (sk->protocol != IPPROTO_TCP)
		return false;
	if (sk->family == AF_INET) {
		tuple.ipv4.saddr = sk->dst_ip4;
		tuple.ipv4.daddr = sk->src_ip4;
		tuple.ipv4.dport = bpf_htons(sk->src_port);
		size = sizeof(tuple.ipv4);
	} else if (sk->family == AF_INET6) {
		tuple.ipv6.saddr[0] = sk->dst_ip6[0];
		tuple.ipv6.saddr[1] = sk->dst_ip6[1];
		tuple.ipv6.saddr[2] = sk->dst_ip6[2];
		tuple.ipv6.saddr[3] = sk->dst_ip6[3];
		tuple.ipv6.daddr[0] = sk->src_ip6[0];
		tuple.ipv6.daddr[1] = sk->src_ip6[1];
		tuple.ipv6.daddr[2] = sk->src_ip6[2];
		tuple.ipv6.daddr[3] = sk->src_ip6[3];
		tuple.ipv6.dport = bpf_htons(sk->src_port);
		size = sizeof(tuple.ipv6);
	} else
		return false;
	found = bpf_skc_lookup_tcp(skb, &tuple, size, BPF_F_CURRENT_NETNS_ID, 0);
	if (!found)
		return false;
	listener = found->state == BPF_TCP_LISTEN;
	bpf_sk_release(found);
	return listener;
}

/* Returns 0 to drop: a packet of a confined job's socket to a destination its list denies. */
SEC("cgroup_skb/egress")
int guard_confine_egress(struct __sk_buff *skb)
{
	struct guard_confine_job *job = NULL, copy;
	struct confine_sock *st;
	struct l4_location loc;
	struct bpf_sock *sk = skb->sk;
	__u16 port = 0;
	__u64 gen;
	bool connected;

	if (!sk)
		return ALLOW;
	sk = bpf_sk_fullsock(sk);
	/* A listener sends only SYN-ACKs (and resets) to peers that came to it: inbound. */
	if (!sk || (sk->protocol == IPPROTO_TCP && sk->state == BPF_TCP_LISTEN))
		return ALLOW;
	st = bpf_sk_storage_get(&confine_socks, sk, 0, 0);
	if (st) {
		if (st->flags & SOCK_INBOUND)
			return ALLOW;
		job = &st->job;
	} else {
		/* No storage: not a confined job's connect. Outside every confined job this is the end. */
		job = job_of_skb(skb);
		if (!job)
			return ALLOW;
	}
	/* A connected socket's every packet goes to one peer: its verdict holds for the generation. */
	connected = sk->dst_port != 0;
	gen = generation();
	if (connected && st && (st->flags & SOCK_JUDGED) && st->generation == gen)
		return (st->flags & SOCK_DENIED) && st->job.mode != GUARD_CONFINE_AUDIT ? EPERM_DENY : ALLOW;
	copy = *job;
	if (connected && !st) {
		/* A confined job's socket seen first here: accepted, or connected before the rule. */
		bool inbound = accepted(skb, sk);

		st = bpf_sk_storage_get(&confine_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (st) {
			st->job = copy;
			st->flags = inbound ? SOCK_INBOUND : 0;
		}
		if (inbound)
			return ALLOW;
	}
	if (locate_l4(skb, &loc))
		return ALLOW;
	if (loc.protocol == IPPROTO_TCP || loc.protocol == IPPROTO_UDP) {
		void *data = (void *)(long)skb->data;
		void *end = (void *)(long)skb->data_end;
		__be16 *ports;

		if (loc.offset > L4_OFFSET_MAX)
			return ALLOW;
		ports = data + loc.offset;
		if ((void *)(ports + 2) > end)
			return ALLOW;
		port = bpf_ntohs(ports[1]);
	}
	if (loc.family == AF_INET) {
		__u32 ip4;

		__builtin_memcpy(&ip4, loc.daddr, 4);
		v4_mapped(loc.daddr, ip4);
	}
	if (allowed(&copy, loc.daddr, port, loc.protocol)) {
		if (connected && st) {
			st->generation = gen;
			st->flags = SOCK_JUDGED;
		}
		return ALLOW;
	}
	if (connected && st) {
		st->generation = gen;
		st->flags = SOCK_JUDGED | SOCK_DENIED;
	}
	return deny(&copy, loc.daddr, port, loc.protocol, GUARD_CONFINE_EGRESS, false);
}

/* A launcher-tree member's child is a member from its fork, with its own start. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(guard_confine_fork, struct task_struct *parent, struct task_struct *child)
{
	struct guard_confine_job *job, copy;
	__u32 tgid;

	if (child->pid != child->tgid)
		return 0;
	tgid = parent->tgid;
	job = bpf_map_lookup_elem(&confine_tgids, &tgid);
	if (!job || job->start_ticks != start_ticks(parent))
		return 0;
	copy = *job;
	copy.start_ticks = child->start_boottime / GUARD_NS_PER_TICK;
	tgid = child->tgid;
	bpf_map_update_elem(&confine_tgids, &tgid, &copy, BPF_ANY);
	return 0;
}

/* A launcher the policy names starts a confined tree at its exec. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(guard_confine_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct guard_confine_job *launcher, joined;
	struct guard_name name = {};
	__u32 tgid = task->tgid;

	bpf_get_current_comm(name.name, sizeof(name.name));
	launcher = bpf_map_lookup_elem(&confine_launchers, &name);
	if (!launcher || bpf_map_lookup_elem(&confine_tgids, &tgid))
		return 0;
	joined = *launcher;
	joined.start_ticks = start_ticks(task);
	{
		__u32 zero = 0;
		__u64 *next = bpf_map_lookup_elem(&confine_next_set, &zero);

		if (next)
			joined.job = GUARD_CONFINE_KERNEL_SETS | (__u32)(__sync_fetch_and_add(next, 1) & (GUARD_CONFINE_KERNEL_SETS - 1));
	}
	bpf_map_update_elem(&confine_tgids, &tgid, &joined, BPF_NOEXIST);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(guard_confine_exit, struct task_struct *task)
{
	struct guard_confine_job *job;
	__u32 tgid;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = task->tgid;
	job = bpf_map_lookup_elem(&confine_tgids, &tgid);
	if (job && job->start_ticks == start_ticks(task))
		bpf_map_delete_elem(&confine_tgids, &tgid);
	return 0;
}
