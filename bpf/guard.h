/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * guard.h: the whole contract between the kernel programs and the sensor.
 * Constants, the configuration the sensor writes before load, and the fixed
 * layout of every ring buffer record. Mirrored once, field for field, in
 * sensor/Abi/; RecordLayoutTests checks both against the BTF of
 * the built object, so a change here without a change there fails the tests.
 */
#ifndef GUARD_H
#define GUARD_H

/* Raised with every change a decoder of the last version would misread: 2,
 * the exec record's file (file_ino, file_dev); 3, the stream record
 * (GUARD_RECORD_STREAM) and the head segments' flags as the stream scan
 * sets them, argv past the exec record (GUARD_RECORD_EXEC_ARGS, args_total). */
#define GUARD_ABI_VERSION 3

#define GUARD_COMM_LEN 16
#define GUARD_PATH_LEN 256
#define GUARD_ARGS_LEN 1024
/* argv past GUARD_ARGS_LEN is read at exec too, up to GUARD_ARGS_MAX, in
 * guard_exec_args records of GUARD_ARGS_CHUNK bytes each. */
#define GUARD_ARGS_CHUNK 4096
#define GUARD_ARGS_MAX 65536
#define GUARD_PAYLOAD_LEN 256
/* A TCP stream that opens with a TLS handshake record is reported this far,
 * in payload records of GUARD_PAYLOAD_LEN bytes: its whole ClientHello
 * (post-quantum key shares make it ~2 KiB; a server name may sit anywhere
 * in it, across TLS records), not only its first bytes. */
#define GUARD_TLS_HEAD_LEN 8192
#define GUARD_DNS_LEN 256
#define GUARD_MAX_GPU_DEVICES 8

enum guard_record_kind {
	GUARD_RECORD_EXEC = 1,
	GUARD_RECORD_FORK = 2,
	GUARD_RECORD_EXIT = 3,
	GUARD_RECORD_CONNECT = 4,
	GUARD_RECORD_PAYLOAD = 5,
	GUARD_RECORD_DNS = 6,
	GUARD_RECORD_GPU_OPEN = 7,
	GUARD_RECORD_GPU_IOCTL = 8,
	GUARD_RECORD_STREAM = 9,
	GUARD_RECORD_EXEC_ARGS = 10,
	GUARD_RECORD_KIND_COUNT = 11,
};

enum guard_connect_result {
	GUARD_CONNECT_ESTABLISHED = 1,
	GUARD_CONNECT_FAILED = 2,
	/* UDP has no handshake: the record says only that connect() was called. */
	GUARD_CONNECT_UDP = 3,
};

/* Which device a configured major/minor is: decides how its ioctls are read. */
enum guard_gpu_role {
	GUARD_GPU_NONE = 0,
	GUARD_GPU_RM = 1,  /* /dev/nvidiactl, /dev/nvidiaN: resource manager escapes */
	GUARD_GPU_UVM = 2, /* /dev/nvidia-uvm: unified memory calls */
};

/* Per-process ioctl counter slots (gpu_ioctl_counts key.slot). */
enum guard_ioctl_kind {
	GUARD_IOCTL_RM_ALLOC = 0,
	GUARD_IOCTL_RM_FREE = 1,
	GUARD_IOCTL_RM_CONTROL = 2,
	GUARD_IOCTL_RM_MAP = 3,
	GUARD_IOCTL_RM_OTHER = 4,
	GUARD_IOCTL_UVM = 5,
	GUARD_IOCTL_KIND_COUNT = 6,
};

/* NVIDIA open driver numbers (nv_escape.h, nv-ioctl-numbers.h, nvos.h). */
#define GUARD_NV_IOCTL_MAGIC 'F'
#define GUARD_NV_ESC_RM_ALLOC_MEMORY 0x27
#define GUARD_NV_ESC_RM_FREE 0x29
#define GUARD_NV_ESC_RM_CONTROL 0x2A
#define GUARD_NV_ESC_RM_ALLOC 0x2B
#define GUARD_NV_ESC_RM_MAP_MEMORY 0x4E
#define GUARD_NV_ESC_IOCTL_XFER_CMD 211
/* hClass sits at the same offset in NVOS21_PARAMETERS and NVOS64_PARAMETERS. */
#define GUARD_NV_RM_ALLOC_CLASS_OFFSET 12

