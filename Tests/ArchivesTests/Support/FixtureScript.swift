/// The Python program that crafts hostile archives; python3's zipfile and tarfile can write
/// any name, type, mode or size we ask for, which libarchive's writer would refuse or fix.
///
/// Usage: `python3 script.py build <spec.json> <out>`, `... list <archive>`, `... gzip <in> <out>`.
let fixtureScript = #"""
import io, json, sys, tarfile, zipfile, zlib

# Bombs of a gigabyte of zeros would cost seconds of deflate each. Raw deflate streams (the
# ones zipfile and gzip make) are cut at every MiB with a full flush, after which the compressor
# keeps no history, so every all-zero MiB deflates to the same bytes: made once, then repeated.
# The archive stays valid deflate with about the size and ratio plain level-6 deflate gives.
CHUNK = 1 << 20
ZERO_CHUNK = bytes(CHUNK)
_compressobj = zlib.compressobj
_zero_blocks = {}

class ChunkedDeflate:
    def __init__(self, args):
        self.args = args
        self.c = _compressobj(*args)
        self.pending = bytearray()
    def compress(self, data):
        view, at, out = memoryview(data), 0, []
        if self.pending:
            at = min(len(view), CHUNK - len(self.pending))
            self.pending += view[:at]
            if len(self.pending) < CHUNK:
                return b""
            out.append(self.deflate(bytes(self.pending)))
            self.pending.clear()
        while len(view) - at >= CHUNK:
            out.append(self.deflate(view[at:at + CHUNK].tobytes()))
            at += CHUNK
        self.pending += view[at:]
        return b"".join(out)
    def deflate(self, chunk):
        if chunk != ZERO_CHUNK:
            return self.c.compress(chunk) + self.c.flush(zlib.Z_FULL_FLUSH)
        block = _zero_blocks.get(self.args)
        if block is None:
            fresh = _compressobj(*self.args)
            block = _zero_blocks[self.args] = fresh.compress(chunk) + fresh.flush(zlib.Z_FULL_FLUSH)
        return block
    def flush(self, mode=zlib.Z_FINISH):
        out = self.c.compress(bytes(self.pending))
        self.pending.clear()
        return out + self.c.flush(mode)

def chunked_compressobj(level=-1, method=zlib.DEFLATED, wbits=15, *rest):
    args = (level, method, wbits) + tuple(rest)
    return ChunkedDeflate(args) if wbits < 0 else _compressobj(*args)

zlib.compressobj = chunked_compressobj

MTIME = 1700000000
TYPE_BITS = {"file": 0o100000, "zeros": 0o100000, "dir": 0o040000, "symlink": 0o120000,
             "chr": 0o020000, "blk": 0o060000, "fifo": 0o010000, "sock": 0o140000}

class Zeros:
    def __init__(self, size): self.left = size
    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)

class RawZipInfo(zipfile.ZipInfo):
    """Writes `raw` as the name verbatim: NUL, invalid UTF-8, backslashes, anything."""
    def _encodeFilenameFlags(self):
        try:
            self.raw.decode("ascii")
            return self.raw, self.flag_bits
        except UnicodeDecodeError:
            try:
                self.raw.decode("utf-8")
                return self.raw, self.flag_bits | 0x800
            except UnicodeDecodeError:
                return self.raw, self.flag_bits

def raw_name(e):
    return bytes.fromhex(e["name_hex"]) if "name_hex" in e else e["name"].encode("utf-8")

def default_mode(t):
    return 0o755 if t in ("dir", "symlink") else 0o644

def many_zip(count, out):
    """`count` stored one-byte entries many/fN, written directly (zipfile takes seconds for
    100 000): local headers, central directory, and the zip64 end records past 65 535 entries."""
    import struct
    time, date = 0x69AA, 0x576E  # 2023-11-14 13:13:20
    crc = zlib.crc32(b"x")
    local, central, offset = [], [], 0
    for i in range(count):
        name = b"many/f%d" % i
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, time, date, crc, 1, 1, len(name), 0) + name + b"x"
        local.append(header)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, 0, 0, time, date, crc, 1, 1,
                                   len(name), 0, 0, 0, 0, 0o100644 << 16, offset) + name)
        offset += len(header)
    directory = b"".join(central)
    end64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(directory), offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, offset + len(directory), 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, len(directory), offset, 0)
    with open(out, "wb") as f:
        f.write(b"".join(local) + directory + end64 + locator + end)

