"""Spark's local mode with the shequ wheel on its executors (issue 25, its groundwork): the
executors' Python is this test environment, Spark's jars come from the pyspark wheel and the
machine's Java 17, nothing is downloaded. One local session serves the whole module.

These tests check what the Spark stage of the pipeline will stand on: executors hand Arrow
batches to the native module without a row lost, and an executor builds the same frame from
the job's paths as the driver does."""

import json
import os
import pathlib
import shutil
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

import shequ

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data-samples" / "sample-city"


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    # The executors run this interpreter, which holds the wheel.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("shequ-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        # Several Arrow batches per partition, so partials are merged within partitions too.
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "1500")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("warehouse")))
        .getOrCreate()
    )
    yield session
    session.stop()


def test_executors_hand_arrow_batches_to_the_native_module(spark, tmp_path):
    """Each executor writes its partition's Arrow batches through shequ's own Parquet writer;
    every row arrives once, split seven ways and skewed."""
    out = str(tmp_path)
    df = spark.range(0, 20_000).selectExpr(
        "id", "cast(id % 13 as string) as grid", "id * 0.5 as x")
    skewed = df.repartition(7, (df.id < 18_000).cast("int"))

    def write(batches):
        import uuid

        import pyarrow as pa
        from shequ import _core

        for b in batches:
            path = os.path.join(out, f"{uuid.uuid4().hex}.parquet")
            n = _core.write_parquet(b, path)
            yield pa.RecordBatch.from_pydict({"rows": [n], "path": [path]})

    for frame in (df.repartition(1), df.repartition(7), skewed):
        written = frame.mapInArrow(write, "rows long, path string").collect()
        assert sum(r.rows for r in written) == 20_000
        table = pa.concat_tables(pq.read_table(r.path) for r in written)
        assert sorted(table["id"].to_pylist()) == list(range(20_000))
        assert table.column_names == ["id", "grid", "x"]
        for r in written:
            os.remove(r.path)


def test_an_executor_builds_the_drivers_frame(spark, tmp_path):
    """The small layers are paths every executor can read: a model built on an executor
    from the job counts the same rows as the driver's."""
    d = tmp_path / "city"
    shutil.copytree(SAMPLE, d)
    job_path = str(d / "job.toml")
    driver = shequ.build(shequ.Job.from_toml(job_path)).counts()

    def build(batches):
        import pyarrow as pa
        import shequ

        for _ in batches:
            counts = shequ.build(shequ.Job.from_toml(job_path)).counts()
            yield pa.RecordBatch.from_pydict({"counts": [json.dumps(counts, sort_keys=True)]})

    got = spark.range(0, 2, numPartitions=2).mapInArrow(build, "counts string").collect()
    assert len(got) == 2
    for r in got:
        assert json.loads(r.counts) == json.loads(json.dumps(driver, sort_keys=True))
    assert driver["households"]["read"] > 0


def _as_parquet(d, *names):
    """The sample city's CSV rosters `names` as Parquet files of text columns (what a Hive
    table holds), the job reading them; their numbers of rows."""
    import pandas as pd

    text = (d / "job.toml").read_text(encoding="utf-8")
    rows = []
    for name in names:
        encoding = "gb18030" if name == "residents" else "utf-8"
        table = pd.read_csv(d / f"{name}.csv", dtype=str, keep_default_na=False,
                            encoding=encoding)
        table.to_parquet(d / f"{name}.parquet", index=False)
        text = text.replace(f'path = "{name}.csv"', f'path = "{name}.parquet"')
        assert f'path = "{name}.parquet"' in text
        rows.append(len(table))
    (d / "job.toml").write_text(text, encoding="utf-8")
    return rows


def _cases_city(tmp_path):
    """The sample city with its cases as a Parquet file of text columns, and the job reading
    it."""
    d = tmp_path / "city"
    shutil.copytree(SAMPLE, d)
    (n,) = _as_parquet(d, "events")
    return d, n


