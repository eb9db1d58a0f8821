/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * packet.h: the contract for reading an egress packet where it lies: where
 * its transport header sits, and where a TCP segment's or a UDP datagram's
 * payload starts. Parsing only: no maps, no verdicts. Headers are read in
 * place (direct packet access, no helper call per packet, but for IPv6
 * extension headers); they sit in the linear part at egress.
 */
#ifndef GUARD_PACKET_H
#define GUARD_PACKET_H

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* The transport header's offset at most: an IPv4 header with every option
 * is 60 bytes; IPv6's 40 with extension headers (a TCP socket's own options,
 * IPV6_HOPOPTS, IPV6_DSTOPTS, IPV6_RTHDR, need CAP_NET_RAW) may reach this
 * far. Bounds the offset for the verifier; a packet whose transport header
 * lies further is not located. */
#define L4_OFFSET_MAX 512

/* IPv6 extension headers followed at most (RFC 8200 4.1 orders at most six
 * before the transport header, AH included). */
#define IPV6_EXTENSIONS_MAX 6

/* uapi linux/in6.h and in.h: the IPv6 extension headers' next-header values. */
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60

struct l4_location {
	__u32 offset; /* of the transport header */
	__u16 family;
	__u8 protocol;
	__u8 daddr[16];
};

static __always_inline bool ipv6_extension(__u8 nexthdr)
{
	return nexthdr == NEXTHDR_HOP || nexthdr == NEXTHDR_ROUTING || nexthdr == NEXTHDR_FRAGMENT ||
	       nexthdr == NEXTHDR_AUTH || nexthdr == NEXTHDR_DEST;
}

/* Follows an IPv6 packet's extension headers from the fixed header to the
 * transport header: 0 with loc->offset and loc->protocol set, -1 when the
 * chain is longer than IPV6_EXTENSIONS_MAX or L4_OFFSET_MAX, cut short, or
 * this is a fragment after the first (no transport header). ESP (50) ends
 * the walk as a transport protocol of its own: nothing behind it is
 * readable. */
static __always_inline int follow_ipv6_extensions(struct __sk_buff *skb, struct l4_location *loc, __u8 nexthdr)
{
	__u32 offset = 40; /* sizeof(struct ipv6hdr) */
	__u8 head[4];      /* next header, length, and a fragment header's offset field */

	for (int i = 0; i < IPV6_EXTENSIONS_MAX; i++) {
		if (!ipv6_extension(nexthdr))
			break;
		if (bpf_skb_load_bytes(skb, offset, head, sizeof(head)))
			return -1;
		if (nexthdr == NEXTHDR_FRAGMENT) {
			if (((head[2] << 8) | head[3]) & 0xFFF8)
				return -1;
			offset += 8;
		} else if (nexthdr == NEXTHDR_AUTH) {
			offset += (head[1] + 2) * 4;
		} else {
			offset += (head[1] + 1) * 8;
		}
		nexthdr = head[0];
		if (offset > L4_OFFSET_MAX)
			return -1;
	}
	if (ipv6_extension(nexthdr))
		return -1;
	loc->offset = offset;
	loc->protocol = nexthdr;
	return 0;
}

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
		loc->family = AF_INET6;
		__builtin_memcpy(loc->daddr, &ip6->daddr, 16);
		loc->offset = sizeof(*ip6);
		loc->protocol = ip6->nexthdr;
		/* Most packets have none: no helper call for them. */
		return ipv6_extension(ip6->nexthdr) ? follow_ipv6_extensions(skb, loc, ip6->nexthdr) : 0;
	}
	return -1;
}

/* A TCP segment's payload, read from headers in place. */
struct tcp_segment {
	__u32 payload_offset;
	__u32 payload_len; /* 0 for a bare SYN, ACK or FIN */
	__u32 seq;
	__u16 dport; /* host order */
	__u8 syn;    /* a SYN: its data (TCP Fast Open) starts at seq + 1 */
	__u8 urg;    /* urgent data (MSG_OOB): the receiver may take a byte out of the stream */
};

/* 0 when the packet is a TCP segment, with or without payload. */
static __always_inline int read_tcp_segment(struct __sk_buff *skb, struct l4_location *loc, struct tcp_segment *seg)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct tcphdr *th;

	if (loc->offset > L4_OFFSET_MAX)
		return -1;
	th = data + loc->offset;
	if ((void *)(th + 1) > end)
		return -1;
	seg->payload_offset = loc->offset + th->doff * 4;
	seg->payload_len = skb->len > seg->payload_offset ? skb->len - seg->payload_offset : 0;
	seg->seq = bpf_ntohl(th->seq);
	seg->dport = bpf_ntohs(th->dest);
	seg->syn = th->syn;
	seg->urg = th->urg;
	return 0;
}

/* A UDP datagram's payload, read from its header in place. */
struct udp_datagram {
	__u32 payload_offset;
	__u32 payload_len;
	__u16 dport; /* host order */
};

/* 0 when the packet is a UDP datagram carrying payload. */
static __always_inline int read_udp_datagram(struct __sk_buff *skb, struct l4_location *loc, struct udp_datagram *dgram)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct udphdr *uh;

	if (loc->offset > L4_OFFSET_MAX)
		return -1;
	uh = data + loc->offset;
	if ((void *)(uh + 1) > end)
		return -1;
	dgram->payload_offset = loc->offset + sizeof(*uh);
	if (skb->len <= dgram->payload_offset)
		return -1;
	dgram->payload_len = skb->len - dgram->payload_offset;
	dgram->dport = bpf_ntohs(uh->dest);
	return 0;
}

#endif /* GUARD_PACKET_H */