struct guard_gpu_device {
	__u32 major;
	__s32 minor; /* -1: every minor of the major */
	__u32 role;  /* enum guard_gpu_role */
	__u32 pad;
};

/* Written into .rodata by the sensor before load (const volatile). */
struct guard_config {
	__u32 abi_version;
	__u32 self_pid; /* the sensor's own tgid: its records would feed back */
	__u32 gpu_device_count;
	/* Wake the reader only once this much is waiting; it polls on a short
	 * timer besides, so a quiet ring is still read promptly. A wakeup per
	 * record costs a context switch per record. */
	__u32 wakeup_bytes;
	struct guard_gpu_device gpu_devices[GUARD_MAX_GPU_DEVICES];
};

/* Keys of the name maps: a comm, NUL-padded (15 characters at most). */
struct guard_name {
	char name[GUARD_COMM_LEN];
};

/* miner_names keys (an LPM trie): a whole name is its bytes and the NUL
 * after them, a family of release names ("cpuminer-*") its stem alone, so
 * one longest-prefix lookup of a NUL-padded name finds either; prefixlen in
 * bits. A lookup asks with prefixlen 8 * GUARD_COMM_LEN. */
struct guard_name_key {
	__u32 prefixlen;
	char name[GUARD_COMM_LEN];
};

/* miner_names values. */
#define GUARD_MINER_ANYWHERE 1 /* no other program has this name */
#define GUARD_MINER_IN_JOB 2   /* a real program elsewhere: only inside a job */
#define GUARD_MINER_KILL 4     /* the policy's rule for it kills (enforce mode) */

/* allowed_files keys: an executable the policy allows, by the inode exec
 * opens (dev as the kernel encodes it: major << 20 | minor). */
struct guard_file_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/* job_members values: the job a process is in, kept from exec and fork
 * (so it survives re-parenting and leaving the job's cgroup): the launcher
 * above it (a jobs.roots exec), the job's own cgroup, or both. */
struct guard_job_member {
	__u32 root_pid; /* 0: no launcher above it */
	__u32 pad;
	__u64 root_start_time_ns;
	__u64 cgroup_id; /* the job's own cgroup (verdicts.h: job_cgroup_of_current); 0: none */
};

/* A cgroup names a job by a directory name on its path: a Slurm job
 * (job_778), a Kubernetes pod (kubepods-burstable-pod<UID>.slice, pod<UID>),
 * a container (docker-<64 hex>.scope, cri-containerd-, crio-, libpod-, or
 * <64 hex> under docker), or a unit the policy names. The outermost such
 * directory is the job's own cgroup. Only the first GUARD_CGROUP_JOB_LEVELS
 * levels below the root are read, and a name of GUARD_CGROUP_NAME_LEN - 1
 * bytes or more names no job. sensor/Processes/CgroupJobs.cs judges alike. */
#define GUARD_CGROUP_NAME_LEN 128
#define GUARD_CGROUP_JOB_LEVELS 16

/* job_units keys: a unit the policy makes a job ("trainer.service"), NUL-padded. */
struct guard_cgroup_name {
	char name[GUARD_CGROUP_NAME_LEN];
};

/* Every record starts with this; pid and start_time_ns name the process. */
struct guard_header {
	__u16 kind;
	__u16 version;
	__u32 pid;           /* tgid */
	__u64 time_ns;       /* CLOCK_BOOTTIME */
	__u64 start_time_ns; /* group leader's start, CLOCK_BOOTTIME */
};

#define GUARD_EXEC_ARGS_TRUNCATED 1
#define GUARD_EXEC_KNOWN_MINER 2 /* its name is on the policy's miner list */
#define GUARD_EXEC_KILLED 4      /* and the kernel killed it before it ran */
#define GUARD_EXEC_IN_JOB 8      /* it runs inside a training job */
#define GUARD_EXEC_UNLINKED 16   /* its file has no name left (deleted) */
#define GUARD_EXEC_MEMFD 32      /* its file is a memfd: fileless */
#define GUARD_EXEC_SHARED_DIR 64 /* its directory is world-writable and sticky (/tmp, /dev/shm) */
#define GUARD_EXEC_MINER_ANYWHERE 128 /* the miner name matched is acted on anywhere, not in jobs only */