def _reference(d, out):
    """`shequ run`'s Parquet outputs and manifest for the job in `d`."""
    import subprocess

    subprocess.run(
        [os.environ.get("SHEQU_BIN", "shequ"), "run", str(d / "job.toml"), "--out", str(out)],
        check=True, capture_output=True,
    )
    return _tables(out)


def _assert_same(out, want, want_manifest, what):
    got, manifest = _tables(out)
    assert sorted(got) == sorted(want), what
    for name, table in want.items():
        assert got[name].equals(table), f"{what}: {name}"
    for key in ("counts", "issues_by_kind", "events", "privacy"):
        assert manifest[key] == want_manifest[key], f"{what}: {key}"


def _tables(out):
    """Every Parquet output of a run, by path; the manifest's counts and issues."""
    tables = {
        str(p.relative_to(out)): pq.read_table(p)
        for p in sorted(out.rglob("*.parquet"))
    }
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return tables, manifest


def test_spark_runs_the_sample_cases_as_shequ_run_does(spark, tmp_path):
    """The sample city's cases as a Spark DataFrame, split one way, by street, seven random
    ways and skewed: every output table equals `shequ run`'s (values, suppression, quality),
    the planted duplicate case ids reported as one machine reports them."""
    from pyspark.sql import functions as F

    import shequ.spark

    d, n = _cases_city(tmp_path)
    want, want_manifest = _reference(d, tmp_path / "ref")
    assert any(k.startswith("events/") for k in want)

    cases = shequ.spark.numbered(spark.read.parquet(str(d / "events.parquet")))
    splits = {
        "one partition": cases.repartition(1),
        "by building code's street prefix": cases.repartition(
            5, F.substring(F.col("楼栋编码"), 1, 9)),
        "seven random": cases.repartition(7),
        "skewed": cases.repartition(7, (F.col(shequ.spark.ROW) < n - 50).cast("int")),
    }
    for what, df in splits.items():
        out = tmp_path / what.replace(" ", "_").replace("'", "")
        files = shequ.spark.run(spark, d / "job.toml", out, cases=df,
                                row_column=shequ.spark.ROW)
        assert "manifest.json" in files, what
        _assert_same(out, want, want_manifest, what)


def _in_two_partitions(split, a, b):
    """Whether rows `a` and `b` of a numbered DataFrame are in different partitions."""
    import shequ.spark

    where = {
        r[shequ.spark.ROW]: r.p
        for r in split.selectExpr(shequ.spark.ROW, "spark_partition_id() as p")
        .where(f"{shequ.spark.ROW} in ({a}, {b})").collect()
    }
    return where[a] != where[b]


def _repeats(quality, layer):
    """The quality report's repeated-id entries of `layer`."""
    import pyarrow.compute as pc

    q = quality.filter(pc.and_(pc.equal(quality["layer"], layer),
                               pc.equal(quality["kind"], "duplicate_id")))
    return q.select(["index", "id", "severity", "detail"]).to_pylist()


def _households_city(tmp_path):
    """The sample city with its households and cases as Parquet files of text columns."""
    d = tmp_path / "city"
    shutil.copytree(SAMPLE, d)
    return d, *_as_parquet(d, "households", "events")


