/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * stream.h: the contract that guard.bpf.c (guard_egress) and enforce.bpf.c
 * (guard_enf_egress) decide alike about a TCP stream: which sockets have a
 * stream (the claim, and a new stream at each new connect), which egress
 * segments carry its next bytes (sequence numbers from the SYN on, TCP Fast
 * Open data included), the Stratum scan across them, when a segment is held
 * (dropped for TCP to send again) until the scan has decided, and the
 * downgrade of a drop to a report for a destination the policy allows. Both
 * call stream_claim and stream_restart at connect and stream_advance at
 * egress; what they do with the bytes afterwards (records, or nothing) is
 * their own. The policy maps it reads are verdicts.h's.
 *
 * sensor/Detection/StratumScanner.cs reads a stream byte for byte as
 * scan_step does here; StratumMirrorTests holds the two to the same verdicts.
 */
#ifndef GUARD_STREAM_H
#define GUARD_STREAM_H

#include "packet.h"
#include "verdicts.h"

/* ---- the Stratum scan, one byte at a time --------------------------------- */

/*
 * Where the scan is. A stream (or a proxy's tunnel, once its handshake is
 * done) starts at SCAN_HEAD: its first byte says whether a SOCKS4/4a or
 * SOCKS5 handshake or HTTP/1.x requests come first. HTTP requests are
 * followed head after head (empty lines before each skipped, as RFC 9112
 * 2.2 lets servers do; a Content-Length body skipped) until a CONNECT's
 * head ends, which opens a tunnel; an absolute-form target's authority (a
 * forward proxy's request) is kept as evidence. Then blank (JSON whitespace, UTF-8 byte order marks) and
 * JSON-RPC messages, each an object or a batch (an array), one after the
 * other. Anything else, and the stream is no Stratum: SCAN_DONE.
 */
enum scan_phase {
	SCAN_HEAD = 0,
	SCAN_LEAD,    /* blank before the first message */
	SCAN_BETWEEN, /* blank after a message */
	SCAN_JSON,    /* inside a message */
	SCAN_SOCKS4_CMD,
	SCAN_SOCKS4_PORT,
	SCAN_SOCKS4_IP,
	SCAN_SOCKS4_USER,
	SCAN_SOCKS4_HOST,
	SCAN_SOCKS5_NMETHODS,
	SCAN_SOCKS5_METHODS,
	SCAN_SOCKS5_NEXT, /* username/password authentication (RFC 1929), or the request */
	SCAN_SOCKS5_ULEN,
	SCAN_SOCKS5_UNAME,
	SCAN_SOCKS5_PLEN,
	SCAN_SOCKS5_PASSWD,
	SCAN_SOCKS5_VER,
	SCAN_SOCKS5_CMD,
	SCAN_SOCKS5_RSV,
	SCAN_SOCKS5_ATYP,
	SCAN_SOCKS5_DLEN,
	SCAN_SOCKS5_ADDR,
	SCAN_SOCKS5_PORT,
	SCAN_HTTP_METHOD,    /* a request line's method; count: bytes of "CONNECT" matched */
	SCAN_HTTP_TARGET,    /* its target; count: bytes of "http://" matched */
	SCAN_HTTP_AUTHORITY, /* an absolute-form target's host:port */
	SCAN_HTTP_HEADERS,   /* the rest of a head other than CONNECT's; count: line ends in a row */
	SCAN_HTTP_BODY,      /* its body (Content-Length): body bytes still to skip */
	SCAN_HTTP_NEXT,      /* after such a head or body: empty lines, or the next request line */
	SCAN_CONNECT_AUTHORITY,
	SCAN_CONNECT_HEADERS,
	SCAN_DONE,
};

/* scan flags, inside a message */
#define SCAN_IN_STRING 1
#define SCAN_TARGET 2     /* the container at the method's depth is an object */
#define SCAN_EXPECT_KEY 4 /* at the method's depth, the next string is a key */
#define SCAN_KEY_METHOD 8 /* the key just read is "method" */
#define SCAN_METHOD_NEXT 16 /* after "method": the next string is the method */

/* What the string being read is. */
#define ROLE_NONE 0
#define ROLE_KEY 1
#define ROLE_METHOD 2

