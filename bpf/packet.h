/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * packet.h: the contract for reading an egress packet where it lies: where
 * its transport header sits, and where a TCP segment's or a UDP datagram's
 * payload starts. Parsing only: no maps, no verdicts. Headers are read in
 * place (direct packet access, no helper call per packet); they sit in the
 * linear part at egress.
 */
#ifndef GUARD_PACKET_H
#define GUARD_PACKET_H

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* An IPv4 header with every option: bounds the transport header's offset
 * for the verifier. */
#define L4_OFFSET_MAX 60

struct l4_location {
	__u32 offset; /* of the transport header */
	__u16 family;
	__u8 protocol;
	__u8 daddr[16];
};

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

/* A TCP segment's payload, read from headers in place. */
struct tcp_segment {
	__u32 payload_offset;
	__u32 payload_len; /* 0 for a bare SYN, ACK or FIN */
	__u32 seq;
	__u16 dport; /* host order */
	__u8 syn;    /* a SYN: its data (TCP Fast Open) starts at seq + 1 */
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