def test_spark_places_the_sample_households_as_shequ_run_does(spark, tmp_path):
    """The sample's households as a DataFrame, split one way, by street (the building code's
    street prefix), seven random ways and skewed, with the cases as a DataFrame too: the
    working CRS is resolved over the whole layer, and every output table equals `shequ
    run`'s (values, suppression, quality, the registers' and events' tables)."""
    from pyspark.sql import functions as F

    import shequ.spark

    d, n, _ = _households_city(tmp_path)
    want, want_manifest = _reference(d, tmp_path / "ref")
    assert any(k.startswith("registers/") for k in want)
    households = shequ.spark.numbered(spark.read.parquet(str(d / "households.parquet")))
    cases = shequ.spark.numbered(spark.read.parquet(str(d / "events.parquet"))).repartition(3)
    splits = {
        "one partition": households.repartition(1),
        "by street": households.repartition(
            4, F.substring(F.col("building_code"), 1, 9)),
        "seven random": households.repartition(7),
        "skewed": households.repartition(7, (F.col(shequ.spark.ROW) < n - 40).cast("int")),
    }
    for what, df in splits.items():
        out = tmp_path / what.replace(" ", "_")
        shequ.spark.run(spark, d / "job.toml", out, households=df, cases=cases,
                        row_column=shequ.spark.ROW)
        _assert_same(out, want, want_manifest, what)


def test_a_household_id_repeated_across_two_partitions_is_reported_as_on_one_machine(
        spark, tmp_path):
    """The sample's planted repeated household id (data rows 0 and 4007) with its two rows
    in two partitions, numbered by shequ.spark: the second row is rejected as repeating the
    first, exactly as `shequ run` reports it."""
    import shequ.spark

    d, _, _ = _households_city(tmp_path)
    want, _ = _reference(d, tmp_path / "ref")
    rows = shequ.spark.numbered(spark.read.parquet(str(d / "households.parquet")))
    split = rows.repartitionByRange(2, shequ.spark.ROW)
    assert _in_two_partitions(split, 0, 4007)
    job = shequ.spark.resolved(d / "job.toml", split)
    assert shequ.spark.first_rows(job, split, "households") == {4007: 0}
    out = tmp_path / "spark"
    shequ.spark.run(spark, d / "job.toml", out, households=split, row_column=shequ.spark.ROW)
    got = _repeats(pq.read_table(out / "quality.parquet"), "households")
    assert got == _repeats(want["quality.parquet"], "households")
    assert [(r["index"], r["detail"]) for r in got] == [(4007, "id already used by row 0")]


def test_a_case_id_repeated_across_two_partitions_is_reported_as_on_one_machine(spark, tmp_path):
    """The sample's planted duplicate case id (data rows 10 and 5834) with its two rows in
    two partitions, and rows numbered by shequ.spark itself (no row column): the second row
    is rejected as repeating the first, as `shequ run` reports it."""
    import shequ.spark

    d, _ = _cases_city(tmp_path)
    cases = spark.read.parquet(str(d / "events.parquet"))
    numbered = shequ.spark.numbered(cases)
    assert sorted(numbered.columns) == sorted(cases.columns + [shequ.spark.ROW])
    split = numbered.repartitionByRange(2, shequ.spark.ROW)
    assert _in_two_partitions(split, 10, 5834)
    assert shequ.spark.first_rows(d / "job.toml", split) == {5834: 10}
    out = tmp_path / "spark"
    shequ.spark.run(spark, d / "job.toml", out, cases=split, row_column=shequ.spark.ROW)
    dup = _repeats(pq.read_table(out / "quality.parquet"), "events")
    assert [(r["index"], r["detail"]) for r in dup] == [(5834, "the id repeats row 10")]


def _roster_city(tmp_path):
    """The sample city with its households, residents and cases as Parquet files."""
    d = tmp_path / "city"
    shutil.copytree(SAMPLE, d)
    return d, *_as_parquet(d, "households", "residents", "events")


