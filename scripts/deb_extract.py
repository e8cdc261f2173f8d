#!/usr/bin/env python3
"""Unpacks Debian packages' files into a folder, as `dpkg-deb -x DEB DIR` does, for machines
without dpkg (the GPU machine's image is not known to have it; scripts/gpu-element.sh uses this
when `dpkg-deb` is missing).

  deb_extract.py DIR DEB...

A .deb is an `ar` archive: `debian-binary`, `control.tar.*`, `data.tar.*`; the files are in
data.tar, compressed with xz (Debian 12's packages), gzip, bzip2, zstd (Ubuntu's; through the
`zstd` program, which Python before 3.14 cannot read) or not at all. Absolute and `..` member
names are refused, so nothing lands outside DIR.
"""
import io
import os
import shutil
import subprocess
import sys
import tarfile

AR_MAGIC = b"!<arch>\n"


def ar_members(data):
    """(name, bytes) of each member of an ar archive (the common/GNU format dpkg writes)."""
    if not data.startswith(AR_MAGIC):
        raise ValueError("not an ar archive")
    pos = len(AR_MAGIC)
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        if header[58:60] != b"`\n":
            raise ValueError(f"bad ar member header at {pos}")
        name = header[0:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        yield name, data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)  # members are 2-byte aligned


def data_tar(deb):
    """The package's data.tar, decompressed, as a file object."""
    with open(deb, "rb") as f:
        members = dict(ar_members(f.read()))
    for name, body in members.items():
        if not name.startswith("data.tar"):
            continue
        if name.endswith(".zst"):
            if not shutil.which("zstd"):
                raise RuntimeError(f"{deb}: data.tar.zst and no zstd program here")
            body = subprocess.run(["zstd", "-dc"], input=body, stdout=subprocess.PIPE, check=True).stdout
        return io.BytesIO(body)  # tarfile's "r:*" reads xz, gzip, bzip2 and plain
    raise ValueError(f"{deb}: no data.tar member")


def safe_members(tar, dest):
    root = os.path.realpath(dest)
    for m in tar.getmembers():
        target = os.path.normpath(os.path.join(root, m.name))
        if m.name.startswith("/") or not (target == root or target.startswith(root + os.sep)):
            raise ValueError(f"member outside the folder: {m.name}")
        if m.isdev():
            continue  # device nodes: never in library packages, and not ours to make
        if m.issym() or m.islnk():
            # a link pointing outside (absolute: the packages' doc links) is left out, so that
            # no later member can be written through it outside the folder
            base = root if m.islnk() else os.path.dirname(target)
            to = os.path.normpath(os.path.join(base, m.linkname))
            if os.path.isabs(m.linkname) or not to.startswith(root + os.sep):
                continue
        yield m


def extract(deb, dest):
    with tarfile.open(fileobj=data_tar(deb), mode="r:*") as tar:
        members = list(safe_members(tar, dest))
        # names and links were checked above and are the filter: named explicitly, since
        # Python 3.12 warns without one and 3.14's default ("data") differs from older ones
        if hasattr(tarfile, "fully_trusted_filter"):
            tar.extractall(dest, members=members, filter="fully_trusted")
        else:
            tar.extractall(dest, members=members)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    dest = argv[1]
    os.makedirs(dest, exist_ok=True)
    for deb in argv[2:]:
        extract(deb, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
