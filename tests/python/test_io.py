"""Round trips with the tools researchers use.

* shequ → GeoParquet → GeoPandas and DuckDB: CRS, geometry and attributes equal the GeoJSON
  twin; DuckDB spatial sees a GEOMETRY column.
* GeoPandas- and DuckDB-written files → shequ: the sample's layers rewritten by GeoPandas
  (GeoParquet 1.0 and 1.1, with and without the bbox column, WKB and GeoArrow encodings, another
  CRS), by DuckDB spatial (column `geom`, GeoParquet 1.0 without a CRS) and as plain WKB Parquet
  without `geo` metadata; every run gives the same tables as the GeoJSON run.
* A GBK shapefile written by GeoPandas/GDAL reads with the right Chinese names.
* Hive-partitioned rosters read back by DuckDB and pyarrow.dataset, one area at a time.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess

import duckdb
import duckdb_extension_spatial
import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import shapely

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data-samples" / "sample-city"
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))
SPATIAL = ["communities", "grids", "buildings", "facilities"]
SECRET = "a street office's secret, 32 bytes"


def run(job, out, env=None):
    e = dict(os.environ, **(env or {}))
    p = subprocess.run(
        [BIN, "run", "--quiet", str(job), "--out", str(out)], capture_output=True, text=True, env=e
    )
    assert p.returncode == 0, p.stderr
    return p


def spatial_db():
    con = duckdb.connect()
    ext = pathlib.Path(duckdb_extension_spatial.__file__).parent / "extensions"
    path = next(ext.rglob("spatial.duckdb_extension"))
    con.sql(f"LOAD '{path}'")
    return con


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    run(SAMPLE / "job.toml", out)
    return out


# --- shequ → GeoPandas / DuckDB ---------------------------------------------------------------


@pytest.mark.parametrize("layer", ["streets", *SPATIAL])
def test_geoparquet_equals_its_geojson_twin_in_geopandas(reference, layer):
    pq_df = gpd.read_parquet(reference / f"{layer}.parquet")
    js_df = gpd.read_file(reference / f"{layer}.geojson")
    assert pq_df.crs.to_epsg() == 4326 and js_df.crs.to_epsg() == 4326
    assert len(pq_df) == len(js_df)
    # Geometry: the same shapes (GeoJSON rounds to 7 decimals, about 1 cm).
    for a, b in zip(pq_df.geometry, js_df.geometry):
        assert a.geom_type == b.geom_type
        assert a.equals_exact(b, tolerance=1e-7) or shapely.normalize(a).equals_exact(
            shapely.normalize(b), tolerance=1e-7
        ), (a.wkt[:80], b.wkt[:80])
    # Attributes: the same values and kinds in both (codes stay strings, counts integers).
    cols = [c for c in pq_df.columns if c != "geometry"]
    assert sorted(cols) == sorted(c for c in js_df.columns if c != "geometry")
    for c in cols:
        a, b = pq_df[c], js_df[c]
        if a.dtype == object or str(a.dtype).startswith("str"):
            norm = lambda s: [None if pd.isna(x) else x for x in s]  # noqa: E731
            assert norm(a) == norm(b), c
        else:
            pd.testing.assert_series_equal(
                a.astype("float64"), b.astype("float64"), check_names=False, obj=c
            )
    ids = [c for c in cols if c.endswith("_id")]
    assert all(pq_df[c].dropna().map(type).eq(str).all() for c in ids)


def test_duckdb_spatial_reads_shequ_geoparquet(reference):
    con = spatial_db()
    path = reference / "grids.parquet"
    t = con.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    types = {name: typ for name, typ, *_ in t}
    assert types["geometry"].startswith("GEOMETRY"), types["geometry"]
    assert types["grid_id"] == "VARCHAR" and types["residents"] == "UBIGINT"
    n, total, xmin = con.sql(
        f"SELECT count(*), sum(residents), min(ST_XMin(geometry)) FROM read_parquet('{path}')"
    ).fetchone()
    gdf = gpd.read_parquet(path)
    assert n == len(gdf) and total == gdf["residents"].sum()
    assert abs(xmin - gdf.total_bounds[0]) < 1e-9
    # The bbox covering column lets DuckDB filter without decoding geometry.
    minx, miny, maxx, maxy = gdf.total_bounds
    inside = con.sql(
        f"SELECT count(*) FROM read_parquet('{path}') WHERE bbox.xmax < {(minx + maxx) / 2}"
    ).fetchone()[0]
    assert 0 < inside < n


# --- GeoPandas / DuckDB → shequ ---------------------------------------------------------------


def write_variant(kind, src, dest):
    """Writes the sample's spatial layers to `dest` as `kind`; returns extra job keys."""
    for layer in SPATIAL:
        gdf = gpd.read_file(src / f"{layer}.geojson")
        p = dest / f"{layer}.parquet"
        if kind == "geopandas_1_1_bbox":
            gdf.to_parquet(p, write_covering_bbox=True, schema_version="1.1.0")
        elif kind == "geopandas_1_0":
            gdf.to_parquet(p, schema_version="1.0.0")
        elif kind == "geopandas_geoarrow":
            gdf.to_parquet(p, geometry_encoding="geoarrow")
        elif kind == "geopandas_cgcs2000":
            gdf.to_crs(4490).to_parquet(p, write_covering_bbox=True)
        elif kind in ("duckdb_spatial", "duckdb_plain_wkb"):
            tmp = dest / f"{layer}.tmp.parquet"
            gdf.to_parquet(tmp)
            con = spatial_db()
            geom = "geometry AS geom" if kind == "duckdb_spatial" else "ST_AsWKB(geometry) AS wkb"
            con.sql(
                f"COPY (SELECT * EXCLUDE (geometry), {geom} FROM read_parquet('{tmp}')) "
                f"TO '{p}' (FORMAT parquet)"
            )
            tmp.unlink()
        else:
            raise ValueError(kind)
    if kind == "duckdb_plain_wkb":
        meta = pq.ParquetFile(dest / "grids.parquet").metadata.metadata or {}
        assert b"geo" not in meta, "plain WKB: no geo metadata"
        return 'geometry_column = "wkb"\ncrs = "EPSG:4326"\n'
    if kind == "duckdb_spatial":
        geo = json.loads(pq.ParquetFile(dest / "grids.parquet").metadata.metadata[b"geo"])
        assert geo["primary_column"] == "geom" and geo["columns"]["geom"]["encoding"] == "WKB"
    return ""


