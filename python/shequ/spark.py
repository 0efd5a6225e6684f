"""shequ on Apache Spark: a job whose households, residents and cases are Spark DataFrames,
placed and folded on the executors.

The small layers (polygons, buildings, facilities, rules) are read once, on the driver, into
the frame rows are placed against; with the households given as a DataFrame, the executors
get that frame (the broadcast mode of ``docs/scale-out.md``) instead of reading the layers.
A roster left out is read from the job's path by the executors, with the frame built there
from the small layers (once per process). The households, a DataFrame with the columns the job's
``[layers.households]`` maps, and the cases, one with ``[layers.events]``'s columns, are
handled on the executors by the same native code as ``shequ run``: Arrow batches
(``mapInArrow``) go to ``shequ._core``, which returns each partition's partial as bytes.
Repeated ids are found across partitions by Spark (the first row of each id's key), so they
are reported as one machine reports them. When the working CRS is ``auto``, the households'
extent is gathered first, so every process places in the CRS one reading of the whole layer
chooses. The driver merges the partials and runs the finish and every output once: the files
are ``shequ run``'s. In the by-street mode (``run(..., mode="by_street")``) the households
meet the frame street by street instead: each street's rows are placed against that
street's piece of it alone (:func:`by_street`). An operational job's person lists are
written by the executors, each file from its own residents' roster rows (:func:`write_lists`).

>>> # spark = SparkSession.builder.master("local[2]").getOrCreate()
>>> # shequ.spark.run(spark, "job.toml", "out", cases=spark.read.parquet("cases.parquet"),
>>> #                 households=spark.table("hh"))

Rows are numbered in each DataFrame's order unless ``row_column`` names a column that holds
each row's 0-based number (a Hive table has no order of its own: give one for reproducible
row numbers in the quality report).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from . import Job, _core
from ._spark_inputs import _materialised, _with_layers, _with_registers, _with_rules
from ._spark_tables import save_tables
from .errors import JobError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "by_street",
    "first_rows",
    "numbered",
    "partials",
    "resolved",
    "run",
    "save_tables",
    "write_lists",
]

ROW = "_shequ_row"
FIRST = "_shequ_first"
STREET = "_shequ_street"
PIECE = "_shequ_piece"
HALO = "_shequ_halo"
PART = "_shequ_part"
MODES = ("broadcast", "by_street")

# Per layer: the native functions giving each row's id key and folding rows into a partial.
_NATIVE = {
    "events": ("case_keys", "fold_cases"),
    "households": ("household_keys", "fold_households"),
    "residents": ("resident_keys", "fold_residents"),
}


# The layers whose partials Spark merges, with the native merge of a list of partials.
_MERGE = {"events": "merge_cases", "households": "merge_households"}


def _no_extra() -> tuple[Any, ...]:
    return ()


def _native(job: Any) -> Any:
    """The native job of a :class:`shequ.Job`, a path to a job file, or a native job."""
    if isinstance(job, _core.Job):
        return job
    if not isinstance(job, Job):
        job = Job.from_toml(job)
    return job._core


def _job_text(job: Any) -> tuple[str, str]:
    native = _native(job)
    return native.to_json(), str(native.base_dir)


def _spooled(batch: "pa.RecordBatch", spool: str) -> str:
    """The batch as a Parquet file of this executor (shequ reads its rows from files)."""
    path = os.path.join(spool, f"{uuid.uuid4().hex}.parquet")
    _core.write_parquet(batch, path)
    return path


def _per_batch(job_text: str, base: str, each: Any, prepare: Any = None) -> Any:
    """A ``mapInArrow`` function: each non-empty batch (``prepare``d first, when given)
    spooled to a Parquet file of the executor, ``each(job, batch, path)`` yielding its output
    batches, the file removed."""

    def run(batches: Iterator["pa.RecordBatch"]) -> Iterator["pa.RecordBatch"]:
        job = _core.Job.from_json(job_text, base)
        with tempfile.TemporaryDirectory(prefix="shequ-spark-") as spool:
            for b in batches:
                if b.num_rows == 0:
                    continue
                path = _spooled(prepare(b) if prepare else b, spool)
                try:
                    yield from each(job, b, path)
                finally:
                    os.remove(path)

    return run


def _keys(job_text: str, base: str, layer: str, extra: Any = _no_extra) -> Any:
    native_keys = _NATIVE[layer][0]

    def keys(job: Any, b: "pa.RecordBatch", path: str) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        k = pa.table(getattr(_core, native_keys)(job, path, *extra()))
        yield pa.RecordBatch.from_arrays(
            [b.column(ROW), k.column("_k1").combine_chunks(), k.column("_k2").combine_chunks()],
            names=[ROW, "_k1", "_k2"],
        )

    return _per_batch(job_text, base, keys)


def _fold(
    job_text: str, base: str, firsts: dict[int, int], layer: str, extra: Any = _no_extra
) -> Any:
    native_fold = _NATIVE[layer][1]

    def with_firsts(b: "pa.RecordBatch") -> "pa.RecordBatch":
        import pyarrow as pa

        rows = b.column(b.schema.get_field_index(ROW)).to_pylist()
        return b.append_column(FIRST, pa.array([firsts.get(r) for r in rows], pa.int64()))

    def fold(job: Any, b: "pa.RecordBatch", path: str) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        partial = getattr(_core, native_fold)(job, path, ROW, FIRST, *extra())
        yield pa.RecordBatch.from_pydict({"partial": [partial]},
                                         schema=pa.schema([("partial", pa.binary())]))

    return _per_batch(job_text, base, fold, with_firsts)


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


def first_rows(
    job: Any, rows: "DataFrame", layer: str = "events", extra: Any = _no_extra
) -> dict[int, int]:
    """For numbered ``rows`` of ``layer`` (``"events"`` or ``"households"``; see
    :func:`numbered`): each row that repeats an earlier row's id (ids compared as shequ
    cleans them; households rejected for their coordinates before ids are compared have
    none), with that first row. ``extra`` gives the native calls' further arguments on the
    executors (the residents' frame: see :func:`run`). Spark finds them across
    partitions: each row's key comes from the native module, the first row of a key is its
    ``min``. Only repeats are collected, so the result is small."""
    from pyspark.sql import functions as F

    text, base = _job_text(job)
    # Read once: the groups and the join below both use the keys.
    keys = (
        rows.mapInArrow(_keys(text, base, layer, extra), f"{ROW} long, _k1 long, _k2 long")
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


def partials(
    job: Any, rows: "DataFrame", layer: str = "events", extra: Any = _no_extra
) -> list[bytes]:
    """The partials of every row of numbered ``rows`` of ``layer`` (``"events"``,
    ``"households"`` or ``"residents"``; see :func:`numbered`), one per Arrow batch, folded on
    the executors in the DataFrame's own partitions. Spark merges the cases' and the
    households' partials on the executors with the native merge: each partition's in one
    call, then the partitions' pairwise (``treeAggregate``), so the driver collects one. The
    residents' are collected as they are (their records are numbered against every row's,
    on the driver). Households need the job's
    working CRS given (see :func:`resolved`)."""
    text, base = _job_text(job)
    firsts = first_rows(job, rows, layer, extra)
    folded = rows.mapInArrow(_fold(text, base, firsts, layer, extra), "partial binary")
    if layer not in _MERGE:
        return [bytes(r.partial) for r in folded.collect()]
    merge = _merging(_MERGE[layer])
    one = folded.rdd.mapPartitions(_merged_all(_MERGE[layer])).treeAggregate(None, merge, merge)
    return [] if one is None else [one]


def _merged_all(native_merge: str) -> Any:
    """A ``mapPartitions`` function: a partition's partials (rows of ``partial``) merged in
    one native call (``_core.<native_merge>``), each decoded once. Merging them pairwise as
    they come would decode and encode the growing merge once per Arrow batch."""

    def merged(rows: Iterator[Any]) -> Iterator[bytes]:
        parts = [bytes(r.partial) for r in rows]
        if len(parts) > 1:
            yield bytes(getattr(_core, native_merge)(parts))
        elif parts:
            yield parts[0]

    return merged


def _merging(native_merge: str) -> Any:
    """Spark's merge of two partials (or ``None``, no rows yet) by ``_core.<native_merge>``."""

    def merge(a: bytes | None, b: bytes | None) -> bytes | None:
        if a is None or b is None:
            return b if a is None else a
        return bytes(getattr(_core, native_merge)([a, b]))

    return merge


