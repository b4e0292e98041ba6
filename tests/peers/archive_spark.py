"""Spark (pyspark, local mode, loopback only) reads a secpipe archive; pyarrow and DuckDB read the
same files, and everything is printed as one JSON object for tests/archive_spark.rs to judge.

Usage: archive_spark.py ARCHIVE [BROKEN]

ARCHIVE is a sealed archive directory. BROKEN (optional) is a copy of it with an unsealed
`*.parquet.tmp` file in a date directory, as a live or killed writer leaves: it is read once
plainly and once with the README's `pathGlobFilter`.

The JSON holds:
- `schema`: {table: [[column, Spark type], ...]} as Spark infers it;
- `rows`: {table: {"spark": n, "pyarrow": n}};
- `mismatches`: {table: [what differs]}: every column of every row, Spark's decoding against
  pyarrow's, sorted by seq (empty when they agree);
- `files`: {table: {"spark": [...], "on_disk": [...]}}: the files Spark's scan read (from
  `_metadata.file_path`) and the sealed files in the directory, relative to ARCHIVE;
- `chunks`: {relative path: {"row_groups": n, "columns": {column: [encodings]}}} from
  pyarrow's metadata: the column-chunk encodings of every file Spark read;
- `questions`: {name: {"spark": rows, "duckdb": rows}}: the README's questions, answers as
  `archive_questions.plain` values;
- `kinds`, `rules`: {event kind: rows}, {alert rule: rows}, counted by Spark;
- `raw_of_seq`: {seq: hex} for the evidence rows of the answers (from pyarrow), so the caller
  can judge the `line` column, whose text the engines make differently from non-UTF-8 bytes;
- `broken` (with BROKEN): {"plain": error text or null, "plain_rows": n or null,
  "filtered_rows": n}.
"""
import glob
import json
import os
import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import archive_questions  # noqa: E402

TABLES = ("events", "alerts")


def spark_session():
    from pyspark.sql import SparkSession

    # One small local session for everything (start-up is the slow part): one core, 1 GiB,
    # no UI, bound to loopback.
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("secpipe-archive")
        .config("spark.driver.memory", "1g")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def sealed_files(root, table):
    return sorted(
        os.path.relpath(p, root) for p in glob.glob(os.path.join(root, table, "*", "*.parquet"))
    )


def pyarrow_table(root, table):
    partitioning = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
    files = [os.path.join(root, f) for f in sealed_files(root, table)]
    data = ds.dataset(files, format="parquet", partitioning=partitioning,
                      partition_base_dir=os.path.join(root, table))
    return data.to_table().sort_by("seq")


def compare(spark_table, arrow_table):
    """What differs between Spark's and pyarrow's decoding, column by column."""
    problems = []
    if spark_table.num_rows != arrow_table.num_rows:
        return [f"rows: spark {spark_table.num_rows}, pyarrow {arrow_table.num_rows}"]
    if sorted(spark_table.column_names) != sorted(arrow_table.column_names):
        return [f"columns: spark {spark_table.column_names}, pyarrow {arrow_table.column_names}"]
    for name in arrow_table.column_names:
        want = arrow_table.column(name).combine_chunks()
        got = spark_table.column(name).combine_chunks()
        if got.type != want.type:
            # Spark's Arrow export names list items and string widths its own way; the values
            # must still convert exactly.
            try:
                got = got.cast(want.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                problems.append(f"{name}: spark type {got.type} vs {want.type}: {e}")
                continue
        if not got.equals(want):
            got_list, want_list = got.to_pylist(), want.to_pylist()
            first = next(i for i, (g, w) in enumerate(zip(got_list, want_list)) if g != w)
            problems.append(f"{name}: row {first} (by seq): spark {got_list[first]!r}, "
                            f"pyarrow {want_list[first]!r}")
    return problems


def spark_read(spark, root, table, glob_filter=True):
    reader = spark.read
    if glob_filter:
        reader = reader.option("pathGlobFilter", "*.parquet")
    return reader.parquet(os.path.join(root, table))


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    root = os.path.abspath(sys.argv[1])
    spark = spark_session()
    out = {"schema": {}, "rows": {}, "mismatches": {}, "files": {}, "chunks": {}}
    frames = {}
    for table in TABLES:
        frame = spark_read(spark, root, table)
        frames[table] = frame
        frame.createOrReplaceTempView(table)
        out["schema"][table] = [[f.name, f.dataType.simpleString()] for f in frame.schema.fields]
        arrow_table = pyarrow_table(root, table)
        spark_table = frame.orderBy("seq").toArrow()
        out["rows"][table] = {"spark": spark_table.num_rows, "pyarrow": arrow_table.num_rows}
        out["mismatches"][table] = compare(spark_table, arrow_table)
        read = frame.select("_metadata.file_path").distinct().collect()
        out["files"][table] = {
            "spark": sorted(os.path.relpath(r[0].removeprefix("file:"), root) for r in read),
            "on_disk": sealed_files(root, table),
        }
        for rel in out["files"][table]["spark"]:
            meta = pq.ParquetFile(os.path.join(root, rel)).metadata
            columns = {}
            for g in range(meta.num_row_groups):
                for c in range(meta.num_columns):
                    chunk = meta.row_group(g).column(c)
                    columns.setdefault(chunk.path_in_schema, set()).update(chunk.encodings)
            out["chunks"][rel] = {
                "row_groups": meta.num_row_groups,
                "columns": {k: sorted(v) for k, v in columns.items()},
            }

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    duck = archive_questions.duckdb_questions(root)
    sparkq = archive_questions.spark_questions()
    if list(duck) != list(sparkq):
        raise SystemExit(f"README: DuckDB questions {list(duck)} but Spark questions {list(sparkq)}")
    out["questions"] = {}
    for name in duck:
        out["questions"][name] = {
            "spark": [archive_questions.plain(list(r)) for r in spark.sql(sparkq[name]).collect()],
            "duckdb": [archive_questions.plain(list(r)) for r in con.execute(duck[name]).fetchall()],
        }
    out["kinds"] = {r[0]: r[1] for r in spark.sql("SELECT kind, count(*) FROM events GROUP BY kind").collect()}
    out["rules"] = {r[0]: r[1] for r in spark.sql("SELECT rule, count(*) FROM alerts GROUP BY rule").collect()}
    events = pyarrow_table(root, "events")
    raw_of_seq = dict(zip(events.column("seq").to_pylist(), events.column("raw").to_pylist()))
    wanted = {row[4] for q in out["questions"].values() for rows in q.values() for row in rows
              if len(row) > 6 and isinstance(row[4], int)}
    out["raw_of_seq"] = {str(s): raw_of_seq[s].hex() for s in sorted(wanted) if s in raw_of_seq}

    if len(sys.argv) == 3:
        broken = os.path.abspath(sys.argv[2])
        result = {"plain": None, "plain_rows": None}
        try:
            result["plain_rows"] = spark_read(spark, broken, "events", glob_filter=False).count()
        except Exception as e:  # noqa: BLE001 - the failure is the answer being recorded
            # Py4J's first line names only the call; keep the line that names the file.
            lines = str(e).splitlines()
            result["plain"] = next((l for l in lines if "unsealed" in l), lines[0] if lines else "")[:300]
        result["filtered_rows"] = spark_read(spark, broken, "events").count()
        out["broken"] = result
    spark.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