VARIANTS = [
    "geopandas_1_1_bbox",
    "geopandas_1_0",
    "geopandas_geoarrow",
    "geopandas_cgcs2000",
    "duckdb_spatial",
    "duckdb_plain_wkb",
]


def comparable(out, name):
    t = pq.read_table(out / name)
    keep = [c for c in t.column_names if c not in ("geometry", "bbox")]
    return t.select(keep).to_pandas()


@pytest.mark.parametrize("kind", VARIANTS)
def test_files_written_by_geopandas_and_duckdb_give_the_same_run(tmp_path, reference, kind):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    extra = write_variant(kind, SAMPLE, data)
    job = (data / "job.toml").read_text(encoding="utf-8")
    for layer in SPATIAL:
        old = f'path = "{layer}.geojson"'
        assert old in job
        job = job.replace(old, f'path = "{layer}.parquet"\n{extra}')
    (data / "job.toml").write_text(job, encoding="utf-8")
    out = tmp_path / "out"
    run(data / "job.toml", out)
    for name in [
        "grids.parquet",
        "buildings.parquet",
        "facilities.parquet",
        "special_needs/grid.parquet",
        "coverage/grid.parquet",
        "quality.parquet",
    ]:
        a, b = comparable(out, name), comparable(reference, name)
        if name == "quality.parquet":
            # The same problems at the same rows (details may name the file).
            a, b = a.drop(columns="detail"), b.drop(columns="detail")
        if name == "facilities.parquet":
            # GeoJSON integers come back as float64 capacities from GeoPandas; same values.
            a["capacity"], b["capacity"] = a["capacity"].astype(float), b["capacity"].astype(float)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=f"{kind}: {name}")
    # The geometry is the same to a millimetre.
    g_ref = gpd.read_parquet(reference / "grids.parquet")
    g_new = gpd.read_parquet(out / "grids.parquet")
    assert g_new.crs.to_epsg() == 4326
    d = g_ref.geometry.to_crs(4545).symmetric_difference(g_new.geometry.to_crs(4545)).area
    assert d.max() < 1e-3, d.max()