def _extent(job_text: str, base: str) -> Any:
    def extent(job: Any, b: "pa.RecordBatch", path: str) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        box = _core.household_extent(job, path)
        if box is not None:
            yield pa.RecordBatch.from_pylist([dict(zip(("w", "s", "e", "n"), box))])

    return _per_batch(job_text, base, extent)


def resolved(job: Any, households: "DataFrame | None" = None) -> Any:
    """The native job with its working CRS given: ``auto`` resolved from the small layers and
    the usable coordinates of ``households`` (gathered by the executors, the box merged by
    Spark), as one reading of the whole layer resolves it; a given CRS is kept."""
    from pyspark.sql import functions as F

    native = _native(job)
    box = None
    auto = json.loads(native.to_json())["options"]["working_crs"] == "auto"
    if households is not None and auto:
        text, base = _job_text(native)
        parts = households.mapInArrow(_extent(text, base), "w double, s double, e double, n double")
        row = parts.agg(F.min("w"), F.min("s"), F.max("e"), F.max("n")).first()
        box = None if row is None or row[0] is None else [float(v) for v in row]
    return _core.with_working_crs(native, box)


def _streets(job_text: str, base: str, name: str, keys: Any) -> Any:
    """A ``mapInArrow`` function: each batch with its rows' street keys in ``_shequ_street``
    (``keys``: the broadcast of :func:`_core.street_frame`'s keys, decoded once per worker
    under ``name``)."""

    def streets(job: Any, b: "pa.RecordBatch", path: str) -> Iterator["pa.RecordBatch"]:
        import pyarrow as pa

        k = pa.table(_core.household_streets(job, path, name, keys.value))
        yield b.append_column(STREET, k.column(0).combine_chunks())

    return _per_batch(job_text, base, streets)


