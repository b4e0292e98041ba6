"""Check a `secpipe export --ocsf json|parquet` output directory against the archive it came
from and the OCSF 1.3.0 required-field table.

usage: ocsf_check_export.py ARCHIVE OUT_DIR REQUIRED_JSON
For every exported file (JSON lines, or Parquet read back with pyarrow): one class_uid per
file, every required field present in every row. For every row: its metadata.uid (the archive
seq) and unmapped secpipe.row_leaf must equal the leaf recomputed here from the archive's own
rows, with the canonical encoding of tests/independent_verifier.py (docs/archive-format.md).
Prints one JSON summary.
"""

import json
import os
import sys

import pyarrow.parquet as pq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import independent_verifier as iv  # noqa: E402


def present(obj, path):
    for part in path.split("."):
        if not isinstance(obj, dict) or obj.get(part) is None:
            return False
        obj = obj[part]
    return True


def archive_leaves(archive):
    """seq -> (archive id hex, leaf hex) for every events row of the archive."""
    leaves = {}
    with open(os.path.join(archive, "audit", "manifests.jsonl"), encoding="utf-8") as f:
        for line in f:
            m = json.loads(line)
            if m.get("table") != "events" or "path" not in m:
                continue
            archive_id = bytes.fromhex(m["archive"])
            table = pq.read_table(os.path.join(archive, *m["path"].split("/")))
            for canonical, seq in iv.canonical_rows(table, iv.EVENTS):
                leaves[seq] = (m["archive"], iv.row_leaf(archive_id, seq, canonical).hex())
    return leaves


def rows_of(path):
    if path.endswith(".parquet"):
        for row in pq.read_table(path).to_pylist():
            # pyarrow gives a map as a list of (key, value) pairs.
            row["unmapped"] = dict(row["unmapped"] or [])
            yield row
    else:
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


def main(archive, out_dir, required_path):
    with open(required_path) as f:
        table = json.load(f)
    leaves = archive_leaves(archive)
    summary = {"files": [], "rows": 0, "rows_by_class": {}, "multi_class_files": [],
               "missing": [], "traced": 0, "untraced": [], "partial_files": [],
               "archive_rows": len(leaves), "seqs": []}
    for root, _, names in os.walk(out_dir):
        for name in sorted(names):
            path = os.path.join(root, name)
            if name.endswith(".partial"):
                summary["partial_files"].append(path)
                continue
            summary["files"].append(os.path.relpath(path, out_dir))
            uids = set()
            for row in rows_of(path):
                summary["rows"] += 1
                uid = row["class_uid"]
                uids.add(uid)
                summary["rows_by_class"][str(uid)] = summary["rows_by_class"].get(str(uid), 0) + 1
                required = table["base_event"] + table["classes"][str(uid)]["required"]
                missing = [p for p in required if not present(row, p)]
                if missing:
                    summary["missing"].append([path, row["metadata"]["uid"], missing])
                seq = int(row["metadata"]["uid"])
                summary["seqs"].append(seq)
                expected = leaves.get(seq)
                got = (row["unmapped"].get("secpipe.archive_id"), row["unmapped"].get("secpipe.row_leaf"))
                if expected is not None and expected == got:
                    summary["traced"] += 1
                else:
                    summary["untraced"].append([path, seq])
            if len(uids) != 1:
                summary["multi_class_files"].append([path, sorted(uids)])
    summary["seqs"].sort()
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