def test_gbk_shapefile_written_by_gdal_reads_with_chinese_names(tmp_path, reference):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    grids = gpd.read_file(SAMPLE / "grids.geojson").rename(columns={"community_code": "comm_code"})
    grids.to_file(data / "grids.shp", driver="ESRI Shapefile", encoding="GBK")
    cpg = (data / "grids.cpg").read_text().strip()
    assert cpg.upper() in ("GBK", "CP936", "936"), cpg
    names = [n for n in grids["name"] if isinstance(n, str) and not n.isascii()]
    assert names and names[0].encode("gbk") in (data / "grids.dbf").read_bytes()
    job = (data / "job.toml").read_text(encoding="utf-8")
    job = job.replace('path = "grids.geojson"', 'path = "grids.shp"')
    job = job.replace('parent = "community_code"', 'parent = "comm_code"')
    (data / "job.toml").write_text(job, encoding="utf-8")
    out = tmp_path / "out"
    run(data / "job.toml", out)
    got = gpd.read_parquet(out / "grids.parquet")
    want = gpd.read_parquet(reference / "grids.parquet")
    assert got["name"].tolist() == want["name"].tolist()
    assert got["residents"].tolist() == want["residents"].tolist()
    assert any("网格" in n for n in got["name"])
    q = pq.read_table(out / "quality.parquet").to_pandas()
    assert not ((q["kind"] == "unreadable_row") & (q["layer"] == "grids")).any()
    r = pq.read_table(reference / "quality.parquet").to_pandas()
    key = ["layer", "index", "kind", "severity"]
    pd.testing.assert_frame_equal(q[key], r[key])


# --- Partitioned rosters -----------------------------------------------------------------------


def test_hive_partitions_read_one_area_in_duckdb_and_pyarrow(tmp_path):
    job = (SAMPLE / "job.toml").read_text(encoding="utf-8")
    job = job.replace('output = "research"\nk = 5\n', 'output = "operational"\nstreet = "500103001"\n')
    job = job.replace('visit_rules = "', f'visit_rules = "{SAMPLE}/')
    assert 'street = "500103001"' in job
    flat_job = tmp_path / "flat.toml"
    flat_job.write_text(job.replace('path = "', f'path = "{SAMPLE}/'), encoding="utf-8")
    part_job = tmp_path / "parts.toml"
    part_job.write_text(
        job.replace('path = "', f'path = "{SAMPLE}/').replace(
            "[output]\nmap = true\n", "[output]\nmap = true\npartitioned = true\n"
        ),
        encoding="utf-8",
    )
    env = {"SHEQU_SECRET": SECRET}
    run(flat_job, tmp_path / "flat", env)
    run(part_job, tmp_path / "parts", env)
    flat = pq.read_table(tmp_path / "flat" / "residents.parquet").to_pandas()
    parts_dir = tmp_path / "parts" / "residents"
    dirs = sorted(p.name for p in parts_dir.iterdir())
    assert dirs == ["street_id=500103001"]
    communities = sorted(p.name.split("=")[1] for p in (parts_dir / dirs[0]).iterdir())
    assert len(communities) == 7 and all(c.startswith("500103001") for c in communities)

    con = duckdb.connect()
    # Codes are text (leading zeros matter): tell the readers, or they infer integers.
    glob = f"{parts_dir}/**/*.parquet"
    hive = "hive_partitioning = true, hive_types = {'street_id': VARCHAR, 'community_id': VARCHAR}"
    per = dict(
        con.sql(
            f"SELECT community_id, count(*) FROM read_parquet('{glob}', {hive}) "
            "GROUP BY community_id"
        ).fetchall()
    )
    assert per == flat.groupby("community_id").size().to_dict()
    one = communities[0]
    # DuckDB prunes by the path: one file of seven is read.
    plan = con.sql(
        f"EXPLAIN ANALYZE SELECT resident_key FROM read_parquet('{glob}', {hive}) "
        f"WHERE community_id = '{one}'"
    ).fetchall()
    text = "\n".join(r[1] for r in plan)
    assert re.search(r"Scanning Files: 1/7", text), text
    keys = con.sql(
        f"SELECT resident_key FROM read_parquet('{glob}', {hive}) "
        f"WHERE community_id = '{one}' ORDER BY 1"
    ).fetchall()
    assert [k for (k,) in keys] == sorted(flat.loc[flat["community_id"] == one, "resident_key"])

    schema = pa.schema([("street_id", pa.string()), ("community_id", pa.string())])
    dset = ds.dataset(parts_dir, format="parquet", partitioning=ds.partitioning(schema, flavor="hive"))
    t = dset.to_table(filter=ds.field("community_id") == one)
    assert t.num_rows == len(keys)
    assert set(t.column("street_id").to_pylist()) == {"500103001"}