def _fold_street(job_text: str, base: str, firsts: dict[int, int]) -> Any:
    """A cogrouped ``applyInArrow`` function: one street's household rows placed against its
    piece of the frame (the group's one row of the pieces' DataFrame) into one partial, and
    their homes' reach measured against the street's facilities' halo (when the job has
    ``[coverage]``)."""

    def fold(rows: "pa.Table", piece: "pa.Table") -> "pa.Table":
        import pyarrow as pa

        schema = pa.schema([("partial", pa.binary()), ("reach", pa.binary())])
        if rows.num_rows == 0:
            return schema.empty_table()
        job = _core.Job.from_json(job_text, base)
        numbers = rows.column(ROW).to_pylist()
        table = rows.drop_columns([STREET]).append_column(
            FIRST, pa.array([firsts.get(r) for r in numbers], pa.int64())
        )
        with tempfile.TemporaryDirectory(prefix="shequ-spark-") as spool:
            path = os.path.join(spool, "rows.parquet")
            _core.write_parquet(table, path)
            partial, reach = _core.fold_households_by_street(
                job,
                piece.column(PIECE)[0].as_py(),
                path,
                ROW,
                FIRST,
                piece.column(HALO)[0].as_py(),
            )
        return pa.table({"partial": [partial], "reach": [reach]}, schema=schema)

    return fold