def test_the_by_street_mode_places_a_city_of_three_streets_as_shequ_run_does(
    spark, tmp_path, monkeypatch
):
    """The by-street mode: a generated city of three streets, its households keyed to streets
    on the executors and each street's rows placed against its own piece of the frame (the
    pieces a Spark DataFrame, cogrouped with the rows), split one way, seven random ways and
    skewed, beside residents and cases as DataFrames; each street's homes' reach measured
    against its halo of facilities. The residents and cases are folded with the buildings'
    file moved away: their executors get the driver's frame without footprints. Every output
    table equals `shequ run`'s, and the rows met more than one piece."""
    from pyspark.sql import functions as F

    import shequ.spark

    d = tmp_path / "city"
    shequ.sample(d, streets=3)
    n, _, _ = _as_parquet(d, "households", "residents", "events")
    want, want_manifest = _reference(d, tmp_path / "ref")
    assert len(want["streets.parquet"]) == 3
    read = spark.read.parquet
    households = shequ.spark.numbered(read(str(d / "households.parquet")))
    residents = shequ.spark.numbered(read(str(d / "residents.parquet"))).repartition(3)
    cases = shequ.spark.numbered(read(str(d / "events.parquet"))).repartition(2)
    job = shequ.spark.resolved(d / "job.toml", households)
    keys, pieces, halos, frame = shequ._core.street_frame(job)
    assert len(pieces) == 4 and len(set(pieces)) == 4
    assert halos is not None and len(halos) == 4, "one facilities' halo per piece"
    _folded_without(monkeypatch, [d / "buildings.geojson"], tmp_path / "away")
    splits = {
        "one partition": households.repartition(1),
        "seven random": households.repartition(7),
        "skewed": households.repartition(7, (F.col(shequ.spark.ROW) < n - 40).cast("int")),
    }
    for what, df in splits.items():
        placed, reach, people = shequ.spark.by_street(spark, job, df)
        assert len(placed) >= 3 and reach is not None and len(reach) == len(placed), what
        assert people == frame, what
        if what == "one partition":
            # The driver's run straight from the parts: outputs equal, and the lists given are
            # emptied as they are decoded, so their bytes are not held beside the run.
            out = tmp_path / "from-parts"
            merged = [shequ._core.merge_households(placed)]
            shequ._core.run_with_partials(job, out, merged, None, None, reach)
            _assert_same(out, want, want_manifest, "by street, from the parts")
            assert merged == [None] and reach == [None] * len(placed)
        out = tmp_path / what.replace(" ", "_")
        shequ.spark.run(spark, d / "job.toml", out, households=df, residents=residents,
                        cases=cases, row_column=shequ.spark.ROW, mode="by_street")
        _assert_same(out, want, want_manifest, f"by street, {what}")


def _folded_without(monkeypatch, files, away, stage="_residents", finish="run_deferring_lists"):
    """Each run's folds from ``stage`` on (``shequ.spark._residents``: the residents and
    cases; ``_households``: every roster; ``_cases``) done with ``files`` moved into the
    directory ``away``, and put back for the driver's finish (``_core.<finish>``, which
    builds the whole frame): a fold that read one of them would fail."""
    import shequ.spark

    fold, native_finish = getattr(shequ.spark, stage), getattr(shequ._core, finish)
    away.mkdir(exist_ok=True)

    def without(*args, **kwargs):
        for f in files:
            f.rename(away / f.name)
        return fold(*args, **kwargs)

    def back(*args, **kwargs):
        for f in files:
            (away / f.name).rename(f)
        return native_finish(*args, **kwargs)

    monkeypatch.setattr(shequ.spark, stage, without)
    monkeypatch.setattr(shequ._core, finish, back)


def test_an_unknown_mode_or_by_street_without_households_is_a_job_error(spark, tmp_path):
    import shequ.spark
    from shequ.errors import JobError

    with pytest.raises(JobError, match="broadcast, by_street"):
        shequ.spark.run(spark, SAMPLE / "job.toml", tmp_path / "out", mode="halo")
    with pytest.raises(JobError, match="households="):
        shequ.spark.run(spark, SAMPLE / "job.toml", tmp_path / "out", mode="by_street")
    assert not (tmp_path / "out").exists()


