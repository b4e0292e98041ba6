"""Validate `secpipe --alert-format ocsf` output with py-ocsf-models (PyPI), the pydantic OCSF
models Prowler uses, and against the required-field table of OCSF 1.3.0.

usage: ocsf_validate_alerts.py ALERTS_FILE REQUIRED_JSON
Prints one JSON object: lines, valid, errors (line number and message), class_uids, the
key values found in src_endpoint.ip / user.name, and the titles.
"""

import json
import sys

from py_ocsf_models.events.findings.detection_finding import DetectionFinding


def present(obj, path):
    for part in path.split("."):
        if not isinstance(obj, dict) or obj.get(part) is None:
            return False
        obj = obj[part]
    return True


def main(alerts_path, required_path):
    with open(required_path) as f:
        table = json.load(f)
    required = table["base_event"] + table["classes"]["2004"]["required"]
    out = {"lines": 0, "valid": 0, "errors": [], "class_uids": [], "ips": [], "users": [],
           "titles": [], "versions": []}
    with open(alerts_path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            out["lines"] += 1
            try:
                raw = json.loads(line)
                finding = DetectionFinding.model_validate(raw)
            except Exception as e:  # report every bad line, not only the first
                out["errors"].append([number, str(e)[:500]])
                continue
            missing = [p for p in required if not present(raw, p)]
            if missing:
                out["errors"].append([number, f"missing required {missing}"])
                continue
            out["valid"] += 1
            out["class_uids"].append(int(finding.class_uid))
            out["titles"].append(finding.finding_info.title)
            out["versions"].append(finding.metadata.version)
            if isinstance(raw.get("src_endpoint"), dict):
                out["ips"].append(raw["src_endpoint"].get("ip"))
            if isinstance(raw.get("user"), dict):
                out["users"].append(raw["user"].get("name"))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
