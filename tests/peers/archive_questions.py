"""The README's example questions over the archive, read from README.md itself, so the tests run
exactly what users are told to run: the DuckDB block after "Query it with DuckDB" and its Spark
SQL twin after "The same questions in Spark SQL". Each statement in a block starts with a
`-- name` comment line and ends with `;`.

Also `plain()`: an engine's answer value as JSON (timestamps as µs since the epoch, dates as
YYYY-MM-DD, bytes as hex), so two engines' answers compare row by row.
"""
import datetime
import os
import re

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
DUCKDB_MARKER = "Query it with DuckDB"
SPARK_MARKER = "The same questions in Spark SQL"


def _block(marker):
    with open(README, encoding="utf-8") as f:
        text = f.read()
    start = text.index(marker)
    found = re.compile(r"```sql\n(.*?)```", re.S).search(text, start)
    if found is None:
        raise SystemExit(f"README.md: no sql block after {marker!r}")
    return found.group(1)


def _statements(sql):
    """{name: statement} in README order."""
    out = {}
    for statement in sql.split(";"):
        statement = statement.strip()
        if not statement:
            continue
        first, _, body = statement.partition("\n")
        if not first.startswith("-- "):
            raise SystemExit(f"README.md: a question must start with `-- name`: {first!r}")
        out[first[3:].strip()] = body
    return out


def duckdb_questions(root):
    """The DuckDB questions with `ARCHIVE` replaced by `root` (a directory or an s3:// URL).
    The archive's layout is exactly TABLE/date=D/part-N.parquet, so `**` becomes `*`: one
    glob form for local files and for S3 listings."""
    root = root.rstrip("/").replace("'", "''")
    sql = _block(DUCKDB_MARKER).replace("'ARCHIVE/", "'" + root + "/").replace("/**/", "/*/")
    return _statements(sql)


def spark_questions():
    """The Spark SQL questions, over the temporary views `events` and `alerts`."""
    return _statements(_block(SPARK_MARKER))


def plain(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            # Spark hands out timestamps as naive values in its session zone, which the
            # callers set to UTC.
            value = value.replace(tzinfo=datetime.timezone.utc)
        delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    # Anything else (a Decimal from an unsigned column, say) is a type the archive must not
    # produce: keep its type name in the answer so the comparison shows it.
    return f"{type(value).__name__}:{value}"