def test_spark_places_and_labels_the_sample_roster_as_shequ_run_does(
    spark, tmp_path, monkeypatch
):
    """The sample's residents as a DataFrame beside its households and cases: placed against
    the broadcast households and folded by the analyses of people on the executors, split
    one way, by street (their household's building code), seven random ways and skewed.
    Every output table equals `shequ run`'s: special needs, coverage, the registers' links
    and reconciliation, the visits, the quality report. The executors get the driver's
    frame: they fold every roster with the small layers' files moved away."""
    from pyspark.sql import functions as F

    import shequ.spark

    d, _, n, _ = _roster_city(tmp_path)
    want, want_manifest = _reference(d, tmp_path / "ref")
    assert any(k.startswith("special_needs/") for k in want)
    assert any(k.startswith("registers/") for k in want)
    read = spark.read.parquet
    households = shequ.spark.numbered(read(str(d / "households.parquet"))).repartition(3)
    cases = shequ.spark.numbered(read(str(d / "events.parquet"))).repartition(2)
    residents = shequ.spark.numbered(read(str(d / "residents.parquet")))
    street = households.select(F.col("household_id").alias("户编号"),
                               F.substring("building_code", 1, 9).alias("_street"))
    street = street.dropDuplicates(["户编号"])  # (the planted repeated household id)
    by_street = residents.join(street, "户编号", "left").repartition(4, "_street").drop("_street")
    splits = {
        "one partition": residents.repartition(1),
        "by street": by_street,
        "seven random": residents.repartition(7),
        "skewed": residents.repartition(7, (F.col(shequ.spark.ROW) < n - 60).cast("int")),
    }
    small = ["communities", "grids", "buildings", "facilities", "paths"]
    _folded_without(monkeypatch, [d / f"{f}.geojson" for f in small], tmp_path / "away",
                    "_households")
    for what, df in splits.items():
        out = tmp_path / what.replace(" ", "_")
        shequ.spark.run(spark, d / "job.toml", out, households=households, residents=df,
                        cases=cases, row_column=shequ.spark.ROW)
        _assert_same(out, want, want_manifest, what)


def test_a_resident_id_repeated_across_two_partitions_is_reported_as_on_one_machine(
        spark, tmp_path):
    """The sample's planted repeated resident id (data rows 0 and 10735) in two partitions,
    with the roster's households from the job's file: rejected as on one machine."""
    import shequ.spark

    d, _, _, _ = _roster_city(tmp_path)
    want, _ = _reference(d, tmp_path / "ref")
    rows = shequ.spark.numbered(spark.read.parquet(str(d / "residents.parquet")))
    split = rows.repartitionByRange(2, shequ.spark.ROW)
    assert _in_two_partitions(split, 0, 10735)
    out = tmp_path / "spark"
    shequ.spark.run(spark, d / "job.toml", out, residents=split, row_column=shequ.spark.ROW)
    got = _repeats(pq.read_table(out / "quality.parquet"), "residents")
    assert got == _repeats(want["quality.parquet"], "residents")
    assert [(r["index"], r["detail"]) for r in got] == [(10735, "id already used by row 0")]


def _street_worker_city(tmp_path):
    """The sample city with its rosters as Parquet, the job made the street office's
    operational run: named lists of the whole street, partitioned by community, plain
    identifiers asked for (so the roster's names, ID numbers and phones travel)."""
    d, _, n, _ = _roster_city(tmp_path)
    text = (d / "job.toml").read_text(encoding="utf-8")
    research = 'output = "research"\nk = 5\n'
    assert research in text and "[output]\nmap = true\n" in text
    text = text.replace(research, 'output = "operational"\nstreet = "500103001"\n'
                        'secret_env = "SHEQU_SECRET"\nplain_identifiers = true\n')
    text = text.replace("[output]\nmap = true\n", "[output]\nmap = true\npartitioned = true\n")
    (d / "job.toml").write_text(text, encoding="utf-8")
    return d, n