def build_zip(spec, out):
    if any(e.get("type") == "many" for e in spec["entries"]):
        if len(spec["entries"]) != 1:
            sys.exit("a zip with 'many' holds nothing else")
        return many_zip(spec["entries"][0]["count"], out)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        for e in spec["entries"]:
            t = e.get("type", "file")
            raw = raw_name(e)
            zi = RawZipInfo(raw.decode("utf-8", "replace").replace("\x00", "_"), date_time=(2023, 11, 14, 22, 13, 20))
            zi.raw = raw
            zi.create_system = 3
            zi.compress_type = zipfile.ZIP_DEFLATED
            mode = e.get("mode", default_mode(t))
            zi.external_attr = ((TYPE_BITS[t] | mode) << 16) | (0x10 if t == "dir" else 0)
            if t == "zeros":
                with z.open(zi, "w", force_zip64=True) as f:
                    chunk = bytes(1 << 20)
                    left = e["size"]
                    while left > 0:
                        n = min(left, len(chunk))
                        f.write(chunk[:n])
                        left -= n
                continue
            data = e.get("target", "") if t == "symlink" else e.get("data", "")
            z.writestr(zi, data.encode("utf-8"))
    patch = spec.get("patch_declared_size")
    if patch is not None:
        # Make every header (local and central) of the single entry lie about its size.
        b = bytearray(open(out, "rb").read())
        i = b.find(b"PK\x03\x04")
        b[i + 22:i + 26] = patch.to_bytes(4, "little")
        j = b.find(b"PK\x01\x02")
        b[j + 24:j + 28] = patch.to_bytes(4, "little")
        open(out, "wb").write(bytes(b))

def many_tar(tf, count, fmt):
    """`count` one-byte members many/fN: one header made by tarfile, then copies with the name
    and checksum changed (tarfile's addfile takes seconds for 100 000)."""
    ti = tarfile.TarInfo("many/f0")
    ti.size = 1
    ti.mtime = MTIME
    base = bytearray(ti.tobuf(fmt, "utf-8", "surrogateescape"))
    base[148:156] = b" " * 8
    rest = sum(base) - sum(base[:100])
    body = b"x" + bytes(511)
    for start in range(0, count, 4096):
        blocks = []
        for i in range(start, min(count, start + 4096)):
            name = b"many/f%d" % i
            header = bytearray(base)
            header[:100] = name.ljust(100, b"\0")
            header[148:156] = b"%06o\0 " % (rest + sum(name))
            blocks.append(bytes(header))
            blocks.append(body)
        data = b"".join(blocks)
        tf.fileobj.write(data)
        tf.offset += len(data)

def build_tar(spec, out):
    mode = "w:gz" if spec["format"] == "tgz" else "w"
    fmt = tarfile.PAX_FORMAT if spec.get("pax") else tarfile.GNU_FORMAT
    kwargs = {"compresslevel": 6} if mode == "w:gz" else {}
    with tarfile.open(out, mode, format=fmt, encoding="utf-8", errors="surrogateescape", copybufsize=CHUNK,
                      **kwargs) as tf:
        for e in spec["entries"]:
            t = e.get("type", "file")
            if t == "many":
                many_tar(tf, e["count"], fmt)
                continue
            ti = tarfile.TarInfo(raw_name(e).decode("utf-8", "surrogateescape"))
            ti.mtime = MTIME
            ti.mode = e.get("mode", default_mode(t))
            ti.uid = e.get("uid", 1000)
            ti.gid = e.get("uid", 1000)
            if "pax" in e:
                ti.pax_headers = e["pax"]
            fileobj = None
            if t == "file":
                data = e.get("data", "").encode("utf-8")
                ti.size = len(data)
                fileobj = io.BytesIO(data)
            elif t == "zeros":
                ti.size = e["size"]
                fileobj = Zeros(e["size"])
            elif t == "dir":
                ti.type = tarfile.DIRTYPE
            elif t == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["target"]
            elif t == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["target"]
                data = e.get("data", "").encode("utf-8")
                if data:
                    ti.size = len(data)
                    fileobj = io.BytesIO(data)
            elif t in ("chr", "blk"):
                ti.type = tarfile.CHRTYPE if t == "chr" else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = 1, 3
            elif t == "fifo":
                ti.type = tarfile.FIFOTYPE
            tf.addfile(ti, fileobj)

def listing(path):
    rows = []
    with tarfile.open(path, "r:*") as tf:
        for ti in tf:
            kind = "dir" if ti.isdir() else "symlink" if ti.issym() else "file" if ti.isreg() else "other"
            rows.append({"name": ti.name, "type": kind, "target": ti.linkname, "uid": ti.uid,
                         "gid": ti.gid, "uname": ti.uname, "gname": ti.gname, "mode": ti.mode,
                         "mtime": int(ti.mtime), "size": ti.size})
    print(json.dumps(rows))

if sys.argv[1] == "list":
    listing(sys.argv[2])
elif sys.argv[1] == "gzip":
    import gzip
    open(sys.argv[3], "wb").write(gzip.compress(open(sys.argv[2], "rb").read()))
else:
    spec = json.load(open(sys.argv[2]))
    (build_zip if spec["format"] == "zip" else build_tar)(spec, sys.argv[3])
"""#