struct guard_exec {
	struct guard_header h;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u16 path_len;
	__u16 args_len;
	__u64 parent_start_time_ns;
	__u64 cgroup_id;
	__u32 flags;
	__u32 job_root_pid; /* 0 outside a job */
	/* The file exec opened (bprm->file), as the kernel names it: user space
	 * hashes only a file with this inode and device (major << 20 | minor),
	 * never whatever the path names by the time it looks. */
	__u64 file_ino;
	__u32 file_dev;
	__u32 args_total; /* argv's whole length; more than args_len: the rest came in guard_exec_args records */
	char comm[GUARD_COMM_LEN];
	char path[GUARD_PATH_LEN];
	char args[GUARD_ARGS_LEN]; /* NUL-separated, as the kernel keeps them */
};

/* argv past the exec record's GUARD_ARGS_LEN bytes, read from the new
 * image's memory at exec, before its first instruction (a program cannot
 * rewrite them first), up to GUARD_ARGS_MAX. Submitted before the exec
 * record of the same process, in order of offset: the sensor has them when
 * it judges the exec. */
struct guard_exec_args {
	struct guard_header h; /* the process, as its exec record's */
	__u32 offset;          /* of data[0] in argv: GUARD_ARGS_LEN + n * GUARD_ARGS_CHUNK */
	__u32 len;             /* bytes in data */
	char data[GUARD_ARGS_CHUNK];
};

struct guard_fork {
	struct guard_header h; /* the child */
	__u32 parent_pid;
	__u32 uid;
	__u64 parent_start_time_ns;
	__u64 cgroup_id;
	char comm[GUARD_COMM_LEN];
};

struct guard_exit {
	struct guard_header h;
	__u32 exit_code; /* wait status: signal in bits 0-6, status in 8-15 */
	__u32 pad;
};

struct guard_connect {
	struct guard_header h;
	__u64 cookie;
	__u16 family; /* AF_INET, AF_INET6 */
	__u16 protocol;
	__u16 dport; /* host order */
	__u16 sport;
	__u32 result; /* enum guard_connect_result */
	__u32 pad;
	__u8 daddr[16]; /* IPv4 in the first four bytes */
	__u8 saddr[16];
};

/* The head of each sock_owners value (bpf/guard.bpf.c struct sock_owner):
 * the process that connected the socket, or last sent on it unconnected,
 * while Guard watched. The sensor reads it through a descriptor of the
 * socket (a socket storage lookup takes one as its key): a socket that was
 * accepted, or connected before Guard started, has none. */
struct guard_sock_owner {
	__u64 start_time_ns; /* group leader's start, CLOCK_BOOTTIME */
	__u32 pid;           /* tgid */
	__u32 pad;
};

/* unix_heads values: socket storage on the receiving end of a unix stream,
 * the first bytes written into it while Guard watched and who wrote the
 * first of them (the writer is current when the kernel queues the bytes). The
 * sensor reads it through a descriptor of the receiving socket, to tell which
 * of a relay's unix clients sent what it relayed. data is twice the capture
 * so that a copy at any offset below GUARD_UNIX_HEAD_LEN stays inside it. */
#define GUARD_UNIX_HEAD_LEN 256
struct guard_unix_head {
	__u64 start_time_ns; /* the first writer's group leader's start, CLOCK_BOOTTIME */
	__u32 pid;           /* its tgid */
	__u16 len;           /* bytes in data, at most GUARD_UNIX_HEAD_LEN */
	__u16 flags;         /* GUARD_UNIX_HEAD_* */
	__u8 data[2 * GUARD_UNIX_HEAD_LEN];
};

/* Another process than the first writer wrote some of data: the writer named
 * is not the writer of every byte (both ends of a socketpair are held by a
 * parent and its child after fork, and either may write). */
#define GUARD_UNIX_HEAD_MIXED 1

/* unix_dgram_heads values: socket storage on a unix datagram socket that
 * received while Guard watched. Datagrams come from any process that names
 * the socket (connected or not), so each sender gets a head of its own: the
 * first GUARD_UNIX_HEAD_LEN bytes it sent to this socket. Past
 * GUARD_UNIX_DGRAM_WRITERS senders, the others' datagrams are only counted. */
