// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Confinement: where a confined training job may connect and send. The
 * cgroup programs are attached to each confined job cgroup (its processes and
 * every cgroup below it run them), and a second instance of each at the
 * cgroup v2 root (or a cgroup of a test's) only while launcher trees may be
 * confined; all pinned under PIN_ROOT/confine from the first start with a
 * [[confine]] section until `guard detach --all`: it never hands over, so it
 * is in force whether a sensor runs or not. User space writes the maps live
 * (which jobs, what they may reach); nothing is re-attached.
 *
 * - connect4/6: a TCP connect or a UDP connect to a destination outside the
 *   job's allow list fails with EPERM (audit: counted, let through).
 * - sendmsg4/6: so does an unconnected UDP send (QUIC included).
 * - egress: a packet of a confined job's socket that was connected before
 *   the rule (before this was attached, before the job was confined, or
 *   before its list changed) is judged by its destination and dropped when
 *   denied; sockets judged at connect carry their verdict (socket storage)
 *   for the list's generation. A socket the job accepted is inbound: let
 *   through. Accepted is known by how it opened, never guessed from a
 *   listener: sockops marks a listener's child as it is established, and the
 *   sensor, as it confines a job, marks (confine_inbound) the sockets the job
 *   had accepted before.
 *
 * Speed: a process outside every confined job cgroup runs none of the cgroup
 * programs while no launcher tree may be confined (then the root instances
 * cost it a bit test and a NULL storage pointer); only sockets of confined
 * jobs get socket storage (at their connect or send, or their first packet).
 * - fork/exit/exec: a launcher's tree stays confined however it forks.
 * - send (tp_btf/sock_send_length): a confined job's send on a socket it did
 *   not make (passed in, inherited), which no cgroup program of the job
 *   sees, is judged by the socket's peer; denied, the sender is killed.
 * - ingress reads DNS answers only on sockets in a network namespace of the
 *   initial user namespace: in one the job made, it could answer itself.
 *
 * A program must allow by default: anything it cannot judge passes, but for
 * a send on an unconnected UDP socket the job did not make (its destination
 * is not to be seen after the send; a job has no use for one).
 * A quarantine hold is a program of its own: both must
 * allow, so a hold beats any allow. Decides first, records second: a full
 * denial map loses a count, never a verdict.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "guard.h"
#include "jobnames.h"
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
#define SOCK_INBOUND 4 /* accepted (a listener's child): its peer came to it */
#define SOCK_DNS 8     /* a confined job's socket to one of its section's resolvers, port 53 */
#define SOCK_CONNECTED 16 /* judged at its connect, not first seen at egress: the sensor marks no such socket accepted */

/* DNS answers: what is read of one (more is not parsed), a power of two so
 * an offset masked by DNS_MAX - 1 is always inside the buffer. */
#define DNS_MAX 1024
#define DNS_QUERIES 4   /* queries a socket keeps awaiting their answers (glibc sends A and AAAA at once) */
#define DNS_ANSWERS 16  /* answer records read of one answer */
#define DNS_CHAIN 8     /* names an answer's CNAME chain may pass through */
#define DNS_LABELS 32   /* labels of a question name looked up as suffixes */
#define DNS_HOPS 8      /* compression pointers followed in one name (each strictly backwards) */
#define DNS_NAME_STEPS 300 /* bytes and pointers of one name: 255 bytes + DNS_HOPS, with room */
#define DNS_TTL_MIN_S 30   /* an answer allows at least this long: a connect right after a TTL 0 answer goes */
#define DNS_TTL_MAX_S 3600 /* and at most an hour, whatever its TTL */
#define DNS_PORT 53
#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1

#define CONFINE_TREES 1ULL
#define BPF_F_CURRENT_NETNS_ID (-1L)

/* A socket's verdict: the job it is judged for, and for which generation of the lists. */
struct confine_verdict {
	struct guard_confine_job job; /* the job that connected it, when a confined process did */
	__u64 generation;
	__u32 flags;
	__u32 pad;
};

/* confine_socks values: a tree member's verdict (its job is the connecting
 * task's, which egress, run by anyone, cannot find again), and a DNS
 * socket's queries. */
struct confine_sock {
	struct confine_verdict v;
	__u32 next_query;
	/* SOCK_DNS: the queries sent, each id with its question name's hash; an answer counts only for one of them */
	__u64 query_hash[DNS_QUERIES];
	__u16 query_id[DNS_QUERIES];
	__u8 query_open[DNS_QUERIES];
};

/* A section's DNS names (egress allow by name), by wire form. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct guard_confine_name_key);
	__type(value, struct guard_confine_name);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_names SEC(".maps");

/* A section's resolvers: answers from them on port 53 are read; any other's are not. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct guard_confine_resolver_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_resolvers SEC(".maps");

/* State of one answer's reading (bpf_loop callbacks). */
struct answer_read {
	__u32 len;
	__u32 pos;
	__u32 records;
	__u32 set;         /* the job's own rule set */
	__u32 chain_len;
	__u64 chain[DNS_CHAIN];
	struct guard_confine_ports ports; /* what the question's rule allows */
	__u64 now;
	__u32 section;
	__u32 qlen;        /* wire bytes of the question name in s->qname */
	__u32 labels;
	__u8 starts[DNS_LABELS];
	__u32 allowed;     /* addresses allowed */
	__u8 matched;
};

/* A name's walk through a message in the scratch buffer (in the scratch: map memory, so the verifier sees one state per step, not one per byte). */
struct name_walk {
	__u32 len;      /* message bytes in s->msg */
	__u32 pos;      /* the next byte to read */
	__u32 end;      /* where the message goes on after the name (after its first pointer, or its zero) */
	__u32 remaining; /* bytes left of the label being read */
	__u32 copied;   /* wire bytes of the name so far (into s->qname when copy) */
	__u32 hops;
	__u32 labels;
	__u64 hash;     /* FNV-1a 64 of the wire form, lower case */
	__u8 copy;      /* keep the wire form in s->qname, and label starts */
	__u8 done;
	__u8 bad;
	__u8 pad;
	__u8 starts[DNS_LABELS]; /* copy: where each label starts in s->qname */
};

/* Per CPU: [0] egress (a query, in task context), [1] ingress (an answer, in softirq). */
struct dns_scratch {
	__u8 msg[DNS_MAX];
	__u8 qname[GUARD_CONFINE_NAME_MAX * 2];
	struct guard_confine_name_key key;
	struct name_walk w;                /* the name being walked */
	struct answer_read a;              /* ingress: the answer being read */
	struct guard_confine_ports fresh;  /* ingress: the entry being written */
	struct guard_confine_ports old;    /* ingress: the entry it replaces */
};

/* A bpf_loop callback's state: the scratch, whose every field it reads. */
struct scratch_ctx {
	struct dns_scratch *s;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} confine_dns_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct confine_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_socks SEC(".maps");

/* A confined cgroup job's outbound sockets' verdicts, by socket cookie.
 * Not socket storage: making that costs a kmalloc per socket (about 1 us on
 * a 2-CPU VM; an update here costs a fraction of it). An entry the LRU
 * evicts is judged again at the socket's next packet, from the packet and
 * the socket's cgroup, as a socket connected before the rule is: eviction
 * costs time, never a verdict. An accepted socket is marked in its storage
 * instead (sockops, at its birth), which nothing evicts. 65,536 entries of
 * 40 bytes, preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct confine_verdict);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_verdicts SEC(".maps");

/* Sockets a confined cgroup job accepted before it was confined, by cookie:
 * written by the sensor as it confines the job (sock_diag finds them), moved
 * into the socket's storage (SOCK_INBOUND) at its first packet, and then
 * deleted. An LRU: a mark of a socket that closed before sending is dropped
 * in time; a mark the LRU drops makes the socket judged as outbound. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_inbound SEC(".maps");

/* The verdict a socket carries, or NULL: a tree member's in its storage, a
 * cgroup job's in confine_verdicts. */
static __always_inline struct confine_verdict *verdict_of(struct bpf_sock *sk, __u64 cookie, bool tree)
{
	struct confine_sock *st;

	if (!tree)
		return bpf_map_lookup_elem(&confine_verdicts, &cookie);
	st = sk ? bpf_sk_storage_get(&confine_socks, sk, 0, 0) : NULL;
	return st ? &st->v : NULL;
}

/* Gives a socket its verdict, in one map operation where it can; a DNS
 * socket's storage keeps its SOCK_DNS. */
static __always_inline void keep_verdict(struct bpf_sock *sk, __u64 cookie, bool tree, const struct confine_verdict *v)
{
	struct confine_sock *st;

	if (!tree) {
		bpf_map_update_elem(&confine_verdicts, &cookie, v, BPF_ANY);
		return;
	}
	st = sk ? bpf_sk_storage_get(&confine_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE) : NULL;
	if (!st)
		return;
	st->v.job = v->job;
	st->v.generation = v->generation;
	st->v.flags = v->flags | (st->v.flags & SOCK_DNS);
}

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

/* The confined cgroup job of the current task, with its cgroup's id and level; NULL when it is in none. */
static __always_inline struct guard_confine_job *cgroup_job_at(__u64 levels, __u64 *cgroup_id, int *at)
{
	for (int level = 1; level < GUARD_CONFINE_LEVELS && levels >> level; level++) {
		struct guard_confine_job *job;
		__u64 id;

		if (!(levels & (1ULL << level)))
			continue;
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break;
		job = bpf_map_lookup_elem(&confine_cgroups, &id);
		if (job) {
			*cgroup_id = id;
			*at = level;
			return job;
		}
	}
	return NULL;
}

/* The confined cgroup job of the current task (its own cgroup or an ancestor); NULL when it is in none. */
static __always_inline struct guard_confine_job *cgroup_job_of_current(__u64 levels)
{
	__u64 id;
	int level;

	return cgroup_job_at(levels, &id, &level);
}

/* The launcher tree the current task is a member of; NULL when none. */
static __always_inline struct guard_confine_job *tree_job_of_current(__u64 levels)
{
	struct guard_confine_job *job;
	struct task_struct *task;
	__u32 tgid;

	if (!(levels & CONFINE_TREES))
		return NULL;
	tgid = bpf_get_current_pid_tgid() >> 32;
	job = bpf_map_lookup_elem(&confine_tgids, &tgid);
	if (!job)
		return NULL;
	task = bpf_get_current_task_btf();
	return job->start_ticks == start_ticks(task) ? job : NULL;
}

/* The confined job of the current task: its cgroup's (the one job function:
 * a cgroup job first), else its launcher tree's; NULL when it is in none. */
static __always_inline struct guard_confine_job *job_of_current(void)
{
	__u64 levels = confined_levels();
	struct guard_confine_job *job = cgroup_job_of_current(levels);

	return job ? job : tree_job_of_current(levels);
}

/*
 * Where the cgroup programs run. Each comes twice: the job instance
 * (guard_confine_*) is attached to each confined job cgroup and judges the
 * cgroup job; the tree instance (guard_confine_tree_*) is attached at the
 * root only while launcher trees may be confined, and judges only a tree
 * member that is in no confined cgroup job (one that is, its job instance
 * judges: nothing is judged or counted twice). A process outside every
 * confined job cgroup, with no tree confined, runs no confine program.
 */
static __always_inline struct guard_confine_job *judged_job(bool tree)
{
	__u64 levels = confined_levels();
	struct guard_confine_job *job = cgroup_job_of_current(levels);

	if (!tree)
		return job;
	return job ? NULL : tree_job_of_current(levels);
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

/* Destinations a person approved for one job (`guard approve`), by the job's
 * own rule set: apart from confine_allow so that a DNS answer for the same
 * address never replaces an approval, nor an approval an answer. Looked up
 * only once the allow lists denied: an allowed connect never reads it. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct guard_confine_key);
	__type(value, struct guard_confine_ports);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_approved SEC(".maps");

static __always_inline bool allowed_in(void *map, __u32 set, const __u8 *addr, __u16 port, __u8 protocol)
{
	struct guard_confine_key key = { .prefixlen = 32 + 128, .set = set };
	struct guard_confine_ports *ports;

	if (!set)
		return false;
	__builtin_memcpy(key.addr, addr, 16);
	ports = bpf_map_lookup_elem(map, &key);
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
	return allowed_in(&confine_allow, job->section, addr, port, protocol) || allowed_in(&confine_allow, job->job, addr, port, protocol)
		|| allowed_in(&confine_approved, job->job, addr, port, protocol);
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

static __always_inline bool is_resolver(__u32 set, const __u8 *addr)
{
	struct guard_confine_resolver_key key = { .set = set };

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&confine_resolvers, &key) != NULL;
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
static __always_inline int judge(struct bpf_sock_addr *ctx, const __u8 *addr, __u8 what, bool tree)
{
	struct guard_confine_job *job = judged_job(tree);
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	__u8 protocol = protocol_of(ctx);
	struct confine_verdict v = {};
	struct confine_sock *st;
	bool ok;

	if (!job)
		return ALLOW;
	ok = allowed(job, addr, port, protocol);
	if (what == GUARD_CONFINE_CONNECT) {
		v.job = *job;
		v.generation = generation();
		v.flags = SOCK_JUDGED | SOCK_CONNECTED | (ok ? 0 : SOCK_DENIED);
		keep_verdict(ctx->sk, bpf_get_socket_cookie(ctx), tree, &v);
	}
	if (ok && port == DNS_PORT && protocol == IPPROTO_UDP && is_resolver(job->section, addr)) {
		/* Its answers are read at ingress: the socket carries the job and the queries it sent. */
		struct guard_confine_job copy = *job;

		st = bpf_sk_storage_get(&confine_socks, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (st) {
			if (!(st->v.flags & SOCK_DNS))
				st->v.job = copy;
			st->v.flags |= SOCK_DNS;
		}
	}
	return ok ? ALLOW : deny(job, addr, port, protocol, what, true);
}

static __always_inline int connect4(struct bpf_sock_addr *ctx, __u8 what, bool tree)
{
	__u8 addr[16];

	v4_mapped(addr, ctx->user_ip4);
	return judge(ctx, addr, what, tree);
}

static __always_inline int connect6(struct bpf_sock_addr *ctx, __u8 what, bool tree)
{
	__u32 addr[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

	return judge(ctx, (__u8 *)addr, what, tree);
}

SEC("cgroup/connect4")
int guard_confine_connect4(struct bpf_sock_addr *ctx)
{
	return connect4(ctx, GUARD_CONFINE_CONNECT, false);
}

SEC("cgroup/connect6")
int guard_confine_connect6(struct bpf_sock_addr *ctx)
{
	return connect6(ctx, GUARD_CONFINE_CONNECT, false);
}

SEC("cgroup/sendmsg4")
int guard_confine_sendmsg4(struct bpf_sock_addr *ctx)
{
	return connect4(ctx, GUARD_CONFINE_SEND, false);
}

SEC("cgroup/sendmsg6")
int guard_confine_sendmsg6(struct bpf_sock_addr *ctx)
{
	return connect6(ctx, GUARD_CONFINE_SEND, false);
}

SEC("cgroup/connect4")
int guard_confine_tree_connect4(struct bpf_sock_addr *ctx)
{
	return connect4(ctx, GUARD_CONFINE_CONNECT, true);
}

SEC("cgroup/connect6")
int guard_confine_tree_connect6(struct bpf_sock_addr *ctx)
{
	return connect6(ctx, GUARD_CONFINE_CONNECT, true);
}

SEC("cgroup/sendmsg4")
int guard_confine_tree_sendmsg4(struct bpf_sock_addr *ctx)
{
	return connect4(ctx, GUARD_CONFINE_SEND, true);
}

SEC("cgroup/sendmsg6")
int guard_confine_tree_sendmsg6(struct bpf_sock_addr *ctx)
{
	return connect6(ctx, GUARD_CONFINE_SEND, true);
}

/*
 * DNS names. A confined job's socket to one of its section's resolvers on
 * UDP 53 is marked at connect or send (SOCK_DNS). At egress each query it
 * sends is remembered on the socket (id and question name hash); at ingress
 * an answer from a resolver of the section is read when it answers one of
 * those queries with the same question, and the question is a name or under
 * a suffix the section allows. Its A and AAAA records for the question, or
 * for names a CNAME chain within the answer leads to, are allowed for the
 * job's own rule set, for the record's TTL (at least DNS_TTL_MIN_S, at most
 * DNS_TTL_MAX_S): before the answer reaches the socket, so a connect right
 * after the lookup goes, while another job is still denied that address.
 * Everything read is bounded: the answer's first DNS_MAX bytes, names of at
 * most 255 bytes with DNS_HOPS compression pointers each pointing strictly
 * backwards (no loop can be built), DNS_ANSWERS records, DNS_CHAIN names.
 */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static __always_inline __u8 msg_byte(struct dns_scratch *s, __u32 at)
{
	return s->msg[at & (DNS_MAX - 1)];
}

static __always_inline void name_put(struct dns_scratch *s, __u8 b)
{
	struct name_walk *w = &s->w;

	w->hash = (w->hash ^ b) * FNV_PRIME;
	if (w->copy) {
		if (w->copied >= GUARD_CONFINE_NAME_MAX) {
			w->bad = 1; /* longer than any name a policy keys: no rule can match */
			return;
		}
		s->qname[w->copied & (GUARD_CONFINE_NAME_MAX * 2 - 1)] = b;
	}
	w->copied++;
}

static long name_step(__u32 i, struct scratch_ctx *c)
{
	struct dns_scratch *s = c->s;
	struct name_walk *w = &s->w;
	__u8 b;

	if (w->pos >= w->len || w->copied > 255) {
		w->bad = 1; /* truncated, or longer than a name may be */
		return 1;
	}
	b = msg_byte(s, w->pos);
	if (w->remaining) {
		if (b >= 'A' && b <= 'Z')
			b += 'a' - 'A';
		name_put(s, b);
		w->remaining--;
		w->pos++;
		return w->bad ? 1 : 0;
	}
	if (b == 0) {
		if (!w->hops)
			w->end = w->pos + 1;
		w->done = 1;
		return 1;
	}
	if ((b & 0xc0) == 0xc0) {
		__u32 target;

		if (w->pos + 1 >= w->len || ++w->hops > DNS_HOPS) {
			w->bad = 1;
			return 1;
		}
		target = ((__u32)(b & 0x3f) << 8) | msg_byte(s, w->pos + 1);
		if (w->hops == 1)
			w->end = w->pos + 2;
		/* Strictly backwards: a pointer never reaches itself or what follows, so no loop. */
		if (target >= w->pos) {
			w->bad = 1;
			return 1;
		}
		w->pos = target;
		return 0;
	}
	if (b & 0xc0) {
		w->bad = 1; /* 0x40, 0x80: label types nobody uses */
		return 1;
	}
	if (w->copy && w->labels < DNS_LABELS)
		w->starts[w->labels & (DNS_LABELS - 1)] = w->copied;
	w->labels++;
	name_put(s, b);
	w->remaining = b;
	w->pos++;
	return w->bad ? 1 : 0;
}

/* Walks the name at pos into s->w; 0 when it is whole and bounded, its hash and where the message goes on set there. */
static __always_inline int walk_name(struct dns_scratch *s, __u32 len, __u32 pos, bool copy)
{
	struct scratch_ctx c = { .s = s };

	__builtin_memset(&s->w, 0, sizeof(s->w));
	s->w.len = len;
	s->w.pos = pos;
	s->w.hash = FNV_OFFSET;
	s->w.copy = copy;
	bpf_loop(DNS_NAME_STEPS, name_step, &c, 0);
	return s->w.done && !s->w.bad ? 0 : -1;
}

static __always_inline __u16 msg_u16(struct dns_scratch *s, __u32 at)
{
	return ((__u16)msg_byte(s, at) << 8) | msg_byte(s, at + 1);
}

static __always_inline __u32 msg_u32(struct dns_scratch *s, __u32 at)
{
	return ((__u32)msg_u16(s, at) << 16) | msg_u16(s, at + 2);
}

/* Reads a UDP datagram's payload (after the IP and UDP headers at l4) into s->msg; its length, or 0. */
static __always_inline __u32 read_payload(struct __sk_buff *skb, __u32 l4, struct dns_scratch *s)
{
	__u32 len;

	if (skb->len <= l4 + 8 + 12)
		return 0;
	len = skb->len - l4 - 8;
	if (len > DNS_MAX)
		len = DNS_MAX;
	/* The verifier must see both bounds at the call: keep clang from folding them away. */
	asm volatile("" : "+r"(len));
	if (len < 12 || len > DNS_MAX)
		return 0;
	if (bpf_skb_load_bytes(skb, l4 + 8, s->msg, len))
		return 0;
	return len;
}

/* Egress: a query on a DNS socket of a confined job; remembers its id and question. */
static __always_inline void note_query(struct __sk_buff *skb, struct confine_sock *st, struct l4_location *loc)
{
	__u32 zero = 0, len, slot;
	struct dns_scratch *s;
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__be16 *ports;

	if (loc->protocol != IPPROTO_UDP || loc->offset > L4_OFFSET_MAX)
		return;
	ports = data + loc->offset;
	if ((void *)(ports + 2) > end || ports[1] != bpf_htons(DNS_PORT))
		return;
	s = bpf_map_lookup_elem(&confine_dns_scratch, &zero);
	if (!s)
		return;
	len = read_payload(skb, loc->offset, s);
	/* A query: QR clear, one question. */
	if (!len || (msg_byte(s, 2) & 0x80) || msg_u16(s, 4) != 1)
		return;
	if (walk_name(s, len, 12, false))
		return;
	slot = st->next_query++ % DNS_QUERIES;
	st->query_id[slot] = msg_u16(s, 0);
	st->query_hash[slot] = s->w.hash;
	st->query_open[slot] = 1;
}

static __always_inline bool in_chain(struct answer_read *a, __u64 hash)
{
	for (int i = 0; i < DNS_CHAIN; i++) {
		if (i < a->chain_len && a->chain[i] == hash)
			return true;
	}
	return false;
}

/* Keeps one range the replaced entry allowed, unless the new one has it or is full. */
static long merge_step(__u32 i, struct scratch_ctx *c)
{
	struct dns_scratch *s = c->s;
	struct guard_port_range *r;

	if (i >= s->old.count || i >= GUARD_CONFINE_RANGES)
		return 1;
	r = &s->old.ranges[i & (GUARD_CONFINE_RANGES - 1)];
	for (int j = 0; j < GUARD_CONFINE_RANGES; j++) {
		struct guard_port_range *f = &s->fresh.ranges[j];

		if (j < s->fresh.count && f->low == r->low && f->high == r->high && f->protocol == r->protocol)
			return 0;
	}
	if (s->fresh.count >= GUARD_CONFINE_RANGES)
		return 1;
	s->fresh.ranges[s->fresh.count & (GUARD_CONFINE_RANGES - 1)] = *r;
	s->fresh.count++;
	return 0;
}

/* Allows addr for the job's own set until the record's TTL ends, joined with what it allowed already. */
static __always_inline void allow_answer(struct dns_scratch *s, const __u8 *addr, __u32 ttl)
{
	struct guard_confine_key key = { .prefixlen = 32 + 128, .set = s->a.set };
	struct guard_confine_ports *old;
	struct scratch_ctx c = { .s = s };

	if (ttl & 0x80000000)
		ttl = 0; /* RFC 2181: a TTL with its top bit set is 0 */
	if (ttl < DNS_TTL_MIN_S)
		ttl = DNS_TTL_MIN_S;
	if (ttl > DNS_TTL_MAX_S)
		ttl = DNS_TTL_MAX_S;
	__builtin_memcpy(key.addr, addr, 16);
	s->fresh = s->a.ports;
	s->fresh.expires_ns = s->a.now + (__u64)ttl * 1000000000ULL;
	old = bpf_map_lookup_elem(&confine_allow, &key);
	if (old && (!old->expires_ns || old->expires_ns > s->a.now)) {
		/* Allowed already (another answer, another name's ports): keep those ports too, as far as they fit, and the later end. */
		s->old = *old;
		bpf_loop(GUARD_CONFINE_RANGES, merge_step, &c, 0);
		if (!s->old.expires_ns || s->old.expires_ns > s->fresh.expires_ns)
			s->fresh.expires_ns = s->old.expires_ns;
	}
	if (bpf_map_update_elem(&confine_allow, &key, &s->fresh, BPF_ANY) == 0)
		s->a.allowed++;
}

/* One answer record: a CNAME of a name of the chain extends it; an A or AAAA of one is allowed. */
static long answer_step(__u32 i, struct scratch_ctx *c)
{
	struct dns_scratch *s = c->s;
	struct answer_read *a = &s->a;
	__u16 type, class, rdlength;
	__u32 ttl, rdata;
	__u64 owner;

	if (i >= a->records)
		return 1;
	if (walk_name(s, a->len, a->pos, false))
		return 1;
	if (s->w.end + 10 > a->len)
		return 1;
	owner = s->w.hash;
	type = msg_u16(s, s->w.end);
	class = msg_u16(s, s->w.end + 2);
	ttl = msg_u32(s, s->w.end + 4);
	rdlength = msg_u16(s, s->w.end + 8);
	rdata = s->w.end + 10;
	if (rdata + rdlength > a->len)
		return 1; /* truncated: nothing of it is read */
	a->pos = rdata + rdlength;
	if (!in_chain(a, owner) || class != DNS_CLASS_IN)
		return 0;
	if (type == DNS_TYPE_CNAME) {
		if (a->chain_len < DNS_CHAIN && walk_name(s, a->len, rdata, false) == 0) {
			a->chain[a->chain_len & (DNS_CHAIN - 1)] = s->w.hash;
			a->chain_len++;
		}
		return 0;
	}
	if (type == DNS_TYPE_A && rdlength == 4) {
		__u8 addr[16];
		__u32 ip4 = 0;

		for (int k = 0; k < 4; k++)
			ip4 |= (__u32)msg_byte(s, rdata + k) << (8 * k);
		v4_mapped(addr, ip4);
		allow_answer(s, addr, ttl);
	} else if (type == DNS_TYPE_AAAA && rdlength == 16) {
		__u8 addr[16];

		for (int k = 0; k < 16; k++)
			addr[k] = msg_byte(s, rdata + k);
		allow_answer(s, addr, ttl);
	}
	return 0;
}

/* One suffix of the question looked up in confine_names: label 0 as the name itself, later ones as *.SUFFIX. */
static long rule_step(__u32 i, struct scratch_ctx *c)
{
	struct dns_scratch *s = c->s;
	struct answer_read *a = &s->a;
	struct guard_confine_name *rule;
	struct guard_confine_ports *ports;
	__u32 start, tail;

	if (i >= a->labels || i >= DNS_LABELS)
		return 1;
	start = a->starts[i & (DNS_LABELS - 1)];
	if (start >= a->qlen)
		return 1;
	tail = a->qlen - start;
	if (tail > GUARD_CONFINE_NAME_MAX)
		return 1;
	__builtin_memset(&s->key, 0, sizeof(s->key));
	s->key.set = a->section;
	s->key.len = tail;
	bpf_probe_read_kernel(s->key.name, tail, s->qname + (start & (GUARD_CONFINE_NAME_MAX - 1)));
	rule = bpf_map_lookup_elem(&confine_names, &s->key);
	if (!rule)
		return 0;
	ports = i == 0 ? &rule->exact : &rule->under;
	if (!ports->count)
		return 0;
	a->ports = *ports;
	a->ports.expires_ns = 0;
	a->matched = 1;
	return 1;
}

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/*
 * Whether the socket an answer arrives on lives in a network namespace of
 * the initial user namespace: the host's, or one root made (a pod's, a
 * container's). A namespace a job makes itself (unshare -Urn) belongs to the
 * user namespace it made with it: there the job can bind the resolver's
 * address and answer its own query, so nothing is read there. Read from the
 * socket, never from current: a socket made in one namespace can be used
 * from another.
 */
static __always_inline bool netns_of_root(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct sock *sk = kskb->sk;

	if (!sk)
		return false;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, user_ns, level) == 0;
}

/* Returns 1 always: an answer is never dropped here, only read. */
static __always_inline int ingress(struct __sk_buff *skb, bool tree)
{
	struct bpf_sock *sk = skb->sk;
	struct confine_sock *st;
	struct answer_read *a;
	struct dns_scratch *s;
	struct scratch_ctx c;
	__u32 one = 1, l4, len;
	__u64 qhash;
	__u8 src[16];
	__u16 id;
	int slot = -1;

	if (!sk)
		return ALLOW;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_UDP)
		return ALLOW;
	st = bpf_sk_storage_get(&confine_socks, sk, 0, 0);
	/* Outside every confined job's DNS socket this is the end. */
	if (!st || !(st->v.flags & SOCK_DNS) || !st->v.job.job)
		return ALLOW;
	/* A socket of a confined cgroup job: its job instance reads the answer. */
	if (tree && job_of_skb(skb))
		return ALLOW;
	{
		void *data = (void *)(long)skb->data;
		void *end = (void *)(long)skb->data_end;
		__be16 *ports;

		if (skb->protocol == bpf_htons(ETH_P_IP)) {
			struct iphdr *ip = data;

			if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP)
				return ALLOW;
			l4 = ip->ihl * 4;
			v4_mapped(src, ip->saddr);
		} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
			struct ipv6hdr *ip6 = data;

			if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP)
				return ALLOW;
			l4 = sizeof(*ip6);
			__builtin_memcpy(src, &ip6->saddr, 16);
		} else
			return ALLOW;
		if (l4 > L4_OFFSET_MAX)
			return ALLOW;
		ports = data + l4;
		if ((void *)(ports + 2) > end || ports[0] != bpf_htons(DNS_PORT))
			return ALLOW;
	}
	/* Only a resolver of the job's section answers: one the job runs itself is nobody's. */
	if (!is_resolver(st->v.job.section, src) || !netns_of_root(skb))
		return ALLOW;
	s = bpf_map_lookup_elem(&confine_dns_scratch, &one);
	if (!s)
		return ALLOW;
	c.s = s;
	len = read_payload(skb, l4, s);
	/* An answer (QR), standard query, no error, one question. */
	if (!len || !(msg_byte(s, 2) & 0x80) || (msg_byte(s, 2) & 0x78) || (msg_byte(s, 3) & 0x0f) || msg_u16(s, 4) != 1)
		return ALLOW;
	if (walk_name(s, len, 12, true))
		return ALLOW;
	id = msg_u16(s, 0);
	qhash = s->w.hash;
	for (int i = 0; i < DNS_QUERIES; i++) {
		if (st->query_open[i] && st->query_id[i] == id && st->query_hash[i] == qhash)
			slot = i;
	}
	/* Not an answer to a query this socket sent, with this question: nothing is read of it. */
	if (slot < 0)
		return ALLOW;
	st->query_open[slot & (DNS_QUERIES - 1)] = 0;
	a = &s->a;
	__builtin_memset(a, 0, sizeof(*a));
	a->len = len;
	a->section = st->v.job.section;
	a->set = st->v.job.job;
	a->qlen = s->w.copied;
	a->labels = s->w.labels < DNS_LABELS ? s->w.labels : DNS_LABELS;
	__builtin_memcpy(a->starts, s->w.starts, sizeof(a->starts));
	a->pos = s->w.end + 4; /* past the question's type and class */
	bpf_loop(DNS_LABELS, rule_step, &c, 0);
	if (!a->matched)
		return ALLOW;
	a->records = msg_u16(s, 6);
	if (a->records > DNS_ANSWERS)
		a->records = DNS_ANSWERS;
	a->chain[0] = qhash;
	a->chain_len = 1;
	a->now = bpf_ktime_get_boot_ns();
	bpf_loop(DNS_ANSWERS, answer_step, &c, 0);
	return ALLOW;
}