def test_the_executors_write_the_person_lists_from_their_own_roster_rows(
        spark, tmp_path, monkeypatch):
    """An operational run of one street: its person lists (residents, coverage's residents,
    the visit lists, the registers' fix list) are filled and written by the executors, each
    file from the roster rows Spark brought it, Hive-partitioned as `shequ run` writes them.
    Broadcast (residents in seven random partitions) and by street: every table equals
    `shequ run`'s, row for row, and the driver never reads the job's roster file (it is
    moved away before the Spark runs)."""
    import shequ.spark

    monkeypatch.setenv("SHEQU_SECRET", "street-office-secret")
    d, _ = _street_worker_city(tmp_path)
    want, want_manifest = _reference(d, tmp_path / "ref")
    lists = ["residents/", "coverage/residents/", "events/visit_lists.parquet",
             "registers/fix_list.parquet"]
    for name in lists:
        assert any(k.startswith(name) for k in want), name
    communities = {k.split("/community_id=")[1].split("/")[0]
                   for k in want if k.startswith("residents/")}
    assert len(communities) > 1, "the street's residents in several partitions"
    names = pa.concat_tables(t for k, t in want.items() if k.startswith("residents/"))
    assert names.num_rows > 1000 and names.column("name").null_count < names.num_rows
    # The DataFrame reads its own copy; the job's roster file is gone for the driver.
    shutil.move(d / "residents.parquet", d / "roster-table.parquet")
    monkeypatch.setitem(spark.sparkContext.environment, "SHEQU_SECRET", "street-office-secret")
    read = spark.read.parquet
    households = shequ.spark.numbered(read(str(d / "households.parquet")))
    residents = shequ.spark.numbered(read(str(d / "roster-table.parquet")))
    cases = shequ.spark.numbered(read(str(d / "events.parquet"))).repartition(2)
    for mode, rows in (("broadcast", residents.repartition(7)),
                       ("by_street", residents.repartition(3))):
        out = tmp_path / mode
        files = shequ.spark.run(spark, d / "job.toml", out, households=households.repartition(3),
                                residents=rows, cases=cases, row_column=shequ.spark.ROW,
                                mode=mode)
        _assert_same(out, want, want_manifest, mode)
        written = {str(p.relative_to(out)) for p in out.rglob("*.parquet")}
        assert {f for f in files if f.endswith(".parquet")} == written, mode


