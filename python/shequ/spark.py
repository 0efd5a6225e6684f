"""shequ on Apache Spark: a job whose cases are a Spark DataFrame, folded on the executors.

The small layers (polygons, buildings, facilities, rules) and the rosters named by the job's
paths are read once per executor process into the frame the cases are placed against (the
broadcast mode of ``docs/scale-out.md``). The cases, a DataFrame with the columns the job's
``[layers.events]`` maps, are folded on the executors by the same native code as ``shequ
run``: Arrow batches (``mapInArrow``) go to ``shequ._core``, which returns each partition's
partial as bytes. Repeated case ids are found across partitions by Spark (the first row of
each id's key), so they are reported as one machine reports them. The driver merges the
partials and runs the finish and every output once: the files are ``shequ run``'s.

>>> # spark = SparkSession.builder.master("local[2]").getOrCreate()
>>> # shequ.spark.run(spark, "job.toml", "out", cases=spark.read.parquet("cases.parquet"))

Rows are numbered in the DataFrame's order unless ``row_column`` names a column that holds
each row's 0-based number (a Hive table has no order of its own: give one for reproducible
row numbers in the quality report).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from . import Job, _core

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["first_rows", "numbered", "partials", "run"]

ROW = "_shequ_row"
FIRST = "_shequ_first"


def _job_text(job: Job | str | os.PathLike[str]) -> tuple[str, str]:
    if not isinstance(job, Job):
        job = Job.from_toml(job)
    return job._core.to_json(), str(job.base_dir)


def _spooled(batch: "pa.RecordBatch", spool: str) -> str:
    """The batch as a Parquet file of this executor (shequ reads its cases from files)."""
    path = os.path.join(spool, f"{uuid.uuid4().hex}.parquet")
    _core.write_parquet(batch, path)
    return path


def _keys(job_text: str, base: str) -> Any:
    def keys(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        job = _core.Job.from_json(job_text, base)
        with tempfile.TemporaryDirectory(prefix="shequ-spark-") as spool:
            for b in batches:
                if b.num_rows == 0:
                    continue
                path = _spooled(b, spool)
                k = pa.table(_core.case_keys(job, path))
                os.remove(path)
                yield pa.RecordBatch.from_arrays(
                    [b.column(ROW), k.column("_k1").combine_chunks(),
                     k.column("_k2").combine_chunks()],
                    names=[ROW, "_k1", "_k2"],
                )

    return keys


def _fold(job_text: str, base: str, firsts: dict[int, int]) -> Any:
    def fold(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        job = _core.Job.from_json(job_text, base)
        schema = pa.schema([("partial", pa.binary())])
        with tempfile.TemporaryDirectory(prefix="shequ-spark-") as spool:
            for b in batches:
                if b.num_rows == 0:
                    continue
                rows = b.column(b.schema.get_field_index(ROW)).to_pylist()
                first = pa.array([firsts.get(r) for r in rows], pa.int64())
                path = _spooled(b.append_column(FIRST, first), spool)
                partial = _core.fold_cases(job, path, ROW, FIRST)
                os.remove(path)
                yield pa.RecordBatch.from_pydict({"partial": [partial]}, schema=schema)

    return fold


def numbered(cases: "DataFrame", row_column: str | None = None) -> "DataFrame":
    """``cases`` with each row's 0-based number in column ``_shequ_row``: ``row_column``'s
    values, or the rows' order in the DataFrame (partition by partition, as Spark's
    ``zipWithIndex`` numbers them, computed in the JVM: each row's
    ``monotonically_increasing_id`` less its partition's start, plus the rows of the
    partitions before it)."""
    from pyspark.sql import functions as F

    if row_column is not None:
        return cases.withColumn(ROW, F.col(row_column).cast("long"))
    mid = cases.withColumn("_shequ_mid", F.monotonically_increasing_id())
    part = F.shiftright(F.col("_shequ_mid"), 33)
    sizes = sorted(
        (r["p"], r["n"])
        for r in mid.groupBy(part.alias("p")).agg(F.count("*").alias("n")).collect()
    )
    offsets, before = [], 0
    for p, n in sizes:
        offsets += [F.lit(p), F.lit(before)]
        before += n
    if not offsets:
        return cases.withColumn(ROW, F.lit(None).cast("long"))
    start = F.element_at(F.create_map(*offsets), part)
    local = F.col("_shequ_mid") - F.shiftleft(part, 33)
    return mid.withColumn(ROW, start + local).drop("_shequ_mid")


def first_rows(job: Job | str | os.PathLike[str], cases: "DataFrame") -> dict[int, int]:
    """For numbered ``cases`` (see :func:`numbered`): each row that repeats an earlier row's
    id (ids compared as shequ cleans them), with that first row. Spark finds them across
    partitions: each row's key comes from the native module, the first row of a key is its
    ``min``. Only repeats are collected, so the result is small."""
    from pyspark.sql import functions as F

    text, base = _job_text(job)
    # Read once: the groups and the join below both use the keys.
    keys = (
        cases.mapInArrow(_keys(text, base), f"{ROW} long, _k1 long, _k2 long")
        .where(F.col("_k1").isNotNull())
        .persist()
    )
    firsts = (
        keys.groupBy("_k1", "_k2")
        .agg(F.min(ROW).alias("_min"), F.count(ROW).alias("_n"))
        .where(F.col("_n") > 1)
    )
    repeats = keys.join(firsts, ["_k1", "_k2"]).where(F.col(ROW) != F.col("_min"))
    found = {r[ROW]: r["_min"] for r in repeats.select(ROW, "_min").collect()}
    keys.unpersist()
    return found


def partials(job: Job | str | os.PathLike[str], cases: "DataFrame") -> list[bytes]:
    """The partials of every row of numbered ``cases`` (see :func:`numbered`), one per Arrow
    batch, folded on the executors in the DataFrame's own partitions and collected."""
    text, base = _job_text(job)
    firsts = first_rows(job, cases)
    folded = cases.mapInArrow(_fold(text, base, firsts), "partial binary")
    return [bytes(r.partial) for r in folded.collect()]


def run(
    spark: "SparkSession",
    job: Job | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    cases: "DataFrame",
    row_column: str | None = None,
) -> list[str]:
    """Runs ``job`` into ``out`` with its cases from the DataFrame ``cases``: the same files as
    ``shequ run`` on the same rows. Returns the files written, relative to ``out``."""
    del spark  # the DataFrame carries its session; kept for the call's readability
    if not isinstance(job, Job):
        job = Job.from_toml(job)
    rows = numbered(cases, row_column)
    return _core.run_with_cases(job._core, Path(out), partials(job, rows))
