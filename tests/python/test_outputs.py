"""GeoPandas and pyarrow read shequ's outputs with the right CRS (the CLI runs the sample job)."""

import json
import os
import pathlib
import subprocess

import geopandas as gpd
import pyarrow.parquet as pq
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data-samples" / "sample-city"
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))

SPATIAL = ["streets", "communities", "grids", "buildings", "facilities"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    subprocess.run([BIN, "run", "--quiet", str(SAMPLE / "job.toml"), "--out", str(d)], check=True)
    return d


@pytest.mark.parametrize("layer", SPATIAL)
def test_geopandas_reads_each_layer_with_crs(out, layer):
    gdf = gpd.read_parquet(out / f"{layer}.parquet")
    assert gdf.crs is not None and gdf.crs.to_epsg() == 4326
    assert len(gdf) > 0
    assert gdf.geometry.is_valid.all()
    # Longitude first, inside Chongqing.
    minx, miny, maxx, maxy = gdf.total_bounds
    assert 106.0 < minx < maxx < 107.0 and 29.0 < miny < maxy < 30.0
    # The `geo` metadata is in the file's key-value metadata and in the Arrow schema.
    kv = pq.ParquetFile(out / f"{layer}.parquet").metadata.metadata
    meta = json.loads(kv[b"geo"])
    assert json.loads(pq.read_schema(out / f"{layer}.parquet").metadata[b"geo"]) == meta
    col = meta["columns"]["geometry"]
    assert meta["version"] == "1.1.0" and col["encoding"] == "WKB"
    assert col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    # The bbox covering column (GeoPandas hides it) agrees with the geometry.
    bbox = pq.read_table(out / f"{layer}.parquet", columns=["bbox"]).column("bbox").to_pylist()
    bounds = gdf.geometry.bounds
    assert len(bbox) == len(bounds)
    for b, (_, r) in zip(bbox, bounds.iterrows()):
        assert abs(b["xmin"] - r["minx"]) < 1e-9 and abs(b["ymax"] - r["maxy"]) < 1e-9
    # GeoPandas can use it to read only the features in a box.
    minx, miny, maxx, maxy = gdf.total_bounds
    half = gpd.read_parquet(out / f"{layer}.parquet", bbox=(minx, miny, (minx + maxx) / 2, maxy))
    assert 0 < len(half) <= len(gdf)


def test_hierarchy_counts_and_ids(out):
    grids = gpd.read_parquet(out / "grids.parquet")
    communities = gpd.read_parquet(out / "communities.parquet")
    streets = gpd.read_parquet(out / "streets.parquet")
    assert len(grids) == 28 and len(communities) == 7 and len(streets) == 1
    assert set(grids["community_id"]) <= set(communities["community_id"])
    # Codes keep their leading digits and stay strings.
    assert grids["grid_id"].map(type).eq(str).all()
    # Roll-up: a community's households equal the sum over its grids (grids are placed in
    # exactly one community).
    by_comm = grids.groupby("community_id")["households"].sum()
    for _, c in communities.iterrows():
        assert by_comm.get(c["community_id"], 0) == c["households"]
    assert streets["households"].iloc[0] == communities["households"].sum()
    # Areas are metric (m²) and plausible for urban grids.
    assert (grids["area_m2"] > 10_000).all() and (grids["area_m2"] < 1_000_000).all()


def test_households_and_quality_tables(out):
    hh = pq.read_table(out / "households.parquet").to_pandas()
    placed = hh[hh["placed"]]
    assert placed["grid_id"].notna().all() and placed["street_id"].notna().all()
    assert hh.loc[~hh["placed"], "grid_id"].isna().all()
    q = pq.read_table(out / "quality.parquet").to_pandas()
    assert set(q.columns) == {"layer", "index", "id", "kind", "severity", "detail"}
    manifest = json.loads((out / "manifest.json").read_text())
    c = manifest["counts"]["households"]
    assert c["read"] == c["placed"] + c["rejected"]
    assert c["placed"] == len(placed)
    rejected = q[(q["layer"] == "households") & (q["severity"] == "rejected")]["index"].nunique()
    assert rejected == c["rejected"]
