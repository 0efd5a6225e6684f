"""The Python package `shequ` (the installed wheel): every API call, the interchange paths
(pyarrow, polars, GeoPandas, DuckDB), error mapping, Ctrl-C, and equality with the CLI."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import geopandas as gpd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shequ

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data-samples" / "sample-city"
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))


@pytest.fixture(scope="module")
def job():
    return shequ.Job.from_toml(SAMPLE / "job.toml")


@pytest.fixture(scope="module")
def model(job):
    return shequ.build(job)


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    subprocess.run([BIN, "run", "--quiet", str(SAMPLE / "job.toml"), "--out", str(d)], check=True)
    return d


def cli_table(out, name):
    """A CLI output table as polars, without the Parquet-only bbox covering column."""
    t = pq.read_table(out / f"{name}.parquet")
    if "bbox" in t.column_names:
        t = t.drop_columns(["bbox"])
    return pl.from_arrow(t)


# -- results equal the CLI's -------------------------------------------------------------------

TABLES = [
    "streets",
    "communities",
    "grids",
    "facilities",
    "quality",
    "special_needs/street",
    "special_needs/community",
    "special_needs/grid",
    "special_needs/suppression",
    "coverage/grid",
    "coverage/community",
    "coverage/blind_spots",
    "coverage/equity",
    "coverage/lorenz",
    "coverage/rules",
    "coverage/siting",
    "coverage/suppression",
]


@pytest.mark.parametrize("name", TABLES)
def test_every_table_equals_the_cli_output(model, cli_out, name):
    mine = model.table(name)
    theirs = cli_table(cli_out, name)
    assert mine.columns == theirs.columns
    assert mine.height == theirs.height > 0
    assert mine.equals(theirs), name


def test_named_accessors_match_tables(model, cli_out):
    assert model.grids.equals(cli_table(cli_out, "grids"))
    assert model.communities.height == 7 and model.streets.height == 1
    assert model.facilities.equals(cli_table(cli_out, "facilities"))
    assert model.quality.equals(cli_table(cli_out, "quality"))
    assert model.special_needs("grid").equals(cli_table(cli_out, "special_needs/grid"))
    assert model.special_needs(table="suppression").height > 0
    assert model.coverage("community").equals(cli_table(cli_out, "coverage/community"))
    assert model.coverage(table="blind_spots").equals(cli_table(cli_out, "coverage/blind_spots"))
    assert model.site().equals(cli_table(cli_out, "coverage/siting"))
    summary = model.summary("special_needs/summary.md")
    assert summary == (cli_out / "special_needs" / "summary.md").read_text()
    assert model.summary("coverage/summary.md") == (cli_out / "coverage" / "summary.md").read_text()


def test_model_facts(model):
    assert model.working_crs.startswith("EPSG:45")
    assert model.levels[:3] == ["streets", "communities", "grids"]
    counts = model.counts()
    for layer, c in counts.items():
        assert c["read"] == c["placed"] + c["rejected"], layer
    assert counts["households"]["read"] > 3000
    assert "Model(" in repr(model) and "28 grids" in repr(model)
    assert model.job.source == SAMPLE / "job.toml"


def test_write_matches_the_cli(model, cli_out, tmp_path):
    files = model.write(tmp_path)
    cli_manifest = json.loads((cli_out / "manifest.json").read_text())
    assert sorted(files) == sorted(cli_manifest["outputs"])
    for name in ["grids", "special_needs/grid", "coverage/grid"]:
        assert cli_table(tmp_path, name).equals(cli_table(cli_out, name))
    assert (tmp_path / "map.html").is_file()


# -- analyses with options ---------------------------------------------------------------------


def test_special_needs_options_and_levels(model):
    grid = model.special_needs("grid")
    assert grid.height == 28 and "disabled" in grid.columns
    pairs = [["disabled", "unemployed"]]
    only = model.special_needs("community", co_occurrence=pairs)
    assert only.height == 7
    assert "disabled_and_unemployed" in only.columns
    assert "elderly_alone_and_disabled" not in only.columns
    # The default job's table is still there afterwards (the analyses start afresh each time).
    assert model.special_needs("grid").equals(grid)


def test_coverage_accessibility_and_siting_options(model):
    acc = model.accessibility("grid")
    assert isinstance(acc, shequ.GeoFrame)
    scores = [c for c in acc.columns if c.endswith("_2sfca")]
    assert scores and acc.height == 28
    assert any(c.endswith("_g2sfca") for c in acc.columns)
    picks = model.site(k=2)
    greedy = picks.filter(pl.col("method") == "greedy")
    assert greedy.height <= 2 and greedy["pick"].to_list() == list(range(1, greedy.height + 1))
    more = model.site(k=4).filter(pl.col("method") == "greedy")
    assert more.height >= greedy.height
    # The greedy picks are a prefix of each other.
    assert more.head(greedy.height)["site_id"].to_list() == greedy["site_id"].to_list()


def test_privacy_by_default_and_explicit_plain_ids(model):
    h = model.households
    plain = model.household_table("plain")
    assert h.height == plain.height > 3000
    assert h["household_id"].str.contains(r"\*").all()
    assert not plain["household_id"].str.contains(r"\*").any()
    # Same rows otherwise.
    assert h.drop("household_id").equals(plain.drop("household_id"))
    with pytest.raises(shequ.PrivacyError, match="pseudonym key"):
        model.household_table("pseudonym")
    with pytest.raises(ValueError, match="identifiers must be"):
        model.household_table("raw")
    # Research outputs (the sample job's and the default) have no person-level tables.
    assert "households" not in model.tables()
    assert model.buildings.height > 0  # the sample job's finest research level is the building
    coarse = model.tables(privacy={"output": "research", "finest": "grid"})
    assert "buildings" not in coarse and "grids" in coarse
    coarse_model = shequ.build(model.job.replace(privacy={"output": "research", "finest": "grid"}))
    with pytest.raises(shequ.PrivacyError, match="buildings"):
        _ = coarse_model.buildings


def test_operational_job_gives_pseudonymous_lists(model, tmp_path, monkeypatch):
    monkeypatch.setenv("SHEQU_TEST_KEY", "a secret of at least sixteen bytes")
    grid = model.grids["grid_id"][0]
    privacy = {"output": "operational", "grid": grid, "secret_env": "SHEQU_TEST_KEY"}
    lists = model.table("households", privacy=privacy)
    assert lists.height > 0 and (lists["grid_id"] == grid).all()
    assert "household_id" not in lists.columns
    keys = lists["household_key"]
    assert keys.str.len_chars().eq(24).all()
    # The same keyed pseudonyms as the households table gives with identifiers="pseudonym".
    op = shequ.build(model.job.replace(privacy=privacy))
    pseudo = op.household_table("pseudonym")
    assert set(keys) <= set(pseudo["household_id"])
    # Buildings are published in operational runs.
    assert model.table("buildings", privacy=privacy).height > 0


def test_write_honours_the_partitioned_override(model, tmp_path, monkeypatch):
    # Issue 20, item 10: `output={"partitioned": True}` given to write() was ignored (the
    # writers read the model's own job) while `map` was honoured.
    monkeypatch.setenv("SHEQU_TEST_KEY", "a secret of at least sixteen bytes")
    street = model.streets["street_id"][0]
    privacy = {"output": "operational", "street": street, "secret_env": "SHEQU_TEST_KEY"}
    op = shequ.build(model.job.replace(privacy=privacy))
    flat = op.write(tmp_path / "flat", output={"map": False})
    assert "residents.parquet" in flat and not (tmp_path / "flat" / "map.html").exists()
    parts = op.write(tmp_path / "parts", output={"map": False, "partitioned": True})
    assert "residents.parquet" not in parts
    assert (tmp_path / "parts" / "residents" / f"street_id={street}").is_dir()
    n = pq.read_table(tmp_path / "flat" / "residents.parquet").num_rows
    assert pq.ParquetDataset(tmp_path / "parts" / "residents").read().num_rows == n


# -- interchange ----------------------------------------------------------------------------


def test_tables_are_polars_and_speak_the_arrow_pycapsule_interface(model):
    grids = model.grids
    assert isinstance(grids, pl.DataFrame) and isinstance(grids, shequ.GeoFrame)
    assert hasattr(grids, "__arrow_c_stream__")
    t = pa.table(grids)
    assert t.num_rows == 28
    field = t.schema.field("geometry")
    assert field.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
    ext = json.loads(field.metadata[b"ARROW:extension:metadata"])
    assert ext["crs_type"] == "projjson" and ext["crs"]["id"]["code"] == 4326
    back = pl.DataFrame(grids)
    assert back.drop("geometry").equals(grids.drop("geometry"))
    q = model.quality
    assert pa.table(q).num_rows == q.height


def test_native_tables_export_without_copying(model):
    tables, _ = model._core.outputs()
    native = tables["grids"]
    a = pa.table(native)
    b = pa.table(native)
    # Two imports of the same Rust table share the Rust buffers: no copy was made.
    col_a = a.column("grid_id").chunk(0).buffers()
    col_b = b.column("grid_id").chunk(0).buffers()
    assert col_a[2].address == col_b[2].address
    # polars imports it zero-copy too, and equals what pyarrow sees.
    assert pl.DataFrame(native).drop("geometry").equals(pl.from_arrow(a).drop("geometry"))


def test_to_geopandas_has_the_crs_and_equals_the_cli(model, cli_out):
    gdf = model.grids.to_geopandas()
    assert isinstance(gdf, gpd.GeoDataFrame)
    assert gdf.crs.to_epsg() == 4326
    theirs = gpd.read_parquet(cli_out / "grids.parquet")
    assert list(gdf["grid_id"]) == list(theirs["grid_id"])
    assert gdf.geometry.geom_equals_exact(theirs.geometry, tolerance=0).all()


def test_duckdb_reads_tables_directly(model):
    grids = model.grids
    con = duckdb.connect()
    n = con.sql("select count(*) from grids").fetchone()[0]
    assert n == 28
    by_community = con.sql(
        "select community_id, sum(households) as h from grids group by 1 order by 1"
    ).pl()
    assert by_community.height == 7


def test_geoframe_keeps_working_through_polars(model):
    g = model.grids.filter(pl.col("households") > 0)
    assert isinstance(g, pl.DataFrame) and g.height > 0
    again = shequ.GeoFrame.of(g, crs=model.grids.crs)
    assert again.to_geopandas().crs.to_epsg() == 4326
    with pytest.raises(ValueError, match="no column"):
        shequ.GeoFrame.of(pl.DataFrame({"a": [1]}))


# -- jobs from dicts and in-memory data -------------------------------------------------------


def test_job_from_dict_and_kwargs(job):
    d = job.to_dict()
    again = shequ.Job.from_dict(d, base_dir=SAMPLE)
    assert again.to_dict() == d
    kw = shequ.Job(base_dir=SAMPLE, **d)
    assert kw.to_dict() == d
    assert kw.base_dir == SAMPLE
    assert "Job(name=" in repr(kw)


def test_in_memory_inputs_give_the_same_model(job, model, tmp_path):
    d = job.to_dict()
    layers = d["layers"]
    grids = gpd.read_file(SAMPLE / layers["grids"]["path"])
    households = pl.read_csv(SAMPLE / layers["households"]["path"], infer_schema=False)
    # The roster is GB18030 with one planted undecodable row, decoded here with replacement.
    residents = pa.Table.from_pandas(
        pd.read_csv(
            SAMPLE / layers["residents"]["path"],
            encoding="gb18030",
            encoding_errors="replace",
            dtype=str,
            keep_default_na=False,
        ),
        preserve_index=False,
    )
    for name, data in [("grids", grids), ("households", households), ("residents", residents)]:
        layers[name] = {k: v for k, v in layers[name].items() if k != "path"} | {"data": data}
    mem_job = shequ.Job(base_dir=SAMPLE, **d)
    mem = shequ.build(mem_job)
    assert mem.counts()["households"] == model.counts()["households"]
    assert mem.counts()["grids"] == model.counts()["grids"]
    assert mem.counts()["residents"]["read"] == model.counts()["residents"]["read"]
    # Same grids, same households per grid.
    assert mem.grids.select("grid_id", "households").equals(
        model.grids.select("grid_id", "households")
    )
    assert mem.special_needs("grid").columns == model.special_needs("grid").columns
    # A pandas roster works as well.
    layers["households"]["data"] = households.to_pandas()
    pandas_model = shequ.build(shequ.Job(base_dir=SAMPLE, **d))
    assert pandas_model.counts()["households"] == model.counts()["households"]


def test_bad_in_memory_data_is_refused(job):
    d = job.to_dict()
    d["layers"]["grids"] = {"data": [1, 2, 3], "id": "code"}
    with pytest.raises(TypeError, match="layer grids"):
        shequ.Job(base_dir=SAMPLE, **d)
    g = gpd.GeoDataFrame({"code": ["a"]}, geometry=gpd.points_from_xy([106.5], [29.5]))
    d["layers"]["grids"] = {"data": g, "id": "code"}
    with pytest.raises(shequ.CrsError, match="no CRS"):
        shequ.Job(base_dir=SAMPLE, **d)
    d["layers"]["grids"] = {"data": g.set_crs(4326), "path": "x.geojson", "id": "code"}
    with pytest.raises(shequ.JobError, match="both"):
        shequ.Job(base_dir=SAMPLE, **d)


# -- errors ------------------------------------------------------------------------------------


def test_errors_map_to_the_hierarchy_with_locations(tmp_path, job):
    with pytest.raises(shequ.IoError) as e:
        shequ.Job.from_toml(tmp_path / "missing.toml")
    assert isinstance(e.value, OSError) and isinstance(e.value, shequ.ShequError)
    assert e.value.file.endswith("missing.toml")

    bad = tmp_path / "bad.toml"
    bad.write_text("[layers.grid]\npath = 'x'\n")
    with pytest.raises(shequ.JobError) as e:
        shequ.Job.from_toml(bad)
    assert e.value.file == str(bad) and "unknown field" in str(e.value)

    d = job.to_dict()
    d["layers"]["grids"]["id"] = "no_such_column"
    with pytest.raises(shequ.ColumnNotFoundError) as e:
        shequ.build(shequ.Job(base_dir=SAMPLE, **d))
    assert e.value.layer == "grids" and e.value.column == "no_such_column"
    assert isinstance(e.value, shequ.DataError) and isinstance(e.value, KeyError)
    assert "the file has" in str(e.value)

    # A CRS the job names is checked when the job is made; the error names the key.
    d = job.to_dict()
    d["layers"]["grids"]["crs"] = "EPSG:999999"
    with pytest.raises(shequ.JobError) as e:
        shequ.Job(base_dir=SAMPLE, **d)
    assert "layers.grids.crs" in str(e.value) and "999999" in str(e.value)

    # A CRS that a file declares is checked when the file is read: a CrsError naming it.
    d = job.to_dict()
    bad_crs = tmp_path / "bad-crs.geojson"
    fc = json.loads((SAMPLE / "grids.geojson").read_text(encoding="utf-8"))
    fc["crs"] = {"type": "name", "properties": {"name": "EPSG:999999"}}
    bad_crs.write_text(json.dumps(fc), encoding="utf-8")
    d["layers"]["grids"]["path"] = str(bad_crs)
    with pytest.raises(shequ.CrsError) as e:
        shequ.build(shequ.Job(base_dir=SAMPLE, **d))
    assert e.value.layer == "grids" and e.value.file.endswith("bad-crs.geojson")

    truncated = tmp_path / "grids.geojson"
    truncated.write_bytes((SAMPLE / "grids.geojson").read_bytes()[:5000])
    d = job.to_dict()
    d["layers"]["grids"]["path"] = str(truncated)
    with pytest.raises(shequ.DataError) as e:
        shequ.build(shequ.Job(base_dir=SAMPLE, **d))
    assert e.value.layer == "grids" and e.value.file.endswith("grids.geojson")

    keyless = job.replace(
        privacy={"output": "operational", "grid": "x", "secret_env": "SHEQU_NO_SUCH_VAR"}
    )
    with pytest.raises(shequ.PrivacyError):
        _ = shequ.build(keyless).grids


def test_unknown_tables_are_key_errors(model):
    with pytest.raises(KeyError, match="it has"):
        model.table("no_such")
    with pytest.raises(KeyError):
        model.coverage(table="nothing")
    with pytest.raises(KeyError):
        model.special_needs("nowhere")


def test_a_layer_the_job_lacks_is_a_key_error(job):
    grids_only = shequ.Job(
        base_dir=SAMPLE,
        layers={"grids": job.to_dict()["layers"]["grids"]},
        privacy={"output": "research"},
    )
    m = shequ.build(grids_only)
    assert m.grids.height == 28
    with pytest.raises(KeyError, match="no facilities"):
        _ = m.facilities


# -- sample, GIL and Ctrl-C --------------------------------------------------------------------


def test_sample_writes_a_job_that_builds(tmp_path):
    path = shequ.sample(tmp_path, households=300, communities=2, seed=7, plant_problems=False)
    assert path == tmp_path / "job.toml" and path.is_file()
    m = shequ.build(path)
    assert m.grids.height == 8
    assert m.counts()["households"]["rejected"] == 0


def test_long_calls_release_the_gil(tmp_path):
    import threading

    path = shequ.sample(tmp_path, households=20000, communities=6, seed=3)
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    try:
        shequ.build(path)
    finally:
        done.set()
        t.join()
    # The other Python thread kept running while the model was built.
    assert len(ticks) >= 5


def test_ctrl_c_interrupts_a_long_build(tmp_path):
    job = shequ.sample(tmp_path, households=400000, communities=60, seed=5)
    code = textwrap.dedent(
        f"""
        import shequ, sys, time
        print("ready", flush=True)
        t = time.perf_counter()
        try:
            shequ.build({str(job)!r})
            print("finished", flush=True)
        except KeyboardInterrupt:
            print("interrupted", round(time.perf_counter() - t, 2), flush=True)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    sent = time.perf_counter()
    p.send_signal(signal.SIGINT)
    line = p.stdout.readline().strip()
    answered = time.perf_counter() - sent
    p.kill()
    p.wait()
    assert line.startswith("interrupted"), line
    assert answered < 2.0


def test_the_wheel_is_self_contained(tmp_path):
    # PROJ's database is compiled in: EPSG codes resolve with PROJ_DATA pointing nowhere.
    env = dict(os.environ, PROJ_DATA=str(tmp_path), PROJ_LIB=str(tmp_path))
    code = (
        "import shequ, tempfile;"
        "m = shequ.build(shequ.sample(tempfile.mkdtemp(), households=200, communities=1));"
        "print(m.working_crs, shequ.PROJ_VERSION)"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    crs, version = r.stdout.split()
    assert crs.startswith("EPSG:45") and version.startswith("9.")


def test_lonboard_maps_geoframes(model):
    import lonboard

    grid_map = lonboard.viz(model.grids)
    (layer,) = grid_map.layers
    assert type(layer).__name__ == "PolygonLayer" and len(layer.table) == 28
    (points,) = lonboard.viz(model.facilities).layers
    assert type(points).__name__ == "ScatterplotLayer"
    assert len(points.table) == model.facilities.height