def by_street(
    spark: "SparkSession", job: Any, rows: "DataFrame"
) -> tuple[list[bytes], list[bytes] | None, bytes]:
    """The partials of every row of numbered ``households`` (see :func:`numbered`), placed by
    street: the driver cuts the frame into one piece per street; each row is keyed to a
    street on the executors (its building's street when its building code is known, else the
    street whose box its coordinates fall in; only the streets' boxes and the buildings' codes
    are broadcast); Spark brings each street's rows and its piece together (``cogroup``),
    and each group is placed against its piece alone. The job's working CRS must be given
    (see :func:`resolved`).

    With ``[coverage]``, each piece travels with its street's halo of facilities (those
    within each type's largest threshold of the street's box), and the group also measures
    its homes' straight-line reach: the second list holds those parts (``None`` without
    ``[coverage]``), which :func:`run` gives the driver's coverage.

    The third item is the frame without its footprints (areas, and the buildings' codes,
    points and lineages), which the executors folding residents and cases get instead of
    building the frame from the job's paths."""
    from pyspark.sql.types import LongType, StructField, StructType

    native = _native(job)
    text, base = _job_text(native)
    keys, pieces, halos, people = _core.street_frame(native)
    firsts = first_rows(native, rows, "households")
    shared = spark.sparkContext.broadcast(keys)
    try:
        schema = StructType(rows.schema.fields + [StructField(STREET, LongType(), False)])
        keyed = rows.mapInArrow(_streets(text, base, _content_name(keys), shared), schema)
        each = halos if halos is not None else [None] * len(pieces)
        frame = spark.createDataFrame(
            [(k, p, h) for k, (p, h) in enumerate(zip(pieces, each))],
            f"{STREET} long, {PIECE} binary, {HALO} binary",
        )
        folded = (
            keyed.groupBy(STREET)
            .cogroup(frame.groupBy(STREET))
            .applyInArrow(_fold_street(text, base, firsts), "partial binary, reach binary")
        ).collect()
        placed = [bytes(r.partial) for r in folded]
        reach = None if halos is None else [bytes(r.reach) for r in folded]
        return placed, reach, people
    finally:
        shared.destroy()


def run(
    spark: "SparkSession",
    job: Job | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    cases: "DataFrame | None" = None,
    households: "DataFrame | None" = None,
    residents: "DataFrame | None" = None,
    registers: "Mapping[str, DataFrame] | None" = None,
    layers: "Mapping[str, DataFrame] | None" = None,
    row_column: str | None = None,
    mode: str = "broadcast",
) -> list[str]:
    """Runs ``job`` into ``out`` with its households, residents and cases from the
    DataFrames given (the others from the job's files): the same files as ``shequ run`` on
    the same rows. ``row_column``, when given, names the column of each DataFrame that holds
    its rows' numbers. Returns the files written, relative to ``out``.

    The households are placed first; the residents are then placed against them on the
    executors, which get the merged households as one broadcast (or read the job's
    household file when ``households`` is not given), and folded there by the job's
    analyses of people (special-needs labels, register links, the roster's ids).

    ``registers`` maps a ``[[registers]]`` id to a DataFrame with that register's columns
    (a Hive table of the department's list, say) in place of its file. Registers are small:
    each is collected on the driver into a Parquet file the job then reads, and the files
    travel to the executors that fold residents as one broadcast.

    ``layers`` maps a small layer (``streets``, ``communities``, ``grids``, ``buildings``,
    ``facilities``, or ``network`` for ``[coverage.network]``) to a DataFrame in place of
    its file (a Hive table of the district's grids, say): its geometry a WKB column
    (``geometry`` unless the layer's ``geometry_column`` names another), in the CRS the
    layer's ``crs`` gives, the other columns as the job maps them. Each is collected on the
    driver into a Parquet file the job reads there; the executors get the driver's frame,
    so ``households`` must be given, and ``residents`` with ``cases``.

    With ``residents`` given, an operational job's person lists (``residents``, the
    coverage and visit lists, the registers' fix list) are written by the executors, each
    file from its own residents' roster rows (:func:`write_lists`): the driver never reads
    the roster's identifiers.

    ``mode`` is how the households meet the frame, which the driver builds once from the
    small layers: ``"broadcast"`` (every executor gets the whole frame, one broadcast) or
    ``"by_street"`` (each street's rows meet only their street's piece of it: see
    :func:`by_street` and ``docs/scale-out.md``). In both modes, with ``households`` given,
    the executors folding residents and cases get the driver's frame without its
    footprints (one broadcast) instead of building it."""
    if mode not in MODES:
        raise JobError(f"mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "by_street" and households is None:
        raise JobError("mode 'by_street' places the households DataFrame: give households=")
    if layers and (households is None or (cases is not None and residents is None)):
        raise JobError(
            "layers= reach the executors only as the driver's frame: give households= "
            "(and residents= with cases=)"
        )
    spool = tempfile.mkdtemp(prefix="shequ-layers-") if layers else None
    lists = rules = None
    try:
        native = _with_layers(_native(job), layers or {}, spool or "")
        native = resolved(native, households) if households is not None else native
        native, lists = _with_registers(spark, native, registers or {})
        placed = reach = people_frame = None
        if households is not None:
            rows = numbered(households, row_column)
            if mode == "by_street":
                placed, reach, people_frame = by_street(spark, native, rows)
            else:
                piece, people_frame = _core.whole_frame(native)
                placed = _households(spark, native, rows, piece)
            # One partial: the executors placing residents and the driver's run take it.
            placed = [_merged_households(placed)]
        rules = _with_rules(spark, native) if cases is not None else None
        if residents is None:
            folded = None
            if cases is not None:
                folded = _cases(spark, native, numbered(cases, row_column), None, None, rules)
            return _core.run_with_partials(native, Path(out), placed, folded, None, reach)
        roster = numbered(residents, row_column)
        people = _residents(spark, native, roster, placed, lists, people_frame)
        folded = None
        if cases is not None:
            folded = _cases(
                spark, native, numbered(cases, row_column), people, people_frame, rules
            )
        files, kept = _core.run_deferring_lists(native, Path(out), placed, folded, people, reach)
        write_lists(spark, native, roster, kept, out)
        return files
    finally:
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)
        for spooled in (lists, rules and rules[1:]):
            if spooled is not None:
                shutil.rmtree(spooled[0], ignore_errors=True)
                spooled[1].destroy()