#define METHOD_KEY_LEN 6  /* method */
#define KEY_MISMATCH 7

#define CONNECT_LEN 7     /* CONNECT */
#define HTTP_OTHER_METHOD 8 /* a method token that is not CONNECT */
#define HTTP_SCHEME_LEN 7 /* http:// */
#define CONTENT_LENGTH_LEN 15 /* content-length: */
#define HEADER_OTHER 16   /* the header line is no Content-Length */

struct stream_scan {
	__u32 depth;   /* nesting inside the message */
	__u32 unicode; /* a \u escape's value so far */
	__u16 count;   /* the phase's: bytes still to skip, or matched */
	__u8 phase;    /* enum scan_phase */
	__u8 top;      /* the message's outer bracket: '{', or '[' for a batch */
	__u8 flags;    /* SCAN_* above */
	__u8 escape;   /* in a string: 0; 1 after '\'; 2 + hex digits read of a \u escape */
	__u8 role;     /* ROLE_* */
	__u8 key_len;  /* bytes of the key that match "method"; KEY_MISMATCH once one does not */
	__u8 method_len; /* GUARD_METHOD_LEN once too long to be one the policy names */
	__u8 bom;      /* bytes of a UTF-8 byte order mark read */
	__u8 proxy;    /* enum guard_proxy: the latest handshake */
	__u8 proxy_address;  /* enum guard_proxy_address */
	__u8 proxy_host_len;
	__u8 proxies;  /* handshakes completed and absolute-form requests read */
	__u16 proxy_port;
	char method[GUARD_METHOD_LEN];
	__u8 proxy_host[GUARD_PROXY_HOST_LEN];
	__u32 body;    /* an HTTP request's Content-Length: bytes still to skip */
	__u8 header;   /* bytes of the header line that match "content-length:"; HEADER_OTHER once one does not */
};

