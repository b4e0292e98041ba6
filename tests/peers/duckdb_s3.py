"""DuckDB reads a secpipe archive in S3 (or an S3-compatible store) with its httpfs extension and
answers the README's example questions; prints one JSON object.

Usage:
  duckdb_s3.py --endpoint HOST:PORT --bucket BUCKET [--prefix PREFIX]
               [--key-id ID --secret SECRET] [--region REGION] [--ssl] [--local DIR]

  --endpoint  the S3 endpoint, host:port (no scheme); without it, AWS_ENDPOINT_URL's host:port
              (an `http://` URL there means no TLS), else AWS itself (s3.amazonaws.com).
  --bucket, --prefix
              the archive is s3://BUCKET/PREFIX/{events,alerts}/date=D/part-N.parquet; PREFIX
              may be empty.
  --key-id, --secret, --region
              credentials; default AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
              (us-east-1).
  --ssl       use https to a non-AWS endpoint (an http:// AWS_ENDPOINT_URL or a bare
              --endpoint means plain http, path-style, as local test servers need).
  --local DIR also answer the questions over a local copy of the archive, with the same
              DuckDB, for comparison (key "local" in the output).

Output: {"duckdb": version, "httpfs": extension path, "rows": {"events": n, "alerts": n},
"types": {"events": {column: DuckDB type}, "alerts": {...}}, "files": {"events": n, ...},
"questions": {name: rows}, "local": {name: rows} (with --local)}. Timestamps in rows are µs
since the epoch, dates YYYY-MM-DD, bytes hex (tests/peers/archive_questions.py, `plain`).
Exit 2 on a usage error, 1 when DuckDB or the extension cannot be loaded or a query fails.

Which DuckDB: httpfs comes from the PyPI wheel `duckdb-extension-httpfs`, which must match the
DuckDB version exactly, and there is none for the DuckDB 2.0 the other tests use. So this
script imports DuckDB 1.5.5 and the matching extension from their own directory,
SECPIPE_DUCKDB_S3_SITE (default /opt/secpipe-duckdb-1.5.5), filled by tests/run-all.sh with
`pip install --target DIR duckdb==1.5.5 duckdb-extension-httpfs==1.5.5`, and LOADs the
extension from that file with autoinstall and autoload off: nothing is downloaded at query time.
"""
import argparse
import json
import os
import sys
from urllib.parse import urlparse

SITE = os.environ.get("SECPIPE_DUCKDB_S3_SITE", "/opt/secpipe-duckdb-1.5.5")
# The pinned pair comes first; the script's own directory gives archive_questions.
sys.path.insert(0, SITE)
sys.path.insert(1, os.path.dirname(os.path.abspath(__file__)))

import archive_questions  # noqa: E402


def fail(message, code=1):
    print(f"duckdb_s3.py: {message}", file=sys.stderr)
    sys.exit(code)


def sql_text(value):
    return "'" + value.replace("'", "''") + "'"


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--key-id", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    parser.add_argument("--secret", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--ssl", action="store_true")
    parser.add_argument("--local")
    args = parser.parse_args()
    ssl = args.ssl
    if args.endpoint is None and os.environ.get("AWS_ENDPOINT_URL"):
        url = urlparse(os.environ["AWS_ENDPOINT_URL"])
        if not url.netloc:
            fail(f"AWS_ENDPOINT_URL is not a URL: {os.environ['AWS_ENDPOINT_URL']!r}", 2)
        args.endpoint = url.netloc
        ssl = ssl or url.scheme == "https"
    if args.endpoint is not None and ("/" in args.endpoint or not args.endpoint.strip()):
        fail(f"--endpoint is host:port, without a scheme or path: {args.endpoint!r}", 2)
    if not args.key_id or not args.secret:
        fail("no credentials: --key-id/--secret or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", 2)
    if "/" in args.bucket or not args.bucket:
        fail(f"--bucket is a bucket name: {args.bucket!r}", 2)
    args.use_ssl = ssl
    return args


def connect(args):
    try:
        import duckdb
        import duckdb_extension_httpfs
    except ImportError as e:
        fail(f"{e}: install the pinned pair with `pip install --target {SITE} "
             "duckdb==1.5.5 duckdb-extension-httpfs==1.5.5`")
    version = duckdb.__version__
    extension = os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions",
                             f"v{version}", "httpfs.duckdb_extension")
    if not os.path.isfile(extension):
        fail(f"no httpfs extension for DuckDB {version} at {extension} (the wheel's version "
             f"must equal DuckDB's; DuckDB came from {duckdb.__file__})")
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    con.execute(f"LOAD {sql_text(extension)}")
    con.execute("SET TimeZone = 'UTC'")
    secret = [f"TYPE s3", f"KEY_ID {sql_text(args.key_id)}", f"SECRET {sql_text(args.secret)}",
              f"REGION {sql_text(args.region)}"]
    if args.endpoint is not None:
        # An S3-compatible server: path-style URLs (no bucket subdomains on 127.0.0.1).
        secret += [f"ENDPOINT {sql_text(args.endpoint)}", "URL_STYLE 'path'",
                   f"USE_SSL {'true' if args.use_ssl else 'false'}"]
    con.execute(f"CREATE SECRET archive_s3 ({', '.join(secret)})")
    return con, version, extension


def describe(con, root):
    rows, types, files = {}, {}, {}
    for table in ("events", "alerts"):
        source = f"read_parquet({sql_text(root + '/' + table + '/*/*.parquet')}, hive_partitioning = true)"
        rows[table] = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        types[table] = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        files[table] = con.execute(
            f"SELECT count(*) FROM glob({sql_text(root + '/' + table + '/*/*.parquet')})").fetchone()[0]
    return rows, types, files


def answers(con, root):
    return {name: [archive_questions.plain(list(r)) for r in con.execute(sql).fetchall()]
            for name, sql in archive_questions.duckdb_questions(root).items()}


def main():
    args = arguments()
    con, version, extension = connect(args)
    prefix = args.prefix.strip("/")
    root = f"s3://{args.bucket}" + (f"/{prefix}" if prefix else "")
    try:
        rows, types, files = describe(con, root)
        out = {"duckdb": version, "httpfs": extension, "rows": rows, "types": types,
               "files": files, "questions": answers(con, root)}
        if args.local:
            out["local"] = answers(con, os.path.abspath(args.local))
    except Exception as e:  # noqa: BLE001 - DuckDB's own message is the report
        fail(f"{root}: {e}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