#define GUARD_UNIX_DGRAM_WRITERS 4
struct guard_unix_dgram_heads {
	__u32 others;   /* datagrams from senders past those kept */
	__u32 pad;
	struct guard_unix_head writers[GUARD_UNIX_DGRAM_WRITERS];
};

#define GUARD_PAYLOAD_FINAL 1
#define GUARD_PAYLOAD_STRATUM 2 /* this segment completed a Stratum method */
#define GUARD_PAYLOAD_DROPPED 4 /* and it, with all that follows, was dropped */

#define GUARD_METHOD_LEN 32

/* Key of stratum_methods: a JSON-RPC method name, NUL-padded. Values: */
struct guard_method {
	char name[GUARD_METHOD_LEN];
};
#define GUARD_STRATUM_ALERT 1
#define GUARD_STRATUM_DROP 2
/* Not a map value: the scan ran out of budget (GUARD_SCAN_LIMIT) inside a
 * message or a proxy handshake, so the stream is held (dropped) undecided. */
#define GUARD_STRATUM_HOLD 3

/* How far the kernel reads a TCP stream for Stratum (bpf/stream.h): its
 * first GUARD_SCAN_LIMIT bytes at most, handshakes included. */
#define GUARD_SCAN_LIMIT 65536

/* One of the first segments of a connection: its bytes and where they sit in
 * the first GUARD_PAYLOAD_LEN bytes of the stream. The sensor assembles them
 * and emits one event per connection. */
struct guard_payload {
	struct guard_header h;
	__u64 cookie;
	__u16 family;
	__u16 dport;
	__u16 offset; /* of data[0] in the stream */
	__u16 len;    /* of data */
	__u8 segments; /* counting this one */
	__u8 flags;
	__u16 pad;
	__u8 daddr[16];
	__u8 data[GUARD_PAYLOAD_LEN];
};

/* The proxy handshake a stream opened with (bpf/stream.h), the latest when
 * proxies are chained. */
enum guard_proxy {
	GUARD_PROXY_NONE = 0,
	GUARD_PROXY_SOCKS4 = 1,
	GUARD_PROXY_SOCKS4A = 2,
	GUARD_PROXY_SOCKS5 = 3,
	GUARD_PROXY_HTTP_CONNECT = 4,
	GUARD_PROXY_HTTP_FORWARD = 5, /* an HTTP request for an absolute-form target (http://host:port/...) */
};

/* How the destination asked of a proxy is written in proxy_host. */
enum guard_proxy_address {
	GUARD_PROXY_ADDRESS_NONE = 0,
	GUARD_PROXY_ADDRESS_IPV4 = 1, /* 4 bytes */
	GUARD_PROXY_ADDRESS_IPV6 = 2, /* 16 bytes */
	GUARD_PROXY_ADDRESS_NAME = 3, /* a domain name (SOCKS4a, SOCKS5) */
	GUARD_PROXY_ADDRESS_AUTHORITY = 4, /* HTTP CONNECT's "host:port", or an absolute-form target's authority, as sent */
};

#define GUARD_PROXY_HOST_LEN 64

/* What the kernel decided about a TCP stream past its head: a proxy
 * handshake completed or an absolute-form HTTP request read (verdict 0), or
 * a Stratum verdict (with the latest handshake, if any). One record per
 * event, however late in the stream: the sensor acts on each drop whether
 * or not the head's records came. */
struct guard_stream {
	struct guard_header h; /* the owner recorded at connect */
	__u64 cookie;
	__u16 family;
	__u16 dport;
	__u32 offset;           /* stream offset of the byte that decided it */
	__u8 verdict;           /* 0, GUARD_STRATUM_ALERT, _DROP or _HOLD */
	__u8 proxy;             /* enum guard_proxy */
	__u8 proxy_address;     /* enum guard_proxy_address */
	__u8 proxy_host_len;    /* bytes in proxy_host (cut at GUARD_PROXY_HOST_LEN) */
	__u16 proxy_port;       /* host order; 0 for HTTP CONNECT (in the authority) */
	__u16 pad;
	__u8 daddr[16];
	char method[GUARD_METHOD_LEN]; /* the method that decided it, NUL-padded */
	__u8 proxy_host[GUARD_PROXY_HOST_LEN];
};