static __always_inline bool json_space(__u8 c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The bytes of "method". (A static array would land in .rodata beside guard_config.) */
static __always_inline __u8 method_key(__u8 i)
{
	switch (i) {
	case 0: return 'm';
	case 1: return 'e';
	case 2: return 't';
	case 3: return 'h';
	case 4: return 'o';
	default: return 'd';
	}
}

/* The bytes of "CONNECT". */
static __always_inline __u8 connect_verb(__u16 i)
{
	switch (i) {
	case 0: return 'C';
	case 1: return 'O';
	case 2:
	case 3: return 'N';
	case 4: return 'E';
	case 5: return 'C';
	default: return 'T';
	}
}

/* The bytes of "http://", the scheme in lower case (it is matched without regard to case). */
static __always_inline __u8 http_scheme(__u16 i)
{
	switch (i) {
	case 0: return 'h';
	case 1:
	case 2: return 't';
	case 3: return 'p';
	case 4: return ':';
	default: return '/';
	}
}

/* The bytes of "content-length:", lower case, packed little-endian: one shift, not a chain of compares. */
static __always_inline __u8 content_length_name(__u8 i)
{
	return i < 8 ? (__u8)(0x2d746e65746e6f63ULL >> (i * 8)) : (__u8)(0x3a6874676e656cULL >> ((i - 8) * 8));
}

static __always_inline __u8 ascii_lower(__u8 c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* A byte of a method name as the scan compares it (folded to lower case):
 * the longest run of these at a method value's start is its method. */
static __always_inline bool method_char(__u8 c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
}

/* A hex digit's value; 0x100 for any other byte, which leaves the escape
 * above 0x7F for good, where it names no method. */
static __always_inline __u32 hex_value(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 0x100;
}

static __always_inline void proxy_host_byte(struct stream_scan *s, __u8 c)
{
	if (s->proxy_host_len < GUARD_PROXY_HOST_LEN) {
		s->proxy_host[s->proxy_host_len & (GUARD_PROXY_HOST_LEN - 1)] = c;
		s->proxy_host_len++;
	}
}

static __always_inline void proxy_begin(struct stream_scan *s, __u8 kind, __u8 phase)
{
	s->proxy = kind;
	s->proxy_address = GUARD_PROXY_ADDRESS_NONE;
	s->proxy_host_len = 0;
	s->proxy_port = 0;
	s->phase = phase;
}

/* A handshake is through: the tunnel is a stream of its own, from its first byte. */
static __always_inline void proxy_done(struct stream_scan *s)
{
	s->proxies++;
	s->phase = SCAN_HEAD;
	s->count = 0;
}

/* The method's run of method characters ended (at its first other byte, or
 * the closing quote): it may be one the policy names. The rest of the
 * string is read as any string's. */
static __always_inline __u32 method_end(struct stream_scan *s)
{
	s->role = ROLE_NONE;
	if (s->method_len > 0 && s->method_len < GUARD_METHOD_LEN) {
		__u32 *verdict = bpf_map_lookup_elem(&stratum_methods, s->method);

		if (verdict)
			return *verdict;
	}
	return 0;
}

/* A byte of a string being decoded (escapes undone), folded to lower case:
 * a key is "method" in any case (Go's encoding/json and Json.NET match keys
 * so); a method is compared up to its first byte that is no method
 * character (ckpool matches a prefix without regard to case, C servers stop
 * at a NUL). */
static __always_inline __u32 string_byte(struct stream_scan *s, __u8 c)
{
	c = ascii_lower(c);
	if (s->role == ROLE_KEY) {
		if (s->key_len < METHOD_KEY_LEN && c == method_key(s->key_len))
			s->key_len++;
		else
			s->key_len = KEY_MISMATCH;
	} else if (s->role == ROLE_METHOD) {
		if (!method_char(c))
			return method_end(s);
		if (s->method_len < GUARD_METHOD_LEN - 1) {
			s->method[s->method_len & (GUARD_METHOD_LEN - 1)] = c;
			s->method_len++;
		} else {
			s->method_len = GUARD_METHOD_LEN;
		}
	}
	return 0;
}

/* The closing quote of a string: a key may be "method"; a method may be one the policy names. */
static __always_inline __u32 string_end(struct stream_scan *s)
{
	__u8 role = s->role;

	s->flags &= ~SCAN_IN_STRING;
	s->role = ROLE_NONE;
	if (role == ROLE_KEY && s->key_len == METHOD_KEY_LEN)
		s->flags |= SCAN_KEY_METHOD;
	if (role == ROLE_METHOD)
		return method_end(s);
	return 0;
}

/* The method's object: the message itself, or each object of a batch. */
static __always_inline bool at_method_depth(const struct stream_scan *s)
{
	return s->depth == (s->top == '[' ? 2 : 1) && (s->flags & SCAN_TARGET);
}

static __always_inline __u32 json_byte(struct stream_scan *s, __u8 c)
{
	if (s->flags & SCAN_IN_STRING) {
		if (s->escape == 0) {
			if (c == '\\') {
				s->escape = 1;
				return 0;
			}
			if (c == '"')
				return string_end(s);
			return string_byte(s, c);
		}
		if (s->escape == 1) {
			if (c == 'u') {
				s->escape = 2;
				s->unicode = 0;
				return 0;
			}
			s->escape = 0;
			switch (c) {
			case 'b': return string_byte(s, 8);
			case 'f': return string_byte(s, 12);
			case 'n': return string_byte(s, 10);
			case 'r': return string_byte(s, 13);
			case 't': return string_byte(s, 9);
			default: return string_byte(s, c); /* '"', '\', '/' (and what no parser takes) */
			}
		}
		s->unicode = (s->unicode << 4) | hex_value(c);
		if (++s->escape < 6)
			return 0;
		s->escape = 0;
		return string_byte(s, s->unicode < 0x80 ? s->unicode : 0xFF);
	}
	switch (c) {
	case '"':
		s->flags |= SCAN_IN_STRING;
		s->escape = 0;
		s->role = ROLE_NONE;
		if (at_method_depth(s)) {
			if (s->flags & SCAN_EXPECT_KEY) {
				s->role = ROLE_KEY;
				s->key_len = 0;
			} else if (s->flags & SCAN_METHOD_NEXT) {
				s->role = ROLE_METHOD;
				s->method_len = 0;
				__builtin_memset(s->method, 0, sizeof(s->method));
			}
			s->flags &= ~(SCAN_EXPECT_KEY | SCAN_METHOD_NEXT | SCAN_KEY_METHOD);
		}
		return 0;
	case '{':
	case '[':
		if (at_method_depth(s))
			s->flags &= ~(SCAN_EXPECT_KEY | SCAN_METHOD_NEXT);
		s->depth++;
		if (s->depth == (s->top == '[' ? 2 : 1))
			s->flags = c == '{' ? SCAN_TARGET | SCAN_EXPECT_KEY : 0;
		return 0;
	case '}':
	case ']':
		if (--s->depth == 0) {
			s->phase = SCAN_BETWEEN;
			s->flags = 0;
		}
		return 0;
	case ',':
		if (at_method_depth(s)) {
			s->flags |= SCAN_EXPECT_KEY;
			s->flags &= ~(SCAN_METHOD_NEXT | SCAN_KEY_METHOD);
		}
		return 0;
	case ':':
		if (at_method_depth(s)) {
			s->flags &= ~SCAN_EXPECT_KEY;
			if (s->flags & SCAN_KEY_METHOD)
				s->flags |= SCAN_METHOD_NEXT;
			s->flags &= ~SCAN_KEY_METHOD;
		}
		return 0;
	}
	return 0;
}

/* Blank before or between messages, or a message's first byte; anything else ends the scan. */
static __always_inline void blank_byte(struct stream_scan *s, __u8 c)
{
	if (s->bom) {
		if (c != (s->bom == 1 ? 0xBB : 0xBF))
			s->phase = SCAN_DONE;
		s->bom = s->bom == 1 ? 2 : 0;
		return;
	}
	if (c == 0xEF) {
		s->bom = 1;
		return;
	}
	if (json_space(c))
		return;
	if (c == '{' || c == '[') {
		s->phase = SCAN_JSON;
		s->top = c;
		s->depth = 1;
		s->flags = c == '{' ? SCAN_TARGET | SCAN_EXPECT_KEY : 0;
		return;
	}
	s->phase = SCAN_DONE;
}

/* The handshakes, byte by byte: only the destination asked for is kept. */
static __always_inline void proxy_byte(struct stream_scan *s, __u8 c)
{
	switch (s->phase) {
	case SCAN_SOCKS4_CMD:
		s->phase = SCAN_SOCKS4_PORT;
		s->count = 2;
		return;
	case SCAN_SOCKS4_PORT:
	case SCAN_SOCKS5_PORT:
		s->proxy_port = (s->proxy_port << 8) | c;
		if (--s->count > 0)
			return;
		if (s->phase == SCAN_SOCKS5_PORT) {
			proxy_done(s);
			return;
		}
		s->phase = SCAN_SOCKS4_IP;
		s->count = 4;
		s->proxy_address = GUARD_PROXY_ADDRESS_IPV4;
		return;
	case SCAN_SOCKS4_IP:
		proxy_host_byte(s, c);
		if (--s->count == 0)
			s->phase = SCAN_SOCKS4_USER;
		return;
	case SCAN_SOCKS4_USER:
		if (c != 0)
			return;
		/* 0.0.0.x, x not 0: SOCKS4a, a name follows the user id */
		if (s->proxy_host[0] == 0 && s->proxy_host[1] == 0 && s->proxy_host[2] == 0 && s->proxy_host[3] != 0) {
			s->proxy = GUARD_PROXY_SOCKS4A;
			s->proxy_address = GUARD_PROXY_ADDRESS_NAME;
			s->proxy_host_len = 0;
			s->phase = SCAN_SOCKS4_HOST;
			return;
		}
		proxy_done(s);
		return;
	case SCAN_SOCKS4_HOST:
		if (c == 0)
			proxy_done(s);
		else
			proxy_host_byte(s, c);
		return;
	case SCAN_SOCKS5_NMETHODS:
		s->count = c;
		s->phase = c ? SCAN_SOCKS5_METHODS : SCAN_SOCKS5_NEXT;
		return;
	case SCAN_SOCKS5_METHODS:
	case SCAN_SOCKS5_UNAME:
	case SCAN_SOCKS5_PASSWD:
		if (--s->count > 0)
			return;
		s->phase = s->phase == SCAN_SOCKS5_METHODS ? SCAN_SOCKS5_NEXT
			 : s->phase == SCAN_SOCKS5_UNAME  ? SCAN_SOCKS5_PLEN
							  : SCAN_SOCKS5_VER;
		return;
	case SCAN_SOCKS5_NEXT:
		s->phase = c == 1 ? SCAN_SOCKS5_ULEN : c == 5 ? SCAN_SOCKS5_CMD : SCAN_DONE;
		return;
	case SCAN_SOCKS5_ULEN:
		s->count = c;
		s->phase = c ? SCAN_SOCKS5_UNAME : SCAN_SOCKS5_PLEN;
		return;
	case SCAN_SOCKS5_PLEN:
		s->count = c;
		s->phase = c ? SCAN_SOCKS5_PASSWD : SCAN_SOCKS5_VER;
		return;
	case SCAN_SOCKS5_VER:
		s->phase = c == 5 ? SCAN_SOCKS5_CMD : SCAN_DONE;
		return;
	case SCAN_SOCKS5_CMD:
		s->phase = SCAN_SOCKS5_RSV;
		return;
	case SCAN_SOCKS5_RSV:
		s->phase = SCAN_SOCKS5_ATYP;
		return;
	case SCAN_SOCKS5_ATYP:
		s->proxy_host_len = 0;
		if (c == 1 || c == 4) {
			s->proxy_address = c == 1 ? GUARD_PROXY_ADDRESS_IPV4 : GUARD_PROXY_ADDRESS_IPV6;
			s->count = c == 1 ? 4 : 16;
			s->phase = SCAN_SOCKS5_ADDR;
		} else if (c == 3) {
			s->proxy_address = GUARD_PROXY_ADDRESS_NAME;
			s->phase = SCAN_SOCKS5_DLEN;
		} else {
			s->phase = SCAN_DONE;
		}
		return;
	case SCAN_SOCKS5_DLEN:
		s->count = c ? c : 2;
		s->phase = c ? SCAN_SOCKS5_ADDR : SCAN_SOCKS5_PORT;
		return;
	case SCAN_SOCKS5_ADDR:
		proxy_host_byte(s, c);
		if (--s->count == 0) {
			s->phase = SCAN_SOCKS5_PORT;
			s->count = 2;
		}
		return;
	case SCAN_HTTP_METHOD:
		if (c == ' ') {
			if (s->count == CONNECT_LEN) {
				proxy_begin(s, GUARD_PROXY_HTTP_CONNECT, SCAN_CONNECT_AUTHORITY);
				s->proxy_address = GUARD_PROXY_ADDRESS_AUTHORITY;
			} else {
				s->phase = SCAN_HTTP_TARGET;
				s->count = 0;
			}
		} else if ((c >= 'A' && c <= 'Z') || c == '-' || c == '_') {
			s->count = s->count < CONNECT_LEN && c == connect_verb(s->count) ? s->count + 1 : HTTP_OTHER_METHOD;
		} else {
			s->phase = SCAN_DONE;
		}
		return;
	case SCAN_HTTP_TARGET:
		if (s->count < HTTP_SCHEME_LEN && ascii_lower(c) == http_scheme(s->count)) {
			if (++s->count == HTTP_SCHEME_LEN) {
				proxy_begin(s, GUARD_PROXY_HTTP_FORWARD, SCAN_HTTP_AUTHORITY);
				s->proxy_address = GUARD_PROXY_ADDRESS_AUTHORITY;
			}
			return;
		}
		s->phase = SCAN_HTTP_HEADERS;
		s->count = c == '\n';
		s->header = c == '\n' ? 0 : HEADER_OTHER;
		return;
	case SCAN_HTTP_AUTHORITY:
		if (c == '/' || c == '?' || c == '#' || c == ' ' || c == '\r' || c == '\n') {
			s->proxies++; /* the destination asked for: evidence, recorded as a handshake's */
			s->phase = SCAN_HTTP_HEADERS;
			s->count = c == '\n';
			s->header = c == '\n' ? 0 : HEADER_OTHER;
		} else {
			proxy_host_byte(s, c);
		}
		return;
	case SCAN_CONNECT_AUTHORITY:
		if (c == ' ' || c == '\r' || c == '\n') {
			s->phase = SCAN_CONNECT_HEADERS;
			s->count = c == '\n';
		} else {
			proxy_host_byte(s, c);
		}
		return;
	case SCAN_CONNECT_HEADERS:
		/* The request ends at an empty line: "\r\n\r\n", or "\n\n"; the tunnel opens. */
		if (c == '\n') {
			if (++s->count == 2)
				proxy_done(s);
		} else if (c != '\r') {
			s->count = 0;
		}
		return;
	case SCAN_HTTP_HEADERS:
		/* Another request's head ends so too; its Content-Length says
		 * how much body to skip to the next request (a chunked body is
		 * not followed: read as a request line, it ends the scan). */
		if (c == '\n') {
			s->header = 0;
			if (++s->count == 2)
				s->phase = s->body ? SCAN_HTTP_BODY : SCAN_HTTP_NEXT;
			return;
		}
		if (c == '\r')
			return;
		s->count = 0;
		if (s->header < CONTENT_LENGTH_LEN) {
			s->header = ascii_lower(c) == content_length_name(s->header) ? s->header + 1 : HEADER_OTHER;
		} else if (s->header == CONTENT_LENGTH_LEN) {
			if (c >= '0' && c <= '9') {
				if (s->body < GUARD_SCAN_LIMIT) /* past the budget, the exact length matters not */
					s->body = s->body * 10 + (c - '0');
			} else if (c != ' ' && c != '\t') {
				s->header = HEADER_OTHER;
			}
		}
		return;
	case SCAN_HTTP_BODY:
		if (--s->body == 0)
			s->phase = SCAN_HTTP_NEXT;
		return;
	}
}

/* Reads one byte of the stream; returns a verdict (GUARD_STRATUM_ALERT or
 * _DROP) when it closed a method the policy names, else 0. */
static __always_inline __u32 scan_step(struct stream_scan *s, __u8 c)
{
	if (s->phase == SCAN_JSON)
		return json_byte(s, c);
	if (s->phase == SCAN_HEAD || s->phase == SCAN_HTTP_NEXT) {
		if (c == '\r' || c == '\n')
			return 0; /* empty lines before a request line (or blank before a message) */
		if (c >= 'A' && c <= 'Z') {
			s->phase = SCAN_HTTP_METHOD;
			s->count = c == 'C' ? 1 : HTTP_OTHER_METHOD;
			s->body = 0;
		} else if (s->phase == SCAN_HTTP_NEXT) {
			s->phase = SCAN_DONE;
		} else if (c == 4) {
			proxy_begin(s, GUARD_PROXY_SOCKS4, SCAN_SOCKS4_CMD);
		} else if (c == 5) {
			proxy_begin(s, GUARD_PROXY_SOCKS5, SCAN_SOCKS5_NMETHODS);
		} else {
			s->phase = SCAN_LEAD;
			blank_byte(s, c);
		}
		return 0;
	}
	if (s->phase == SCAN_LEAD || s->phase == SCAN_BETWEEN) {
		blank_byte(s, c);
		return 0;
	}
	if (s->phase < SCAN_DONE)
		proxy_byte(s, c);
	return 0;
}

/* Where the budget may end and the stream be let be: between messages, or
 * among HTTP requests other than a CONNECT (keep-alive HTTP runs long; what
 * it asks for past the budget is not read). Anywhere else (inside a
 * message, a handshake, a CONNECT request) the stream is held. */
static __always_inline bool scan_may_stop(const struct stream_scan *s)
{
	switch (s->phase) {
	case SCAN_BETWEEN:
	case SCAN_HTTP_TARGET:
	case SCAN_HTTP_AUTHORITY:
	case SCAN_HTTP_HEADERS:
	case SCAN_HTTP_BODY:
	case SCAN_HTTP_NEXT:
		return true;
	case SCAN_HTTP_METHOD:
		return s->count == HTTP_OTHER_METHOD;
	default:
		return false;
	}
}

/* Inside a method's value: its bytes are held until its method characters end and decide. */
static __always_inline bool scan_in_method(const struct stream_scan *s)
{
	return s->phase == SCAN_JSON && (s->flags & SCAN_IN_STRING) && s->role == ROLE_METHOD;
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

/* A TCP stream as read so far, in socket storage (guard.bpf.c keeps it
 * inside its struct sock_owner). Zeroed, as stream_claim creates it and
 * stream_restart makes it again, it is a stream whose first byte is still
 * to come. */
struct stream_state {
	__u32 next_seq; /* of the byte after the last one read */
	__u32 offset;   /* bytes of the stream read */
	__u8 anchored;  /* next_seq is known: the SYN, or the first segment, was seen */
	__u8 verdict;   /* 0, GUARD_STRATUM_ALERT, _DROP or _HOLD */
	__u8 segments;  /* that carried new bytes, up to 255 */
	__u8 reported;  /* proxy handshakes already reported (guard.bpf.c) */
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

/* At connect: a socket that is closed (new, or disconnected with
 * connect(AF_UNSPEC)) starts a new stream, read from its first byte. A
 * connect on a socket that is connected or connecting (EISCONN, EALREADY)
 * changes nothing. */
static __always_inline void stream_restart(struct stream_state *st, struct bpf_sock *sk)
{
	if (st && sk && sk->state == BPF_TCP_CLOSE)
		__builtin_memset(st, 0, sizeof(*st));
}

/* Nothing more of the stream is read: a verdict, or the scan is over and
 * the first head_len bytes (what the caller reports) are read. */
static __always_inline bool stream_settled(const struct stream_state *st, __u32 head_len)
{
	return st->verdict || (st->scan.phase == SCAN_DONE && st->offset >= head_len);
}

/* What cgroup_skb/egress returns for a packet of a settled stream: after a
 * Stratum line the policy stops, or a hold, nothing more of the socket leaves. */
static __always_inline int stream_verdict_return(const struct stream_state *st)
{
	return st->verdict == GUARD_STRATUM_DROP || st->verdict == GUARD_STRATUM_HOLD ? 0 : 1;
}

/* Where stream_advance found a segment's new bytes, and what they decided. */
struct stream_step {
	__u32 offset;     /* stream offset of the first new byte */
	__u32 len;        /* new bytes; 0: none */
	__u32 at;         /* skb offset of the first new byte */
	__u32 decided_at; /* stream offset of the byte that decided, when decided */
	__u16 dport;      /* host order */
	__u8 decided;     /* st->verdict was reached at this segment */
};

#define SCAN_CHUNK 256 /* bytes copied out of the skb at a time: the scratch buffer */

struct scan_run {
	struct __sk_buff *skb;
	struct stream_scan *scan;
	__u8 *chunk;
	__u32 at; /* skb offset of byte 0 */
	__u32 n;  /* bytes to read */
	__u32 verdict;
	__u32 decided; /* bytes read up to the one that decided */
	__u32 failed;
};

static long scan_run_byte(__u32 i, void *ctx)
{
	struct scan_run *r = ctx;
	__u32 left;

	if (i >= r->n)
		return 1;
	if ((i & (SCAN_CHUNK - 1)) == 0) {
		left = r->n - i;
		if (left > SCAN_CHUNK)
			left = SCAN_CHUNK;
		if (left == 0 || bpf_skb_load_bytes(r->skb, r->at + i, r->chunk, left)) {
			r->failed = 1;
			return 1;
		}
	}
	r->verdict = scan_step(r->scan, r->chunk[i & (SCAN_CHUNK - 1)]);
	if (r->verdict) {
		r->decided = i;
		return 1;
	}
	return r->scan->phase == SCAN_DONE;
}

/*
 * Reads one egress TCP packet of the stream: the SYN anchors the sequence
 * (its data, with TCP Fast Open, is the stream's first bytes), a segment with
 * new bytes moves the stream on and has them scanned (up to
 * GUARD_SCAN_LIMIT bytes of the stream). Says in *step where the new bytes
 * sit (step->len 0: none) and whether this segment decided st->verdict.
 * `scratch`: a one-entry per-CPU array of SCAN_CHUNK bytes. `head_len`: the
 * bytes the caller reports (it is settled only once they are read).
 *
 * Returns what egress returns: 0 drops the packet. Dropped: after a drop or
 * hold verdict, everything; while the scan is open, a segment past a gap
 * (held until the bytes before it are read: TCP sends them again); a segment
 * that leaves the stream inside a method's value, and any resending of it,
 * until the closing quote decides (so none of a method leaves before the
 * verdict); a segment whose TCP header cannot be read. A segment with new
 * bytes and urgent data while they would be judged holds the stream.
 */
static __always_inline int stream_advance(struct __sk_buff *skb, struct l4_location *loc, struct stream_state *st,
					  void *scratch, __u32 head_len, struct stream_step *step)
{
	struct scan_run run = {};
	struct tcp_segment seg;
	__u32 data_seq, n, zero = 0;
	__s32 behind;
	bool scanning;

	step->len = 0;
	step->decided_at = 0;
	step->decided = 0;
	if (stream_settled(st, head_len))
		return stream_verdict_return(st);
	if (read_tcp_segment(skb, loc, &seg))
		return 0;
	step->dport = seg.dport;
	data_seq = seg.seq + seg.syn;
	if (!st->anchored) {
		st->next_seq = data_seq;
		st->anchored = 1;
	}
	if (seg.payload_len == 0)
		return 1;
	behind = (__s32)(st->next_seq - data_seq);
	if (behind < 0)
		return st->scan.phase == SCAN_DONE ? 1 : 0; /* held only while the scan has bytes to judge */
	if ((__u32)behind >= seg.payload_len)
		return scan_in_method(&st->scan) ? 0 : 1;
	n = seg.payload_len - behind;
	step->offset = st->offset;
	step->len = n;
	step->at = seg.payload_offset + behind;

	scanning = st->scan.phase != SCAN_DONE && st->offset < GUARD_SCAN_LIMIT;
	if (seg.urg && (scanning || head_len > GUARD_PAYLOAD_LEN)) {
		/* Urgent data (MSG_OOB): the receiver takes the byte before the
		 * urgent pointer out of the stream, or leaves it inline
		 * (SO_OOBINLINE), as it chooses, so no one reading of these bytes
		 * is the one the peer reads. Held while they are judged: the scan
		 * is open, or a TLS head is read for its SNI (guard.bpf.c reports
		 * GUARD_TLS_HEAD_LEN of one). Other streams' urgent data (an FTP
		 * abort, telnet) passes. */
		st->verdict = GUARD_STRATUM_HOLD;
		step->decided_at = st->offset;
	} else if (scanning) {
		run.skb = skb;
		run.scan = &st->scan;
		run.chunk = bpf_map_lookup_elem(scratch, &zero);
		run.at = step->at;
		run.n = n < GUARD_SCAN_LIMIT - st->offset ? n : GUARD_SCAN_LIMIT - st->offset;
		if (!run.chunk)
			return 0; /* cannot happen: a one-entry array; held rather than let through unread */
		bpf_loop(GUARD_SCAN_LIMIT, scan_run_byte, &run, 0);
		if (run.verdict) {
			st->verdict = run.verdict;
			step->decided_at = st->offset + run.decided;
		} else if (run.failed) {
			st->verdict = GUARD_STRATUM_HOLD;
			step->decided_at = st->offset;
		} else if (st->offset + n >= GUARD_SCAN_LIMIT && st->scan.phase != SCAN_DONE) {
			/* The budget ends here: after whole messages (or among HTTP
			 * requests) the stream is let be; inside one, or a handshake, it is held. */
			if (scan_may_stop(&st->scan)) {
				st->scan.phase = SCAN_DONE;
			} else {
				st->verdict = GUARD_STRATUM_HOLD;
				step->decided_at = GUARD_SCAN_LIMIT;
			}
		}
	}
	if (st->verdict) {
		step->decided = 1;
		if (destination_allowed(loc, seg.dport)) {
			if (st->verdict == GUARD_STRATUM_DROP)
				st->verdict = GUARD_STRATUM_ALERT;
			if (st->verdict == GUARD_STRATUM_HOLD) {
				st->verdict = 0;
				st->scan.phase = SCAN_DONE;
				step->decided = 0;
			}
		}
	}
	/* The stream moves on whatever the caller does with the bytes (a full
	 * ring, say): a later segment is never mistaken for an earlier one. */
	st->offset += n;
	st->next_seq = data_seq + seg.payload_len;
	if (st->segments < 255)
		st->segments++;
	if (st->verdict)
		return stream_verdict_return(st);
	return scan_in_method(&st->scan) ? 0 : 1;
}

#endif /* GUARD_STREAM_H */
