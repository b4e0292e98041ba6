#!/usr/bin/env python3
"""An independent verifier of a secpipe archive, written from docs/archive-format.md (and DESIGN
section 6) alone, with no secpipe code: pyarrow reads the Parquet files, hashlib hashes, and
`cryptography` checks the Ed25519 signature. A bug that secpipe's writer and its verifier share
(a wrong leaf, a wrong tree shape, a wrong signed message) cannot pass this check too.

    independent_verifier.py ARCHIVE [--pubkey FILE.pub]   prints one JSON report on stdout
    independent_verifier.py --self-test                   the RFC 6962 test vectors

Exit status: 0 intact, 1 tampered, 3 unsigned (as `secpipe verify`), 4 the self-test failed.
"""

import base64
import hashlib
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

# Section 1: canonical column order and value kinds.
EVENTS = [
    ("seq", "integer"), ("line", "integer"), ("source", "text"), ("ts", "timestamp"),
    ("ts_inferred", "boolean"), ("host", "text"), ("app", "text"), ("pid", "integer"),
    ("kind", "text"), ("reason", "text"), ("src_ip", "text"), ("user", "text"),
    ("actor", "text"), ("namespace", "text"), ("count", "integer"), ("http_method", "text"),
    ("http_path", "text"), ("http_status", "integer"), ("bytes", "integer"),
    ("severity", "text"), ("message", "text"), ("raw", "binary"), ("received", "timestamp"),
]
ALERTS = [
    ("seq", "integer"), ("id", "text"), ("rule", "text"), ("severity", "text"),
    ("priority", "text"), ("respond_within", "text"), ("key_field", "text"),
    ("key_value", "text"), ("count", "integer"), ("threshold", "integer"),
    ("window_start", "timestamp"), ("window_end", "timestamp"), ("first_seen", "timestamp"),
    ("last_seen", "timestamp"), ("summary", "text"), ("evidence_seqs", "integer list"),
    ("evidence", "text"), ("action", "text"),
]
TABLES = {"events": EVENTS, "alerts": ALERTS}
# Section 2: type tags.
TAGS = {"integer": 1, "boolean": 2, "text": 3, "binary": 4, "timestamp": 5, "integer list": 6}
ROW_LABEL = b"secpipe/row/v1"
ZERO_HEAD = "0" * 64
CHUNK_ROWS = 1024


def sha256(data):
    return hashlib.sha256(data).digest()


def i64be(value):
    return int(value).to_bytes(8, "big", signed=True)


def encode_value(kind, value):
    tag = bytes([TAGS[kind]])
    if value is None:
        return tag + b"\x01" + (0).to_bytes(4, "big")
    if kind in ("integer", "timestamp"):
        data = i64be(value)
    elif kind == "boolean":
        data = b"\x01" if value else b"\x00"
    elif kind == "text":
        data = value.encode("utf-8")
    elif kind == "binary":
        data = bytes(value)
    elif kind == "integer list":
        if any(v is None for v in value):
            raise ValueError("a null element in a list of integers")
        data = b"".join(i64be(v) for v in value)
    else:
        raise ValueError(kind)
    return tag + b"\x00" + len(data).to_bytes(4, "big") + data


def column_values(table, name, kind):
    column = table.column(name)
    if kind == "timestamp":
        # Microseconds since the epoch, UTC, as the integer the file stores.
        column = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return column.to_pylist()


def canonical_rows(table, columns):
    values = [column_values(table, name, kind) for name, kind in columns]
    for row in range(table.num_rows):
        yield b"".join(
            encode_value(kind, values[c][row]) for c, (_, kind) in enumerate(columns)
        ), values[0][row]


def row_leaf(archive_id, seq, canonical_row):
    return sha256(b"\x00" + ROW_LABEL + archive_id + seq.to_bytes(8, "big") + sha256(canonical_row))


