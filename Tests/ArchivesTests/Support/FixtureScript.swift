/// The Python program that crafts hostile archives; python3's zipfile and tarfile can write
/// any name, type, mode or size we ask for, which libarchive's writer would refuse or fix.
///
/// Usage: `python3 script.py build <spec.json> <out>`, `... list <archive>`, `... gzip <in> <out>`.
let fixtureScript = #"""
import io, json, sys, tarfile, zipfile

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

def build_zip(spec, out):
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        for e in spec["entries"]:
            t = e.get("type", "file")
            if t == "many":
                for i in range(e["count"]):
                    z.writestr("many/f%d" % i, b"x")
                continue
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

def build_tar(spec, out):
    mode = "w:gz" if spec["format"] == "tgz" else "w"
    fmt = tarfile.PAX_FORMAT if spec.get("pax") else tarfile.GNU_FORMAT
    kwargs = {"compresslevel": 6} if mode == "w:gz" else {}
    with tarfile.open(out, mode, format=fmt, encoding="utf-8", errors="surrogateescape", **kwargs) as tf:
        for e in spec["entries"]:
            t = e.get("type", "file")
            if t == "many":
                for i in range(e["count"]):
                    ti = tarfile.TarInfo("many/f%d" % i)
                    ti.size = 1
                    ti.mtime = MTIME
                    tf.addfile(ti, io.BytesIO(b"x"))
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