struct guard_dns {
	struct guard_header h;
	__u64 cookie;
	__u16 family;
	__u16 dport;
	__u16 len;
	__u16 pad;
	__u8 daddr[16];
	__u8 message[GUARD_DNS_LEN]; /* the DNS message from its header on */
};

struct guard_gpu_open {
	struct guard_header h;
	__u32 major;
	__u32 minor;
	__u32 access; /* BPF_DEVCG_ACC_* */
	__u32 role;
};

/* First GPU ioctl of a process; counts follow in the maps. */
struct guard_gpu_ioctl {
	struct guard_header h;
	__u32 major;
	__u32 minor;
	__u32 cmd;
	__u32 role;
};

/* allowed_destinations keys (an LPM trie): the port in network order (0:
 * any port), then the address as IPv6, IPv4 v4-mapped. prefixlen counts the
 * port's 16 bits and the address bits the policy names. */
struct guard_destination_key {
	__u32 prefixlen;
	__u8 port[2];
	__u8 addr[16];
	__u8 pad[2];
};

/* rounding_switches values, per process: its context switches seen in each
 * non-default rounding mode of SSE (MXCSR bits 13-14) or x87 (control word
 * bits 10-11), once per mode either holds. RandomX's CFROUND picks
 * among all four modes as its program runs; interval arithmetic holds one. */
#define GUARD_ROUNDING_MODES 3
struct guard_rounding {
	__u64 start_time_ns; /* the process's start: a reused pid is a new process */
	__u64 switches[GUARD_ROUNDING_MODES]; /* [mode - 1]: down, up, toward zero */
};

/* Key of rounding_exited: an ended process, by pid and start. */
struct guard_rounding_key {
	__u32 tgid;
	__u32 pad;
	__u64 start_time_ns;
};

/* Keys of the per-process GPU counter maps, read by the sensor. */
struct guard_gpu_count_key {
	__u32 pid;
	__u32 slot; /* enum guard_ioctl_kind, or an RM class id */
};

/*
 * Quarantine (bpf/quarantine.bpf.c). Its maps are pinned by name under
 * /sys/fs/bpf/guard and outlive any sensor; the records are the state that
 * `guard status` shows and `guard release` undoes.
 */
#define GUARD_JOB_LEN 64
#define GUARD_ORDERED_BY_LEN 32
#define GUARD_REASON_LEN 160

enum guard_quarantine_mode {
	GUARD_QUARANTINE_CGROUP = 1, /* the job's own cgroup: frozen, deny programs attached to it */
	GUARD_QUARANTINE_TREE = 2,   /* a process tree: SIGSTOP, members in quarantine_tgids */
};

enum guard_quarantine_expiry {
	GUARD_EXPIRY_NONE = 0,
	GUARD_EXPIRY_KILL = 1,
	GUARD_EXPIRY_RELEASE = 2,
};

/* quarantines values, keyed by a __u64 id (the cgroup id in cgroup mode). */
struct guard_quarantine {
	__u64 since_ns;    /* CLOCK_REALTIME */
	__u64 deadline_ns; /* CLOCK_REALTIME; 0: held until a person decides */
	__u64 cgroup_id;   /* cgroup mode */
	__u64 root_start_ticks;
	__u32 root_pid;
	__u32 ordered_by_uid;
	__u32 mode;   /* enum guard_quarantine_mode */
	__u32 expiry; /* enum guard_quarantine_expiry */
	char job[GUARD_JOB_LEN];
	char ordered_by[GUARD_ORDERED_BY_LEN]; /* "cli" or a rule */
	char reason[GUARD_REASON_LEN];
};

/* quarantine_devices keys: a GPU device the held may not open. */
struct guard_device_key {
	__u32 major;
	__s32 minor; /* -1: every minor of the major */
};

/* tgid-keyed membership (quarantine_tgids, lineage_stopping): which hold,
 * or when a stop lapses (CLOCK_BOOTTIME ns, which also names the stop), and
 * the process's start in clock ticks, so a reused tgid is never a member. */