def mth(leaves):
    """RFC 6962 Merkle Tree Hash over leaves that are already leaf hashes."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


# certificate-transparency's reference test data: leaf inputs and MTH(D[n]) for n = 0..8.
RFC6962_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                  "606162636465666768696a6b6c6d6e6f"]
RFC6962_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def self_test_failures():
    """The RFC 6962 vectors, and the canonical encoding of a text "ab" and a null integer as
    section 2 spells it out."""
    leaves = [sha256(b"\x00" + bytes.fromhex(d)) for d in RFC6962_INPUTS]
    failures = [
        f"MTH of {n} leaves: {mth(leaves[:n]).hex()} != {root}"
        for n, root in enumerate(RFC6962_ROOTS)
        if mth(leaves[:n]).hex() != root
    ]
    encoded = encode_value("text", "ab") + encode_value("integer", None)
    if encoded != bytes([3, 0, 0, 0, 0, 2, 0x61, 0x62, 1, 1, 0, 0, 0, 0]):
        failures.append(f"canonical encoding: {encoded.hex()}")
    return failures


class Report:
    def __init__(self):
        self.problems = []
        self.files = []
        self.unsigned = []
        self.warnings = []

    def problem(self, where, what):
        self.problems.append(f"{where}: {what}")


def read_lines(path):
    """The manifest lines (bytes, without their \\n); a torn last piece is not part of the chain."""
    with open(path, "rb") as f:
        data = f.read()
    pieces = data.split(b"\n")
    torn = pieces.pop()
    return pieces, torn


def check_file(archive_dir, archive_id, manifest, report):
    path = manifest["path"]
    where = path
    full = os.path.join(archive_dir, *path.split("/"))
    if not os.path.isfile(full):
        report.problem(where, "missing")
        return
    with open(full, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        report.problem(where, "file bytes do not hash to the manifest's sha256")
    if len(data) != manifest["bytes"]:
        report.problem(where, f"{len(data)} bytes, the manifest says {manifest['bytes']}")
    parquet = pq.ParquetFile(full)
    table = parquet.read()
    columns = TABLES[manifest["table"]]
    leaves = []
    seqs = []
    for canonical, seq in canonical_rows(table, columns):
        seqs.append(seq)
        leaves.append(row_leaf(archive_id, seq, canonical))
    first, count = manifest["rows"]["first_seq"], manifest["rows"]["count"]
    if seqs != list(range(first, first + count)):
        report.problem(where, f"seqs are not {first}..{first + count} in order")
    root = mth(leaves).hex()
    if root != manifest["row_root"]:
        report.problem(where, f"recomputed row_root {root} != the manifest's {manifest['row_root']}")
    metadata = {
        k.decode(): v.decode() for k, v in (parquet.metadata.metadata or {}).items()
    }
    expected_metadata = {
        "secpipe.format": "secpipe/row/v1",
        "secpipe.archive": manifest["archive"],
        "secpipe.table": manifest["table"],
        "secpipe.file_seq": str(manifest["file_seq"]),
        "secpipe.first_seq": str(first),
        "secpipe.rows": str(count),
        "secpipe.row_root": root,
        "secpipe.prev": manifest["prev"],
    }
    for key, value in expected_metadata.items():
        if metadata.get(key) != value:
            report.problem(where, f"metadata {key} = {metadata.get(key)!r}, expected {value!r}")
    chunk_roots = [mth(leaves[i:i + CHUNK_ROWS]) for i in range(0, len(leaves), CHUNK_ROWS)]
    stored = base64.b64decode(metadata.get("secpipe.chunk_roots", ""))
    if stored != b"".join(chunk_roots):
        report.problem(where, "metadata secpipe.chunk_roots differ from the recomputed chunk roots")
    report.files.append({
        "path": path,
        "table": manifest["table"],
        "first_seq": first,
        "rows": len(seqs),
        "row_root": root,
        "first_leaf": leaves[0].hex() if leaves else None,
    })


def parse_checkpoint(text):
    lines = text.split("\n")
    origin, count, head = lines[0], lines[1], lines[2]
    if not origin.startswith("secpipe/archive/"):
        raise ValueError("no origin line")
    body = f"{origin}\n{count}\n{head}\n"
    signatures = [l for l in lines[3:] if l]
    signature = None
    if signatures:
        if len(signatures) != 1 or not signatures[0].startswith("\u2014 secpipe "):
            raise ValueError("bad signature lines")
        keyhash, sig = signatures[0][len("\u2014 secpipe "):].split(" ")
        signature = (keyhash, sig)
    return origin[len("secpipe/archive/"):], int(count), head, body, signature


def verify(archive_dir, pubkey_path):
    report = Report()
    lines, torn = read_lines(os.path.join(archive_dir, "audit", "manifests.jsonl"))
    if torn:
        report.warnings.append(f"a torn last line of {len(torn)} bytes")
    hashes = []
    manifests = []
    prev = ZERO_HEAD
    archive = None
    for number, line in enumerate(lines, start=1):
        m = json.loads(line)
        manifests.append(m)
        if m["prev"] != prev:
            report.problem(f"manifest line {number}", "prev is not the hash of the line before")
        archive = archive or m["archive"]
        if m["archive"] != archive:
            report.problem(f"manifest line {number}", "names another archive")
        prev = hashlib.sha256(line).hexdigest()
        hashes.append(prev)
    archive_id = bytes.fromhex(archive) if archive else b""
    next_seq = {}
    for m in manifests:
        if m["kind"] == "data":
            table = m["table"]
            first = m["rows"]["first_seq"]
            if table in next_seq and next_seq[table] != first:
                report.problem(m["path"], f"starts at seq {first}, expected {next_seq[table]}")
            next_seq[table] = first + m["rows"]["count"]
            check_file(archive_dir, archive_id, m, report)
    head = hashes[-1] if hashes else ZERO_HEAD

    signature_state = "none"
    signed = None
    checkpoint_path = os.path.join(archive_dir, "audit", "checkpoint")
    if os.path.exists(checkpoint_path):
        with open(checkpoint_path, encoding="utf-8") as f:
            cp_archive, cp_count, cp_head, body, signature = parse_checkpoint(f.read())
    else:
        cp_archive, cp_count, cp_head, body, signature = archive, 0, ZERO_HEAD, "", None
        if pubkey_path:
            report.problem("audit/checkpoint", "missing")
    if archive and cp_archive != archive:
        report.problem("audit/checkpoint", "names another archive")
    if cp_count > len(hashes):
        report.problem("audit/checkpoint", "counts more lines than exist")
    elif cp_head != (hashes[cp_count - 1] if cp_count else ZERO_HEAD):
        report.problem("audit/checkpoint", "head is not the hash of the line it counts")
    elif signature is not None:
        signature_state = "not_checked"
        signed = cp_count
        if pubkey_path:
            with open(pubkey_path, "rb") as f:
                key = load_pem_public_key(f.read())
            if not isinstance(key, Ed25519PublicKey):
                raise SystemExit("not an Ed25519 public key")
            raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
            keyhash, sig = signature
            try:
                if keyhash != hashlib.sha256(raw).hexdigest()[:16]:
                    raise InvalidSignature("another key")
                key.verify(base64.b64decode(sig, validate=True), body.encode("utf-8"))
                signature_state = "good"
            except (InvalidSignature, ValueError):
                signature_state = "bad"
                signed = None
                report.problem("audit/checkpoint", "the signature does not verify")
    elif pubkey_path:
        report.problem("audit/checkpoint", "not signed")

    # Section 5: what the signature covers.
    if signed is not None:
        spans = []
        for number, m in enumerate(manifests[:signed], start=1):
            declared = m.get("unsigned_lines")
            if m["kind"] == "resume" and declared:
                spans.append((declared["first"], min(declared["last"], len(manifests))))
        if signed < len(manifests):
            spans.append((signed + 1, len(manifests)))
        for first, last in spans:
            files = [m["path"] for m in manifests[first - 1:last] if m["kind"] == "data"]
            if files:
                report.unsigned.append({"first_line": first, "last_line": last, "files": files})
            else:
                report.warnings.append(f"lines {first}..={last} are not signed; they seal no rows")

    status = "tampered" if report.problems else "unsigned" if report.unsigned else "intact"
    print(json.dumps({
        "status": status,
        "archive": archive,
        "head": head,
        "manifests": len(manifests),
        "signature": signature_state,
        "signed_lines": signed,
        "rows": sum(f["rows"] for f in report.files),
        "files": report.files,
        "unsigned": report.unsigned,
        "problems": report.problems,
        "warnings": report.warnings,
    }, indent=1))
    return {"intact": 0, "tampered": 1, "unsigned": 3}[status]


def main(argv):
    failures = self_test_failures()
    if argv[1:] == ["--self-test"]:
        print(json.dumps({"self_test": "failed" if failures else "passed", "failures": failures}))
        return 4 if failures else 0
    if failures:
        print(f"the self-test failed: {failures}", file=sys.stderr)
        return 4
    archive_dir = argv[1]
    pubkey = argv[argv.index("--pubkey") + 1] if "--pubkey" in argv else None
    return verify(archive_dir, pubkey)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