def write_lists(
    spark: "SparkSession", job: Any, roster: "DataFrame", lists: list[bytes], out: Any
) -> list[str]:
    """Writes the person lists ``lists`` (from ``_core.run_deferring_lists``) under ``out``
    on the executors: each file of each list is one group, which Spark brings together with
    the rows of numbered ``roster`` (see :func:`numbered`) that the file's residents came
    from (a broadcast join on the rows' numbers); the executor fills the file's identifiers
    from them (the keyed pseudonyms, and plain identifiers where the job asks for them) and
    writes it, Hive-partitioned as ``shequ run`` writes it. The driver never reads the
    roster's identifiers. The executors resolve the job's pseudonym key themselves: give
    them its secret (``spark.executorEnv.<secret_env>``, or a ``secret_file`` they see), and
    ``out`` must be a directory they see (a shared mount on a cluster). Returns the files
    written, relative to ``out``."""
    from pyspark.sql import functions as F

    if not lists:
        return []
    native = _native(job)
    text, base = _job_text(native)
    needs: set[tuple[int, int]] = set()
    parts: list[tuple[int, int, int]] = []
    expected: list[str] = []
    columns: set[str] = set()
    for li, data in enumerate(lists):
        found, wanted = _core.person_list_parts(native, data)
        columns.update(wanted)
        for pi, (file, of_file) in enumerate(found):
            needs.update((r, len(parts)) for r in of_file)
            parts.append((len(parts), li, pi))
            expected.append(file)
    shared = spark.sparkContext.broadcast(lists)
    try:
        rows = roster.select(ROW, *sorted(columns)).join(
            F.broadcast(spark.createDataFrame(sorted(needs), f"{ROW} long, {PART} long")), ROW
        )
        groups = spark.createDataFrame(parts, f"{PART} long, _shequ_list long, _shequ_index long")
        written = (
            rows.groupBy(PART)
            .cogroup(groups.groupBy(PART))
            .applyInArrow(_write_part(text, base, shared, str(Path(out).resolve())), "file string")
        ).collect()
    finally:
        shared.destroy()
    files = sorted(r.file for r in written)
    if files != sorted(expected):
        raise JobError(f"person lists: the executors wrote {files}, not {sorted(expected)}")
    return files