struct guard_member {
	__u64 id;
	__u64 start_ticks;
};

/* How a held process was found running again (guard_continue.via). */
enum guard_continue_via {
	GUARD_CONTINUE_SIGNAL = 1,    /* a signal that continues a stopped task (SIGCONT) was generated for it */
	GUARD_CONTINUE_GPU_IOCTL = 2, /* it issued a GPU driver ioctl (guard.bpf.c), so it ran */
	GUARD_CONTINUE_PTRACE = 3,    /* its tracer resumed it (PTRACE_CONT, _SYSCALL, _SINGLESTEP, ...) */
	GUARD_CONTINUE_CGROUP_MOVE = 4, /* a member of a cgroup hold was moved out of the held cgroup (which thaws it) */
};

/* quarantine_continues keys: one held process of one hold, one way of
 * letting it run: each way is counted apart. */
struct guard_continue_key {
	__u64 hold_id;
	__u32 tgid;
	__u32 via; /* enum guard_continue_via */
};

/* quarantine_continues values: what tried to let a held process run, and
 * what the kernel did about it. Counted in place; the sensor reports the
 * growth and `guard status` the totals. */
struct guard_continue {
	__u64 start_ticks; /* the held process's start: with the tgid, which process */
	__u64 refused;     /* continues answered by queuing SIGSTOP to its thread group (SIGKILL for a ptrace resume) */
	__u64 unanswered;  /* continues whose SIGSTOP could not be queued (-EBUSY: the per-CPU irq_work slot was taken); user space stops those */
	__u64 last_ns;     /* CLOCK_BOOTTIME of the latest */
	__u32 sender_tgid; /* current when the latest was generated: the sender for kill(2), tgkill(2) and sigqueue(2) */
	__s32 si_code;     /* the latest's siginfo code: SI_USER 0, SI_TKILL -6, SI_QUEUE -1, SI_TIMER -2, SI_KERNEL 0x80 (uapi siginfo.h) */
	__u32 via;         /* enum guard_continue_via: the key's again */
	__s32 error;       /* what the latest stop returned: 0, or a negative errno */
	char sender_comm[GUARD_COMM_LEN];
};

/*
 * Lineage (bpf/lineage.bpf.c), pinned under /sys/fs/bpf/guard/lineage. A
 * process is its tgid and its group leader's start (CLOCK_BOOTTIME ns): a
 * reused pid is another process. /proc/PID/stat shows the start in clock
 * ticks of USER_HZ, 100 on every architecture Guard builds for.
 */
#define GUARD_NS_PER_TICK 10000000ULL

struct guard_process_id {
	__u32 tgid;
	__u32 pad;
	__u64 start_time_ns;
};

/* lineage values, keyed by the process's guard_process_id. */
struct guard_lineage {
	struct guard_process_id self;    /* the key again */
	struct guard_process_id creator; /* who forked it (the caller, not real_parent), or the nearest recorded creator above an exited one */
	__u32 refs;                      /* 1 while it runs, + 1 for each entry that names it as creator */
	__u32 alive;                     /* 1 until it exits */
};

/*
 * Confinement (bpf/confine.bpf.c), pinned under PIN_ROOT/confine from the
 * first start with a [[confine]] section until `guard detach --all`. Map
 * layouts only: no ring record changes, GUARD_ABI_VERSION stays.
 *
 * A confined process is found by the job's own cgroup (confine_cgroups,
 * keyed by cgroup id, looked up at the levels confine_levels names) or by
 * its tgid (confine_tgids: a launcher's tree, inherited at fork). Its
 * destinations are allowed by rule sets in one LPM trie: the section's
 * (every job it selects) and the job's own (DNS answers, approvals).
 */
#define GUARD_CONFINE_RANGES 8
#define GUARD_CONFINE_LEVELS 32

/* Own rule sets (struct guard_confine_job.job), one per confined job, its
 * identity in confine_denials: a job cgroup's is GUARD_CONFINE_JOB_SETS +
 * its id modulo the range, a tree user space confines
 * GUARD_CONFINE_TREE_SETS + its root's tgid, a tree the kernel starts at a
 * launcher's exec GUARD_CONFINE_KERNEL_SETS + a counter. Below
 * GUARD_CONFINE_JOB_SETS: sections' sets. */