def _registers_as_parquet(d):
    """The job's register spreadsheets as Parquet tables of text (the rows below the header
    row, the row holding every column the job maps), the job reading them; their paths by
    register id."""
    import tomllib

    import openpyxl
    import pandas as pd

    text = (d / "job.toml").read_text(encoding="utf-8")
    paths = {}
    for k, reg in enumerate(tomllib.loads(text)["registers"]):
        wanted = set(reg["columns"].values()) | set(reg.get("fields", {}).values())
        sheet = openpyxl.load_workbook(d / reg["path"], read_only=True).worksheets[0]
        rows = [["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)]
        top = next(i for i, r in enumerate(rows) if wanted <= set(r))
        header = rows[top]
        table = pd.DataFrame([r[:len(header)] for r in rows[top + 1:]], columns=header)
        path = d / "registers" / f"register-{k}.parquet"
        table.to_parquet(path, index=False)
        assert f'path = "{reg["path"]}"' in text
        text = text.replace(f'path = "{reg["path"]}"', f'path = "registers/{path.name}"')
        paths[reg["id"]] = path
    (d / "job.toml").write_text(text, encoding="utf-8")
    return paths


def test_registers_given_as_dataframes_link_as_shequ_run_links_them(spark, tmp_path):
    """The sample's four departmental registers as DataFrames (their files removed), beside
    the residents as a DataFrame (the executors link them): the registers' tables, the special needs they feed
    and the quality report equal `shequ run`'s on the same registers; an id that names no
    register is a JobError; an executor writes a collected register once, where the job
    reads it."""
    import shequ.spark
    from shequ.errors import JobError

    d, _, _, _ = _roster_city(tmp_path)
    paths = _registers_as_parquet(d)
    want, want_manifest = _reference(d, tmp_path / "ref")
    assert any(k.startswith("registers/") for k in want)
    import pandas as pd

    # In memory, and the files gone: only the DataFrames can give the registers now.
    registers = {rid: spark.createDataFrame(pd.read_parquet(p)).repartition(2)
                 for rid, p in paths.items()}
    for p in paths.values():
        p.unlink()
    residents = shequ.spark.numbered(spark.read.parquet(str(d / "residents.parquet")))
    out = tmp_path / "spark"
    shequ.spark.run(spark, d / "job.toml", out, residents=residents.repartition(3),
                    registers=registers, row_column=shequ.spark.ROW)
    _assert_same(out, want, want_manifest, "registers as DataFrames")
    with pytest.raises(JobError, match="no_such_register"):
        shequ.spark.run(spark, d / "job.toml", tmp_path / "bad",
                        registers={"no_such_register": registers[next(iter(paths))]})
    target = tmp_path / "executor" / "register-0.parquet"
    shequ.spark._materialised({str(target): b"PAR1"})
    assert target.read_bytes() == b"PAR1"
    target.write_bytes(b"kept")
    shequ.spark._materialised({str(target): b"PAR1"})
    assert target.read_bytes() == b"kept"


def test_outputs_are_saved_as_spark_tables_with_geometry(spark, tmp_path, monkeypatch):
    """A grid worker's run with Hive-partitioned rosters, saved as Spark tables: every output
    is a table with its rows; geometry in EPSG:4326 is Spark's GEOMETRY type and holds the
    file's WKB; the partitioned roster keeps its partitions and its codes as text."""
    import pyarrow.dataset as ds
    from pyspark.sql import functions as F
    from pyspark.sql.types import GeometryType

    import shequ.spark

    d = tmp_path / "city"
    shutil.copytree(SAMPLE, d)
    job = d / "job-grid-worker.toml"
    text = job.read_text(encoding="utf-8").replace("[output]\nmap = true",
                                                   "[output]\npartitioned = true")
    assert "partitioned = true" in text
    job.write_text(text, encoding="utf-8")
    monkeypatch.setenv("SHEQU_SECRET", "a test secret, not for production")
    out = tmp_path / "out"
    import subprocess

    subprocess.run([os.environ.get("SHEQU_BIN", "shequ"), "run", str(job), "--out", str(out)],
                   check=True, capture_output=True)
    saved = shequ.spark.save_tables(spark, out, prefix="gw_")
    partitioned = [rel for rel, path in shequ._spark_tables._tables_in(out) if path.is_dir()]
    assert partitioned, "the job writes Hive-partitioned rosters"
    assert saved["grids.parquet"] == "gw_grids"
    for rel, name in saved.items():
        path = out / rel
        want = ds.dataset(path, format="parquet", partitioning="hive").count_rows()
        assert spark.table(name).count() == want, rel
    grids = spark.table("gw_grids")
    assert isinstance(grids.schema["geometry"].dataType, GeometryType)
    wkb = {r.grid_id: bytes(r.wkb) for r in
           grids.select("grid_id", F.st_asbinary("geometry").alias("wkb")).collect()}
    file = pq.read_table(out / "grids.parquet")
    assert wkb == dict(zip(file["grid_id"].to_pylist(), file["geometry"].to_pylist()))
    rel = partitioned[0]
    keys = shequ._spark_tables._partition_keys(out / rel)
    table = spark.table(saved[rel])
    for k in keys:
        assert dict(table.dtypes)[k] == "string"
    parts = {tuple(r) for r in spark.sql(f"SHOW PARTITIONS {saved[rel]}").collect()}
    on_disk = {p.relative_to(out / rel).as_posix() for p in (out / rel).glob("/".join(["*"] * len(keys)))}
    assert {p[0] for p in parts} == on_disk


def _layers_as_parquet(d, *names):
    """The sample's spatial layers ``names`` as Parquet files of WKB geometry without `geo`
    metadata (what a Hive table holds), the job reading them; each as an Arrow table."""
    import geopandas as gpd

    text = (d / "job.toml").read_text(encoding="utf-8")
    tables = {}
    for name in names:
        frame = gpd.read_file(d / f"{name}.geojson").to_wkb()
        tables[name] = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(tables[name], d / f"{name}.parquet")
        old = f'path = "{name}.geojson"'
        assert old in text
        text = text.replace(
            old, f'path = "{name}.parquet"\ngeometry_column = "geometry"\ncrs = "OGC:CRS84"'
        )
    (d / "job.toml").write_text(text, encoding="utf-8")
    return tables


def test_small_layers_given_as_spark_tables_run_as_their_files_do(spark, tmp_path):
    """The sample's grids and buildings as Spark tables (WKB geometry), beside its rosters as
    DataFrames: collected on the driver into the job, they give every output table of
    `shequ run` on the same rows read from their Parquet files, which are deleted first, so
    only the tables can stand for them. A roster named as a layer, and layers without the
    households, are job errors."""
    import shequ.spark
    from shequ.errors import JobError

    d, _, _, _ = _roster_city(tmp_path)
    tables = _layers_as_parquet(d, "grids", "buildings")
    want, want_manifest = _reference(d, tmp_path / "ref")
    layers = {n: spark.createDataFrame(t.to_pandas()) for n, t in tables.items()}
    for name in tables:
        (d / f"{name}.parquet").unlink()
    read = spark.read.parquet
    households = shequ.spark.numbered(read(str(d / "households.parquet"))).repartition(3)
    residents = shequ.spark.numbered(read(str(d / "residents.parquet"))).repartition(2)
    cases = shequ.spark.numbered(read(str(d / "events.parquet")))
    out = tmp_path / "out"
    shequ.spark.run(spark, d / "job.toml", out, households=households, residents=residents,
                    cases=cases, layers=layers, row_column=shequ.spark.ROW)
    _assert_same(out, want, want_manifest, "grids and buildings as Spark tables")
    with pytest.raises(JobError, match="give one of"):
        shequ.spark.run(spark, d / "job.toml", tmp_path / "no", households=households,
                        residents=residents, layers={"residents": residents})
    with pytest.raises(JobError, match="households="):
        shequ.spark.run(spark, d / "job.toml", tmp_path / "no", layers=layers)
    assert not (tmp_path / "no").exists()


def test_the_cases_rule_tables_reach_the_executors_from_the_driver(spark, tmp_path, monkeypatch):
    """A job with its own deadline table (stricter than the bundled one: it changes the
    events tables): the driver reads it once and the executors folding cases get it (one
    broadcast), so the cases fold with the job's file moved away, and every output equals
    `shequ run`'s."""
    import shequ.spark

    d, _ = _cases_city(tmp_path)
    plain, _ = _reference(d, tmp_path / "plain")
    (d / "deadlines.csv").write_text(
        "category,subcategory,step,limit,unit,source\n*,*,handled,1,hours,test\n",
        encoding="utf-8",
    )
    text = (d / "job.toml").read_text(encoding="utf-8")
    assert "[events]\n" in text
    text = text.replace("[events]\n", '[events]\ndeadlines = "deadlines.csv"\n')
    (d / "job.toml").write_text(text, encoding="utf-8")
    want, want_manifest = _reference(d, tmp_path / "ref")
    assert any(not want[k].equals(plain[k]) for k in want if k.startswith("events/"))
    cases = shequ.spark.numbered(spark.read.parquet(str(d / "events.parquet"))).repartition(3)
    _folded_without(monkeypatch, [d / "deadlines.csv"], tmp_path / "away", "_cases",
                    "run_with_partials")
    out = tmp_path / "out"
    shequ.spark.run(spark, d / "job.toml", out, cases=cases, row_column=shequ.spark.ROW)
    _assert_same(out, want, want_manifest, "the job's deadline table")