def _write_part(job_text: str, base: str, lists: Any, out: str) -> Any:
    """A cogrouped ``applyInArrow`` function: one file of a person list (the group's row of
    the parts' DataFrame) filled from the group's roster rows and written under ``out``."""

    def write(rows: "pa.Table", part: "pa.Table") -> "pa.Table":
        import pyarrow as pa

        if part.num_rows == 0:
            return pa.table({"file": pa.array([], pa.string())})
        job = _core.Job.from_json(job_text, base)
        li, pi = part.column("_shequ_list")[0].as_py(), part.column("_shequ_index")[0].as_py()
        with tempfile.TemporaryDirectory(prefix="shequ-spark-") as spool:
            path = os.path.join(spool, "roster.parquet")
            _core.write_parquet(rows.drop_columns([PART]), path)
            file = _core.write_person_list_part(job, lists.value[li], pi, path, ROW, out)
        return pa.table({"file": [file]})

    return write


def _cases(
    spark: "SparkSession",
    native: Any,
    rows: "DataFrame",
    people: list[bytes] | None,
    frame: bytes | None = None,
    rules: tuple[Any, str, Any] | None = None,
) -> list[bytes]:
    """The partials of every case. With the residents' partials ``people``, the executors'
    frame is the small layers (or ``frame``, the driver's without footprints: one broadcast)
    and the roster's ids made from those partials (one broadcast): no roster file is read.
    Else the frame comes from the job's paths. ``rules`` (:func:`_with_rules`) gives the
    executors the job's rule tables as read on the driver."""
    job, files = (native, None) if rules is None else (rules[0], rules[2])

    def materialised() -> tuple[Any, ...]:
        """The rule tables on this executor; no further arguments for the native calls."""
        if files is not None:
            _materialised(files.value)
        return ()

    if people is None:
        return partials(job, rows, "events", materialised)
    ids = _core.roster_ids(native, people)
    name = _content_name(ids, frame)
    shared = [spark.sparkContext.broadcast(b) if b is not None else None for b in (ids, frame)]

    def extra() -> tuple[Any, ...]:
        return (*materialised(), name, *(b.value if b is not None else None for b in shared))

    try:
        return partials(job, rows, "events", extra)
    finally:
        for b in shared:
            if b is not None:
                b.destroy()


def _content_name(*data: bytes | None) -> str:
    """A name for a frame built from ``data``: the same for the same bytes, so that the
    executors' Python workers (which outlive a run) build it once, not once per run."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for d in data:
        h.update(b"-" if d is None else len(d).to_bytes(8, "little") + d)
    return "content-" + h.hexdigest()


def _households(spark: "SparkSession", native: Any, rows: "DataFrame", piece: bytes) -> list[bytes]:
    """The partials of every row of numbered ``rows`` of households, placed on the executors
    against ``piece``, the driver's frame as one piece (one broadcast, decoded once per
    worker under its content's name): no executor reads the small layers."""
    name = _content_name(piece)
    shared = spark.sparkContext.broadcast(piece)
    try:
        return partials(native, rows, "households", lambda: (name, shared.value))
    finally:
        shared.destroy()


def _merged_households(placed: list[bytes]) -> bytes:
    """The households' partials ``placed`` as one: the one itself when Spark has merged them
    already (decoding and encoding every household again costs gigabytes at a province's
    size), else their native merge (the streets' partials, or none)."""
    return placed[0] if len(placed) == 1 else bytes(_core.merge_households(placed))


def _residents(
    spark: "SparkSession",
    native: Any,
    rows: "DataFrame",
    placed: list[bytes] | None,
    lists: tuple[str, Any] | None = None,
    frame: bytes | None = None,
) -> list[bytes]:
    """The partials of every roster row, placed against the households ``placed`` (merged
    and broadcast) or the job's household file, in the frame ``frame`` (the driver's without
    footprints, broadcast) or the job's small layers; registers collected from DataFrames
    (``lists``, see :func:`_with_registers`) are written where the job reads them first."""
    merged = _merged_households(placed) if placed is not None else None
    # The frame's name is its content's: a worker keeps one frame per job and content.
    name = _content_name(merged, frame)
    shared = [spark.sparkContext.broadcast(b) if b is not None else None for b in (merged, frame)]

    def extra() -> tuple[Any, ...]:
        if lists is not None:
            _materialised(lists[1].value)
        return (name, *(b.value if b is not None else None for b in shared))

    try:
        return partials(native, rows, "residents", extra)
    finally:
        for b in shared:
            if b is not None:
                b.destroy()