#define GUARD_CONFINE_JOB_SETS 1024U
#define GUARD_CONFINE_TREE_SETS 0x40000000U
#define GUARD_CONFINE_KERNEL_SETS 0x80000000U

enum guard_confine_mode {
	GUARD_CONFINE_ENFORCE = 1, /* denied: EPERM, or the packet dropped */
	GUARD_CONFINE_AUDIT = 2,   /* counted as a denial, let through */
	GUARD_CONFINE_ASK = 3,     /* denied as enforce; user space raises a request */
};

/* confine_cgroups and confine_tgids values: a confined job's rule sets. */
struct guard_confine_job {
	__u32 section;       /* the section's rule set */
	__u32 job;           /* the job's own rule set; 0: none yet */
	__u32 mode;          /* enum guard_confine_mode */
	__u32 pad;
	__u64 start_ticks; /* confine_tgids: the process's start in clock ticks, as /proc shows it (a reused tgid is no member); 0 in confine_cgroups */
};

/* confine_allow keys (an LPM trie): a rule set, then the address as IPv6,
 * IPv4 v4-mapped. prefixlen counts the set's 32 bits and the address bits. */
struct guard_confine_key {
	__u32 prefixlen;
	__u32 set;
	__u8 addr[16];
};

struct guard_port_range {
	__u16 low;  /* host order */
	__u16 high;
	__u8 protocol; /* IPPROTO_TCP, IPPROTO_UDP; 0: any */
	__u8 pad[3];
};

/* confine_allow values: the ports allowed at the longest matching prefix
 * (user space folds in those of every shorter prefix of the set). */
struct guard_confine_ports {
	__u32 count;
	__u32 pad;
	__u64 expires_ns; /* CLOCK_BOOTTIME; 0: never (a DNS answer's TTL, an approval's end) */
	struct guard_port_range ranges[GUARD_CONFINE_RANGES];
};

/* confine_kinds indexes: the job kinds whose new job cgroups the kernel
 * confines at their first exec (confine.bpf.c); entry 0 has a section when
 * any kind has one. */
enum guard_confine_kind {
	GUARD_CONFINE_KIND_ANY = 0,
	GUARD_CONFINE_KIND_SLURM = 1,     /* job_N */
	GUARD_CONFINE_KIND_POD = 2,       /* a Kubernetes pod's cgroup */
	GUARD_CONFINE_KIND_CONTAINER = 3, /* a container's scope */
};
#define GUARD_CONFINE_KINDS 4

enum guard_confine_what {
	GUARD_CONFINE_CONNECT = 1, /* connect(2), TCP or UDP */
	GUARD_CONFINE_SEND = 2,    /* an unconnected UDP send */
	GUARD_CONFINE_EGRESS = 3,  /* a packet of a socket connected before the rule */
	GUARD_CONFINE_PASSED = 4,  /* a send on a socket the job did not make (passed in, inherited): the sender killed */
};

/* DNS names in egress allow lists (confine_names): a name in wire form
 * (length-prefixed labels, lower case, no final zero), at most
 * GUARD_CONFINE_NAME_MAX bytes, zero padded. */
#define GUARD_CONFINE_NAME_MAX 128

struct guard_confine_name_key {
	__u32 set;  /* the section's rule set */
	__u32 len;  /* bytes of name used */
	__u8 name[GUARD_CONFINE_NAME_MAX];
};

/* confine_names values: the ports an answer for the name itself allows
 * (exact), and for a name under it (under, *.NAME); count 0: not allowed so. */
struct guard_confine_name {
	struct guard_confine_ports exact;
	struct guard_confine_ports under;
};

/* confine_resolvers keys: a section's resolver, whose answers on port 53 are read. */
struct guard_confine_resolver_key {
	__u32 set;
	__u8 addr[16]; /* IPv6, IPv4 v4-mapped */
};

/* confine_denials keys: one denied destination of one job. */
struct guard_confine_denial_key {
	__u32 section;
	__u32 job;
	__u8 addr[16]; /* IPv6, IPv4 v4-mapped */
	__u16 port;    /* host order */
	__u8 protocol;
	__u8 what;     /* enum guard_confine_what */
	__u32 pad;
};

