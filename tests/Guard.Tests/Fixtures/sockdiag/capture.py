# Captures real sock_diag replies and socket addresses for SockDiagParsingTests.
# Run as root inside a private network namespace, from this directory:
#   unshare --net sh -c 'ip link set lo up; python3 capture.py > captured.txt'
# Each line is NAME=VALUE: the expected values, then the raw bytes in hex.
import ctypes, os, socket, struct, tempfile

SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, NLM_F_DUMP = 20, 1, 0x300
libc = ctypes.CDLL(None, use_errno=True)

def out(name, value):
    print(f'{name}={value}')

def ask(payload, flags, seq):
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)  # NETLINK_SOCK_DIAG
    nl.sendto(struct.pack('=IHHII', 16 + len(payload), SOCK_DIAG_BY_FAMILY, flags, seq, 0) + payload, (0, 0))
    data = nl.recv(65536)
    nl.close()
    return data

def inet_request(family, states, sport=0, dport=0, src=b'', dst=b''):
    sockid = struct.pack('!HH', sport, dport) + src.ljust(16, b'\0') + dst.ljust(16, b'\0') + struct.pack('=III', 0, 0xFFFFFFFF, 0xFFFFFFFF)
    return struct.pack('=BBBBI', family, socket.IPPROTO_TCP, 0, 0, states) + sockid

def unix_request(states, ino, show):
    return struct.pack('=BBHIII', socket.AF_UNIX, 0, 0, states, ino, show) + struct.pack('=II', 0xFFFFFFFF, 0xFFFFFFFF)

def cookie(s):
    return struct.unpack('=Q', s.getsockopt(socket.SOL_SOCKET, 57, 8))[0]

def raw_name(s, peer):
    buf = ctypes.create_string_buffer(128)
    size = ctypes.c_uint(128)
    fn = libc.getpeername if peer else libc.getsockname
    assert fn(s.fileno(), buf, ctypes.byref(size)) == 0
    return buf.raw[:size.value].hex()

# TCP: a listener on 127.0.0.1:4000 and one connection to it.
listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(('127.0.0.1', 4000)); listener.listen()
client = socket.create_connection(('127.0.0.1', 4000))
accepted, _ = listener.accept()
cport = client.getsockname()[1]
out('tcp_client_port', cport)
out('tcp_client_inode', os.fstat(client.fileno()).st_ino)
out('tcp_client_cookie', cookie(client))
out('tcp_listener_inode', os.fstat(listener.fileno()).st_ino)
lo = socket.inet_aton('127.0.0.1')
out('inet_exact_reply', ask(inet_request(socket.AF_INET, 0xFFFFFFFF, cport, 4000, lo, lo), NLM_F_REQUEST, 7).hex())
out('inet_listeners_reply', ask(inet_request(socket.AF_INET, 1 << 10), NLM_F_REQUEST | NLM_F_DUMP, 8).hex())
out('tcp_accepted_sockname', raw_name(accepted, False))
out('tcp_accepted_peername', raw_name(accepted, True))
six = socket.socket(socket.AF_INET6); six.bind(('::1', 4001)); six.listen()
out('tcp6_listener_sockname', raw_name(six, False))

# unix: a listener at a path and one connection to it; an abstract listener too.
path = os.path.join(tempfile.mkdtemp(), 'relay.sock')
ul = socket.socket(socket.AF_UNIX); ul.bind(path); ul.listen()
uc = socket.socket(socket.AF_UNIX); uc.connect(path)
ua, _ = ul.accept()
out('unix_path', path)
out('unix_accepted_inode', os.fstat(ua.fileno()).st_ino)
out('unix_client_inode', os.fstat(uc.fileno()).st_ino)
out('unix_accepted_cookie', cookie(ua))
out('unix_exact_reply', ask(unix_request(0xFFFFFFFF, os.fstat(ua.fileno()).st_ino, 1 | 4), NLM_F_REQUEST, 9).hex())
out('unix_missing_reply', ask(unix_request(0xFFFFFFFF, 1, 1 | 4), NLM_F_REQUEST, 10).hex())
out('unix_accepted_sockname', raw_name(ua, False))
out('unix_accepted_peername', raw_name(ua, True))
abstract = socket.socket(socket.AF_UNIX); abstract.bind(b'\0guard-relay'); abstract.listen()
out('unix_abstract_sockname', raw_name(abstract, False))
out('unix_listeners_reply', ask(unix_request(1 << 10, 0, 1), NLM_F_REQUEST | NLM_F_DUMP, 11).hex())
out('socket_link', os.readlink(f'/proc/self/fd/{ua.fileno()}'))
out('netns_link', os.readlink('/proc/self/ns/net'))
