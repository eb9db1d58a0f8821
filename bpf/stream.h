/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * stream.h: the contract that guard.bpf.c (guard_egress) and enforce.bpf.c
 * (guard_enf_egress) decide alike about a TCP stream's head, its first
 * GUARD_PAYLOAD_LEN bytes: which sockets have a stream (the claim), which
 * egress segments carry its next bytes (sequence and offset), the Stratum
 * scan across them, and the downgrade of a drop to a report for a
 * destination the policy allows. Both call stream_claim at connect and
 * stream_advance at egress; what they do with the bytes afterwards (a
 * record, or nothing) is their own. The policy maps it reads are
 * verdicts.h's.
 */
#ifndef GUARD_STREAM_H
#define GUARD_STREAM_H

#include "packet.h"
#include "verdicts.h"

/* ---- the Stratum scan ----------------------------------------------------- */

/* Where in `"method":"..."` the stream is, across its segments. */
struct stream_scan {
	__u8 scan_stage;
	__u8 scan_index;
	__u8 method_len;
	__u8 pad;
	char method[GUARD_METHOD_LEN];
};

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

/* ---- the allowed-destination downgrade ------------------------------------ */

/* A Stratum match to a destination the policy allows is reported, never dropped. */
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

/* ---- stream bookkeeping --------------------------------------------------- */

/* A TCP stream's head: how far it was read and what it decided. Kept in
 * socket storage, each object in its own map (guard.bpf.c inside its
 * struct sock_owner). Zeroed, as stream_claim creates it, it is a stream
 * whose first byte is still to come. */
struct stream_state {
	__u32 next_seq; /* of the byte after the last segment read */
	__u16 captured; /* bytes of the head read */
	__u8 segments;  /* segments read; 0: the first is still to come */
	__u8 verdict;   /* 0, GUARD_STRATUM_ALERT or GUARD_STRATUM_DROP */
	struct stream_scan scan;
};

/* Claims a socket at connect, before its first byte leaves: only a claimed
 * stream is read, so one connected before its object was attached never is.
 * `storage` is a socket storage map whose value holds a struct stream_state;
 * returns the socket's value in it, created zeroed if new, or NULL. */
static __always_inline void *stream_claim(void *storage, struct bpf_sock *sk)
{
	return sk ? bpf_sk_storage_get(storage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE) : NULL;
}

/* Nothing more of the stream is read: its head is complete, or a Stratum
 * method decided it. Bytes, not segments, bound the head: a sender that
 * splits its first line byte by byte is still read to the end of it. */
static __always_inline bool stream_done(const struct stream_state *st)
{
	return st->captured >= GUARD_PAYLOAD_LEN || st->verdict;
}

/* What cgroup_skb/egress returns for a packet of the stream: after a
 * Stratum line the policy stops, nothing more of the socket leaves. */
static __always_inline int stream_egress_return(const struct stream_state *st)
{
	return st->verdict == GUARD_STRATUM_DROP ? 0 : 1;
}

/* Where the bytes stream_advance read sit. */
struct stream_bytes {
	__u32 offset; /* of the first, in the stream */
	__u32 len;
	__u16 dport;  /* host order */
};

/*
 * Reads one egress TCP packet into the stream's head. When it carries the
 * head's next bytes, returns them (in the one-entry per-CPU array `scratch`,
 * GUARD_PAYLOAD_LEN bytes), says where they sit in *bytes, and has moved the
 * stream on and decided it (st->verdict). Otherwise (the stream is done, no
 * payload, a retransmission, out of order) returns NULL and leaves the
 * stream as it was.
 */
static __always_inline const __u8 *stream_advance(struct __sk_buff *skb, struct l4_location *loc, struct stream_state *st,
						  void *scratch, struct stream_bytes *bytes)
{
	struct tcp_segment seg;
	__u32 offset = st->captured, n, zero = 0, verdict;
	__u8 *buf;

	if (stream_done(st) || read_tcp_segment(skb, loc, &seg))
		return NULL;
	if (st->segments && seg.seq != st->next_seq)
		return NULL; /* a retransmission, or out of order */
	n = seg.payload_len;
	if (n > GUARD_PAYLOAD_LEN - offset)
		n = GUARD_PAYLOAD_LEN - offset;
	if (n == 0 || n > GUARD_PAYLOAD_LEN)
		return NULL;
	buf = bpf_map_lookup_elem(scratch, &zero);
	if (!buf || bpf_skb_load_bytes(skb, seg.payload_offset, buf, n))
		return NULL;
	verdict = scan_stratum(&st->scan, buf, n, offset);
	if (verdict == GUARD_STRATUM_DROP && destination_allowed(loc, seg.dport))
		verdict = GUARD_STRATUM_ALERT;
	/* The stream moves on whatever the caller does with the bytes (a full
	 * ring, say): a later segment is never mistaken for an earlier one. */
	st->captured = offset + n;
	st->next_seq = seg.seq + seg.payload_len;
	st->segments++;
	st->verdict = verdict;
	bytes->offset = offset;
	bytes->len = n;
	bytes->dport = seg.dport;
	return buf;
}

#endif /* GUARD_STREAM_H */