SEC("cgroup_skb/ingress")
int guard_confine_ingress(struct __sk_buff *skb)
{
	return ingress(skb, false);
}

SEC("cgroup_skb/ingress")
int guard_confine_tree_ingress(struct __sk_buff *skb)
{
	return ingress(skb, true);
}

/* Returns 0 to drop: a packet of a confined job's socket to a destination its list denies. */
static __always_inline int egress(struct __sk_buff *skb, bool tree)
{
	struct guard_confine_job *job = NULL, copy;
	struct confine_verdict *v;
	struct confine_sock *st = NULL;
	struct l4_location loc;
	struct bpf_sock *sk = skb->sk;
	__u64 gen, cookie;
	__u16 port = 0;
	bool connected;

	if (!sk)
		return ALLOW;
	sk = bpf_sk_fullsock(sk);
	/* A listener sends only SYN-ACKs (and resets) to peers that came to it: inbound. */
	if (!sk || (sk->protocol == IPPROTO_TCP && sk->state == BPF_TCP_LISTEN))
		return ALLOW;
	/* Storage: an accepted socket's mark, a tree member's verdict, a DNS socket's queries. */
	st = bpf_sk_storage_get(&confine_socks, sk, 0, 0);
	if (st && (st->v.flags & SOCK_INBOUND))
		return ALLOW;
	cookie = bpf_get_socket_cookie(skb);
	v = tree ? (st ? &st->v : NULL) : verdict_of(sk, cookie, false);
	/* At the root, only a tree member's socket judged at its connect or send is
	 * judged again; a confined cgroup job's sockets, its job instance judges. */
	if (tree && (!v || job_of_skb(skb)))
		return ALLOW;
	if (v) {
		job = &v->job;
	} else if (st && (st->v.flags & SOCK_DNS)) {
		job = &st->v.job;
	} else {
		/* No verdict: not a confined job's connect. Outside every confined job this is the end. */
		job = job_of_skb(skb);
		if (!job)
			return ALLOW;
	}
	if (st && (st->v.flags & SOCK_DNS) && locate_l4(skb, &loc) == 0)
		note_query(skb, st, &loc);
	/* A connected socket's every packet goes to one peer: its verdict holds for the generation. */
	connected = sk->dst_port != 0;
	gen = generation();
	if (connected && v && (v->flags & SOCK_JUDGED) && v->generation == gen)
		return (v->flags & SOCK_DENIED) && v->job.mode != GUARD_CONFINE_AUDIT ? EPERM_DENY : ALLOW;
	copy = *job;
	if (connected && !v) {
		/* A confined job's socket seen first here: connected before the rule,
		 * its verdict evicted, or accepted before the job was confined (the
		 * sensor marked it by cookie as it confined the job, and deleted the
		 * verdict egress gave it before: moved into its storage here, which
		 * nothing evicts). Anything else is judged as outbound, from its
		 * peer, whatever listens on its port. */
		struct confine_verdict first = { .job = copy };

		if (!tree && sk->protocol == IPPROTO_TCP && bpf_map_lookup_elem(&confine_inbound, &cookie)) {
			st = bpf_sk_storage_get(&confine_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
			if (st) {
				st->v.flags |= SOCK_INBOUND;
				bpf_map_delete_elem(&confine_inbound, &cookie);
			}
			return ALLOW;
		}
		keep_verdict(sk, cookie, tree, &first);
		v = verdict_of(sk, cookie, tree);
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
		if (connected && v) {
			v->generation = gen;
			v->flags = SOCK_JUDGED | (v->flags & (SOCK_DNS | SOCK_CONNECTED));
		}
		return ALLOW;
	}
	if (connected && v) {
		v->generation = gen;
		v->flags = SOCK_JUDGED | SOCK_DENIED | (v->flags & (SOCK_DNS | SOCK_CONNECTED));
	}
	return deny(&copy, loc.daddr, port, loc.protocol, GUARD_CONFINE_EGRESS, false);
}

SEC("cgroup_skb/egress")
int guard_confine_egress(struct __sk_buff *skb)
{
	return egress(skb, false);
}

SEC("cgroup_skb/egress")
int guard_confine_tree_egress(struct __sk_buff *skb)
{
	return egress(skb, true);
}

/*
 * A listener's child, as the kernel establishes it (its final ACK, or a fast
 * open SYN): marked inbound in its storage before it sends anything of its
 * own. Attached with the job instances at each confined job cgroup: the
 * child is in its listener's cgroup. A socket that connect()ed and met a
 * peer's SYN (simultaneous open, a connect to itself) is established here
 * too: it has a struct socket, a listener's child has none until accept
 * takes it (the child is locked from its clone until this callback), so it
 * is not marked and is judged from its peer. Other callbacks (a job's
 * connects: timeout and window init, connect, active established, ECN)
 * return at the first compare.
 */
SEC("sockops")
int guard_confine_sockops(struct bpf_sock_ops *ctx)
{
	struct confine_sock *st;
	struct bpf_sock *sk;
	struct tcp_sock *tp;

	if (ctx->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp || tp->inet_conn.icsk_inet.sk.sk_socket)
		return 1;
	st = bpf_sk_storage_get(&confine_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st)
		st->v.flags |= SOCK_INBOUND;
	return 1;
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

/* ---- exec and GPU confinement ------------------------------------------ */

#define SIGKILL 9
#define BPF_DEVCG_DEV_CHAR 2 /* uapi bpf.h; not in BTF */
#define S_IWOTH 00002
#define CONFINE_SETS 1024     /* section rule sets are 1..1023 (ConfineRules.FirstJobSet) */
#define WRITABLE_DEPTH 16     /* directories walked up from an executable */

/* What each section denies at exec, by its rule set. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CONFINE_SETS);
	__type(key, __u32);
	__type(value, struct guard_confine_exec_rules);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_exec_rules SEC(".maps");

/* Files by inode: set 0 the known class programs, a section's set the files it names. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct guard_confine_file_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_exec_files SEC(".maps");

/* Programs a person approved for one job (`guard approve`): key set is the
 * job's own rule set; value: CLOCK_BOOTTIME ns the approval ends, 0 the job's life. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct guard_confine_file_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_exec_approved SEC(".maps");

/* Class programs by name (a file's name or the exec's comm, 15 bytes as comm keeps them). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct guard_name);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_exec_names SEC(".maps");

/* The GPUs each section allows, by its rule set. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CONFINE_SETS);
	__type(key, __u32);
	__type(value, struct guard_confine_gpu);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_gpu SEC(".maps");

/* Denied execs and GPU opens, for the sensor's events; a full ring loses the record, never the verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_acts SEC(".maps");

static __always_inline bool is_memfd(struct dentry *dentry)
{
	char name[6] = {};

	bpf_probe_read_kernel(name, sizeof(name), BPF_CORE_READ(dentry, d_name.name));
	return name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' && name[5] == ':';
}

/* Whether a directory above the file, up to its file system's root, is writable by anyone
 * (/tmp, /dev/shm, /var/tmp and whatever a user made below them). */
static __always_inline bool in_writable_tree(struct dentry *dentry)
{
	for (int i = 0; i < WRITABLE_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		umode_t mode = BPF_CORE_READ(parent, d_inode, i_mode);

		if (mode & S_IWOTH)
			return true;
		if (!parent || parent == dentry)
			return false;
		dentry = parent;
	}
	return false;
}

static __always_inline __u32 name_classes(const struct guard_name *name)
{
	__u32 *c = bpf_map_lookup_elem(&confine_exec_names, name);

	return c ? *c : 0;
}

/* What the program is: classes of its inode, its file name, its comm, where it lives. */
static __always_inline __u32 exec_classes(struct linux_binprm *bprm, const struct guard_name *comm, struct guard_confine_file_key *file)
{
	struct dentry *dentry = BPF_CORE_READ(bprm, file, f_path.dentry);
	struct guard_name fname = {};
	__u32 classes = 0, *c;

	c = bpf_map_lookup_elem(&confine_exec_files, file);
	if (c)
		classes |= *c;
	classes |= name_classes(comm);
	if (bpf_probe_read_kernel_str(fname.name, sizeof(fname.name) - 1, BPF_CORE_READ(dentry, d_name.name)) > 0)
		classes |= name_classes(&fname);
	if (is_memfd(dentry))
		classes |= GUARD_CLASS_MEMFD;
	else if (in_writable_tree(dentry))
		classes |= GUARD_CLASS_WORLD_WRITABLE;
	return classes;
}

static __always_inline void record_act(struct guard_confine_act *a, const struct guard_confine_job *job, __u32 kind)
{
	struct task_struct *task = bpf_get_current_task_btf();

	a->time_ns = bpf_ktime_get_boot_ns();
	a->start_time_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	a->tgid = bpf_get_current_pid_tgid() >> 32;
	a->section = job->section;
	a->job = job->job;
	a->mode = job->mode;
	a->kind = kind;
	bpf_get_current_comm(a->comm, sizeof(a->comm));
}

/* Judges the exec of a confined job's process at sched_process_exec: a program
 * the section denies is killed before its first instruction (audit: recorded only). */
static __always_inline void judge_exec(struct guard_confine_job *job, struct linux_binprm *bprm, const struct guard_name *comm)
{
	struct guard_confine_exec_rules *rules;
	struct guard_confine_file_key file;
	struct guard_confine_act *a;
	__u32 set, classes, denied, *own;
	struct inode *inode;
	bool killed = false;
	long n;

	if (!job)
		return;
	set = job->section;
	rules = bpf_map_lookup_elem(&confine_exec_rules, &set);
	if (!rules || !rules->deny)
		return;
	inode = BPF_CORE_READ(bprm, file, f_inode);
	file.ino = BPF_CORE_READ(inode, i_ino);
	file.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	file.set = 0;
	classes = exec_classes(bprm, comm, &file);
	file.set = set;
	own = bpf_map_lookup_elem(&confine_exec_files, &file);
	if (own && (*own & GUARD_CONFINE_FILE_ALLOW))
		return;
	if (own && (*own & GUARD_CONFINE_FILE_DENY))
		classes |= GUARD_CLASS_FILE;
	/* An allow rule that matches wins over every deny (exec.allow excepts from exec.deny). */
	denied = classes & rules->deny;
	if (!denied || (classes & rules->allow & ~GUARD_CLASS_FILE))
		return;
	if (job->job) {
		/* Approved for this job alone: read only once the section denied it. */
		__u64 *until;

		file.set = job->job;
		until = bpf_map_lookup_elem(&confine_exec_approved, &file);
		if (until && (!*until || *until > bpf_ktime_get_boot_ns()))
			return;
	}
	if (job->mode != GUARD_CONFINE_AUDIT)
		killed = bpf_send_signal(SIGKILL) == 0;
	a = bpf_ringbuf_reserve(&confine_acts, sizeof(*a), 0);
	if (!a)
		return;
	record_act(a, job, GUARD_CONFINE_ACT_EXEC);
	a->ino = file.ino;
	a->dev = file.dev;
	a->classes = classes;
	a->denied = denied;
	a->major = 0;
	a->minor = 0;
	a->killed = killed;
	n = bpf_probe_read_kernel_str(a->path, sizeof(a->path), BPF_CORE_READ(bprm, filename));
	a->path_len = n > 0 ? n - 1 : 0;
	bpf_ringbuf_submit(a, 0);
}

/* Returns 0 (EPERM) for a confined job's open or mknod of a /dev/nvidiaN its section does not allow. */
static __always_inline int dev(struct bpf_cgroup_dev_ctx *ctx, bool tree)
{
	struct guard_confine_job *job;
	struct guard_confine_gpu *gpu;
	struct guard_confine_act *a;
	__u32 set, minor = ctx->minor;

	if ((ctx->access_type & 0xFFFF) != BPF_DEVCG_DEV_CHAR || ctx->major != GUARD_NVIDIA_MAJOR)
		return ALLOW;
	if (minor == GUARD_NVIDIA_CTL_MINOR || minor == GUARD_NVIDIA_MODESET_MINOR)
		return ALLOW;
	job = judged_job(tree);
	if (!job)
		return ALLOW;
	set = job->section;
	gpu = bpf_map_lookup_elem(&confine_gpu, &set);
	if (!gpu || !gpu->limited)
		return ALLOW;
	if (minor < 256 && (gpu->minors[(minor >> 6) & 3] >> (minor & 63)) & 1)
		return ALLOW;
	a = bpf_ringbuf_reserve(&confine_acts, sizeof(*a), 0);
	if (a) {
		record_act(a, job, GUARD_CONFINE_ACT_GPU);
		a->ino = 0;
		a->dev = 0;
		a->classes = 0;
		a->denied = 0;
		a->major = ctx->major;
		a->minor = minor;
		a->killed = 0;
		a->path_len = 0;
		a->path[0] = 0;
		bpf_ringbuf_submit(a, 0);
	}
	return job->mode == GUARD_CONFINE_AUDIT ? ALLOW : EPERM_DENY;
}

SEC("cgroup/dev")
int guard_confine_dev(struct bpf_cgroup_dev_ctx *ctx)
{
	return dev(ctx, false);
}

SEC("cgroup/dev")
int guard_confine_tree_dev(struct bpf_cgroup_dev_ctx *ctx)
{
	return dev(ctx, true);
}

/*
 * A new job cgroup's first exec, before any sensor has seen the job: the
 * kernel confines it here when its kind's section selects every job of the
 * kind (confine_kinds, written by user space only where no earlier section
 * could select some of them on terms the kernel cannot judge: an id glob, a
 * user, a group). Judged by the job cgroup's name as verdicts.h judges
 * membership (the outermost job cgroup); its entry gets the job's own rule
 * set as ConfineRules.CgroupJobSet makes it, so the sensor's later entry is
 * the same. Exec and sends on sockets it did not make are judged from this
 * exec on; its connects once a sensor attaches the job's cgroup programs.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GUARD_CONFINE_KINDS);
	__type(key, __u32);
	__type(value, struct guard_confine_job);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} confine_kinds SEC(".maps");

/* What a leaf cgroup's walk found: its job cgroup, or kind 0 for none. */
struct confine_kind_found {
	__u64 id;   /* the job's own cgroup */
	__u32 level;
	__u32 kind; /* enum guard_confine_kind; 0: the cgroup is in no job of a kind the kernel tells */
};

/* Each leaf cgroup's walk, by its id: cgroup names never change, so neither does what they name
 * (whether the kind is confined is looked up afresh each time: the policy may change). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct confine_kind_found);
} confine_kinds_found SEC(".maps");

struct kind_walk {
	void *ancestors; /* &cgroup->ancestors[0]: the root, then each level down */
	__u64 id;        /* the job's own cgroup once found */
	__u32 level;
	__u32 kind;      /* enum guard_confine_kind */
	__u32 under_docker;
	struct guard_cgroup_name name;
};

/* bpf_loop callback: the directory name at level i + 1; stops at the first (outermost) job's. */
static long kind_step(__u32 i, void *ctx)
{
	struct kind_walk *w = ctx;
	struct kernfs_node *kn;
	long len;

	if (!cgroup_level_name(w->ancestors, i, &w->name, &kn, &len))
		return 1;
	if (!CGROUP_NAME_READ(&w->name, len)) {
		w->under_docker = 0;
		return 0;
	}
	if (slurm_job(&w->name, len))
		w->kind = GUARD_CONFINE_KIND_SLURM;
	else if (kubernetes_pod(&w->name, len))
		w->kind = GUARD_CONFINE_KIND_POD;
	else if (container(&w->name, len, w->under_docker))
		w->kind = GUARD_CONFINE_KIND_CONTAINER;
	if (w->kind) {
		w->id = BPF_CORE_READ(kn, id);
		w->level = i + 1;
		return 1;
	}
	w->under_docker = len == 6 && !prefix_misses(w->name.name, "docker", 6);
	return 0;
}

/* The outermost job cgroup above (or at) `cgroup` of a kind confine_kinds names: its id, level and kind in w. */
static __always_inline void find_kind(struct kind_walk *w, struct cgroup *cgroup)
{
	__u32 levels = job_levels(cgroup, &w->ancestors);

	if (levels > 0)
		bpf_loop(levels, kind_step, w, 0);
}

/* The entry it made (confine_cgroups), or NULL. */
static __always_inline struct guard_confine_job *confine_new_job(struct task_struct *task)
{
	struct confine_kind_found *cached, found = {};
	struct guard_confine_job *kind, fresh;
	__u32 zero = 0;
	__u64 leaf, *bits;

	kind = bpf_map_lookup_elem(&confine_kinds, &zero);
	if (!kind || !kind->section)
		return NULL;
	/* task is the tracepoint's own argument: its cgroup read directly, no probe helper. */
	leaf = task->cgroups->dfl_cgrp->kn->id;
	cached = bpf_map_lookup_elem(&confine_kinds_found, &leaf);
	if (cached) {
		found = *cached;
	} else {
		struct kind_walk w = {};

		find_kind(&w, BPF_CORE_READ(task, cgroups, dfl_cgrp));
		found.id = w.id;
		found.level = w.level;
		found.kind = w.id && w.level < GUARD_CONFINE_LEVELS ? w.kind : 0;
		bpf_map_update_elem(&confine_kinds_found, &leaf, &found, BPF_ANY);
	}
	if (!found.kind)
		return NULL;
	kind = bpf_map_lookup_elem(&confine_kinds, &found.kind);
	if (!kind || !kind->section)
		return NULL;
	fresh = *kind;
	fresh.job = GUARD_CONFINE_JOB_SETS + (__u32)(found.id % (GUARD_CONFINE_TREE_SETS - GUARD_CONFINE_JOB_SETS));
	fresh.start_ticks = 0;
	/* The entry first, then the level bit that makes the programs look it up. */
	if (bpf_map_update_elem(&confine_cgroups, &found.id, &fresh, BPF_NOEXIST))
		return NULL;
	bits = bpf_map_lookup_elem(&confine_levels, &zero);
	if (bits)
		__sync_fetch_and_or(bits, 1ULL << (found.level & (GUARD_CONFINE_LEVELS - 1)));
	return bpf_map_lookup_elem(&confine_cgroups, &found.id);
}

/* A launcher the policy names starts a confined tree at its exec. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(guard_confine_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct guard_confine_job *job = job_of_current(), *launcher, joined;
	struct guard_name name = {};
	__u32 tgid = task->tgid;

	bpf_get_current_comm(name.name, sizeof(name.name));
	if (!job)
		job = confine_new_job(task);
	judge_exec(job, bprm, &name);
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

/* ---- sockets the job did not make ---------------------------------------- */

/* The id of the cgroup `level` levels below the root that cgrp is in (or is); 0 when cgrp is not that deep. */
static __always_inline __u64 cgroup_ancestor_id(struct cgroup *cgrp, int level)
{
	struct cgroup *ancestor = NULL;

	if (!cgrp || level < 0 || level >= GUARD_CONFINE_LEVELS || BPF_CORE_READ(cgrp, level) < level)
		return 0;
	if (bpf_probe_read_kernel(&ancestor, sizeof(ancestor), &cgrp->ancestors[level & (GUARD_CONFINE_LEVELS - 1)]) || !ancestor)
		return 0;
	return BPF_CORE_READ(ancestor, kn, id);
}


/*
 * The cgroup programs run by the cgroup of the socket (the one that made it),
 * so a socket made outside every confined job and passed in (SCM_RIGHTS), or
 * inherited from the launcher, is judged neither at connect nor at egress.
 * This runs after each send (net/socket.c, sock_sendmsg_nosec: write, send,
 * sendmsg, sendfile, io_uring alike), where current is the sender whoever
 * made the socket. A confined job's send on an AF_INET/AF_INET6 TCP or UDP
 * socket it did not make is judged by the socket's peer (an unconnected UDP
 * socket has none here: denied). The send has returned by then and cannot
 * fail with EPERM: a denied sender is killed at once (SIGKILL; at most that
 * one send went), audit only counts, ask counts (user space raises the
 * request) and kills as enforce does.
 * A socket the job made: one made in the sender's own cgroup (first: the
 * common case for everyone, decided with no lookup; for a launcher tree the
 * only sign of its accepted sockets, which carry no mark), one its programs
 * judged for this job (storage), one whose cgroup is the job's or below it.
 */
SEC("tp_btf/sock_send_length")
int BPF_PROG(guard_confine_send, struct sock *sk, int ret, int flags)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct guard_confine_job *job, copy;
	__u64 levels, job_cgroup = 0;
	struct confine_sock *st;
	__u8 addr[16], protocol;
	__u16 family, port;
	int level = 0;

	/* sk is the tracepoint's own argument: read directly, no probe helper. */
	family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	/* Made in the sender's own cgroup: its own, inside a job or outside every
	 * one (a job's, its programs judge). Nearly every send ends here, with no
	 * map lookup and no helper but current's. */
	if (sk->sk_cgrp_data.cgroup == task->cgroups->dfl_cgrp)
		return 0;
	levels = confined_levels();
	if (!levels)
		return 0;
	job = cgroup_job_at(levels, &job_cgroup, &level);
	if (!job)
		job = tree_job_of_current(levels);
	if (!job)
		return 0;
	copy = *job;
	protocol = sk->sk_protocol;
	if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
		return 0;
	/* A listener sends nothing of its own. */
	if (protocol == IPPROTO_TCP && sk->__sk_common.skc_state == TCP_LISTEN)
		return 0;
	st = bpf_sk_storage_get(&confine_socks, sk, 0, 0);
	if (st && st->v.job.job == copy.job && st->v.job.section == copy.section)
		return 0;
	if (job_cgroup && cgroup_ancestor_id(sk->sk_cgrp_data.cgroup, level) == job_cgroup)
		return 0;
	port = bpf_ntohs(sk->__sk_common.skc_dport);
	if (family == AF_INET)
		v4_mapped(addr, sk->__sk_common.skc_daddr);
	else
		__builtin_memcpy(addr, &sk->__sk_common.skc_v6_daddr, 16);
	if (port && allowed(&copy, addr, port, protocol))
		return 0;
	if (deny(&copy, addr, port, protocol, GUARD_CONFINE_PASSED, true) == EPERM_DENY)
		bpf_send_signal(SIGKILL);
	return 0;
}
