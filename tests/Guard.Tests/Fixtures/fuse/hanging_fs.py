# A FUSE file system of one file, argv[3] (a copy of argv[2]), mounted at argv[1]
# through /dev/fuse with no library. It serves until a line "hang" on stdin, then
# never answers again, as a daemon an attacker controls may; "count" prints how
# many requests it has left unanswered that a thread waits on, then the opcodes of
# all it left unanswered. RELEASE and RELEASEDIR are not waited on: a non-fuseblk
# mount sends them in the background when the last reference to a file goes
# (fuse_release_common), which for an exec'd file may be after its process was
# reaped. It ends when stdin closes.
import ctypes, errno, os, select, struct, sys

mnt, source, name = sys.argv[1], sys.argv[2], sys.argv[3].encode()
data = open(source, 'rb').read()
fd = os.open('/dev/fuse', os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
options = f'fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other'.encode()
if libc.mount(b'guard-test', mnt.encode(), b'fuse.guard-test', 0, options) != 0:
    sys.exit('mount: ' + os.strerror(ctypes.get_errno()))
print('mounted', flush=True)
ROOT, FILE = 1, 2
hang = False
unanswered = []
BACKGROUND = (18, 29)  # RELEASE, RELEASEDIR

def attr(node):
    if node == ROOT:
        return struct.pack('<QQQQQQIIIIIIIIII', ROOT, 0, 0, 0, 0, 0, 0, 0, 0, 0o40755, 2, 0, 0, 0, 4096, 0)
    return struct.pack('<QQQQQQIIIIIIIIII', FILE, len(data), (len(data) + 511) // 512, 0, 0, 0, 0, 0, 0, 0o100755, 1, 0, 0, 0, 4096, 0)

def reply(unique, payload=b'', error=0):
    os.write(fd, struct.pack('<IiQ', 16 + len(payload), -error, unique) + payload)

while True:
    ready, _, _ = select.select([fd, sys.stdin], [], [])
    if sys.stdin in ready:
        line = sys.stdin.readline()
        if not line:
            break
        if line.strip() == 'hang':
            hang = True
            print('hanging', flush=True)
        elif line.strip() == 'count':
            waited = sum(1 for op in unanswered if op not in BACKGROUND)
            print(waited, *unanswered, flush=True)
        continue
    try:
        request = os.read(fd, (1 << 20) + 4096)
    except OSError as e:
        if e.errno == errno.ENODEV:
            break
        continue
    length, opcode, unique, node = struct.unpack_from('<IIQQ', request)
    body = request[40:length]
    if opcode in (2, 42):  # FORGET, BATCH_FORGET: no reply
        continue
    if opcode == 26:  # INIT
        major, minor, readahead, flags = struct.unpack_from('<IIII', body)
        reply(unique, struct.pack('<IIIIHHIIHHII', 7, 31, readahead, 0, 16, 12, 65536, 1, 0, 0, 0, 0) + bytes(24))
    elif hang:
        unanswered.append(opcode)  # a daemon that never answers again
    elif opcode == 1 and node == ROOT and body.split(b'\0')[0] == name:  # LOOKUP
        reply(unique, struct.pack('<QQQQII', FILE, 0, 0, 0, 0, 0) + attr(FILE))
    elif opcode == 1:
        reply(unique, error=errno.ENOENT)
    elif opcode == 3:  # GETATTR: never cached, asked each time
        reply(unique, struct.pack('<QII', 0, 0, 0) + attr(node))
    elif opcode in (14, 27):  # OPEN, OPENDIR
        reply(unique, struct.pack('<QIi', 0, 0, 0))
    elif opcode == 15:  # READ
        fh, offset, size = struct.unpack_from('<QQI', body)
        reply(unique, data[offset:offset + size])
    elif opcode in (18, 25, 29):  # RELEASE, FLUSH, RELEASEDIR
        reply(unique)
    else:
        reply(unique, error=errno.ENOSYS)