/* confine_denials values: counted in place; user space reports the growth. */
struct guard_confine_denial {
	__u64 count;
	__u64 first_ns; /* CLOCK_BOOTTIME */
	__u64 last_ns;
	__u64 start_time_ns; /* the latest denied process's start (0 at egress: no process there) */
	__u32 tgid;
	__u32 mode; /* enum guard_confine_mode at the latest */
	char comm[GUARD_COMM_LEN];
};

/*
 * Exec and GPU confinement (confine.bpf.c: confine_exec_rules,
 * confine_exec_files, confine_exec_names, confine_gpu, confine_acts).
 * What a program is, as the kernel sees it at exec: classes by the file's
 * inode (the known shells, compilers, ... resolved by user space at start
 * and on reload, so a rename or a hard link stays what it is), by its name
 * or comm, by where it lives (memfd, a world-writable tree).
 */
enum guard_exec_class {
	GUARD_CLASS_SHELLS = 1 << 0,
	GUARD_CLASS_PACKAGE_MANAGERS = 1 << 1,
	GUARD_CLASS_COMPILERS = 1 << 2,
	GUARD_CLASS_DOWNLOADERS = 1 << 3,
	GUARD_CLASS_WORLD_WRITABLE = 1 << 4,
	GUARD_CLASS_MEMFD = 1 << 5,
	GUARD_CLASS_FILE = 1 << 6, /* the section names this very file (a path, or a hash user space matched) */
	GUARD_CLASS_INTERPRETERS = 1 << 7,
};

/* confine_exec_rules values, indexed by a section's rule set. */
struct guard_confine_exec_rules {
	__u32 deny;  /* GUARD_CLASS_* the section denies; 0: no exec rules */
	__u32 allow; /* GUARD_CLASS_* excepted from deny */
};

/* confine_exec_files keys: one file; set 0 holds the class files (value:
 * GUARD_CLASS_*), a section's set its own files (value: GUARD_CONFINE_FILE_*). */
struct guard_confine_file_key {
	__u64 ino;
	__u32 dev; /* the superblock's s_dev (major << 20 | minor) */
	__u32 set;
};

#define GUARD_CONFINE_FILE_DENY 1
#define GUARD_CONFINE_FILE_ALLOW 2

/* confine_gpu values, indexed by a section's rule set: the /dev/nvidiaN it may open. */
struct guard_confine_gpu {
	__u64 minors[4]; /* bit N: /dev/nvidiaN allowed */
	__u32 limited;   /* 1: the section limits GPUs; 0: no gpu rule */
	__u32 pad;
};

#define GUARD_NVIDIA_MAJOR 195
#define GUARD_NVIDIA_MODESET_MINOR 254 /* /dev/nvidia-modeset */
#define GUARD_NVIDIA_CTL_MINOR 255     /* /dev/nvidiactl: every CUDA process opens it */

enum guard_confine_act_kind {
	GUARD_CONFINE_ACT_EXEC = 1, /* an exec the section denies */
	GUARD_CONFINE_ACT_GPU = 2,  /* an open of a GPU the section does not allow */
};

#define GUARD_CONFINE_PATH_LEN 256

/* confine_acts ring records: one denied exec or GPU open. */
struct guard_confine_act {
	__u64 time_ns;       /* CLOCK_BOOTTIME */
	__u64 start_time_ns; /* the process's start (group leader's start_boottime) */
	__u64 ino;           /* exec: the file's inode */
	__u32 dev;           /* exec: its s_dev */
	__u32 tgid;
	__u32 section;
	__u32 job;
	__u32 mode;    /* enum guard_confine_mode */
	__u32 kind;    /* enum guard_confine_act_kind */
	__u32 classes; /* exec: GUARD_CLASS_* the program is */
	__u32 denied;  /* exec: those the section denies */
	__u32 major;   /* gpu */
	__u32 minor;
	__u32 killed;  /* exec: 1 when SIGKILL was sent */
	__u32 path_len;
	char comm[GUARD_COMM_LEN];
	char path[GUARD_CONFINE_PATH_LEN]; /* exec: the path as asked (bprm->filename) */
};

#endif /* GUARD_H */
