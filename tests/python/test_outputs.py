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


def test_research_tables_and_quality(out):
    # A research run writes no person-level table.
    assert not (out / "households.parquet").exists() and not (out / "residents.parquet").exists()
    # Counts of people and households by place and sex are low-sensitivity: published whole
    # (the job sets no k_low), so the base suppression table is empty.
    sup = pq.read_table(out / "suppression.parquet").to_pandas()
    assert set(sup.columns) == {"level", "unit_id", "parent_id", "column", "reason", "detail"}
    assert len(sup) == 0
    for layer in ["streets", "communities", "grids", "buildings"]:
        gdf = gpd.read_parquet(out / f"{layer}.parquet")
        for col in ["households", "residents", "residents_male", "residents_female"]:
            assert gdf[col].notna().all()
        assert gdf["suppressed"].isna().all()
    # Special-needs counts are sensitive: every suppressed cell is null in its table and
    # listed in special_needs/suppression.parquet; published ones are 0 or at least k = 5.
    sn = pq.read_table(out / "special_needs" / "suppression.parquet").to_pandas()
    assert (sn["reason"] == "below_k").any()
    assert sn["detail"].str.contains("sensitive count").any()
    grid = pq.read_table(out / "special_needs" / "grid.parquet").to_pandas()
    hidden = sn[sn["level"] == "grids"]
    for col in ["disabled", "minimum_living_allowance", "elderly_alone"]:
        v = grid[col].dropna()
        assert ((v == 0) | (v >= 5)).all()
        assert grid[col].isna().sum() == (hidden["column"] == col).sum()
    q = pq.read_table(out / "quality.parquet").to_pandas()
    assert set(q.columns) == {"layer", "index", "id", "kind", "severity", "detail"}
    # Person-level rows of the report carry no id in a research run.
    assert q.loc[q["layer"].isin(["households", "residents"]), "id"].isna().all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["privacy"]["output"] == "research"
    c = manifest["counts"]["households"]
    assert c["read"] == c["placed"] + c["rejected"]
    rejected = q[(q["layer"] == "households") & (q["severity"] == "rejected")]["index"].nunique()
    assert rejected == c["rejected"]


def test_operational_named_list_for_one_grid(tmp_path):
    # The sample's grid-worker job: operational, scoped to one grid.
    job = (SAMPLE / "job-grid-worker.toml").read_text(encoding="utf-8")
    assert 'output = "operational"' in job and 'grid = "50010300100101"' in job
    for name in ["communities.geojson", "grids.geojson", "buildings.geojson", "households.csv",
                 "residents.csv", "facilities.geojson", "paths.geojson", "registers", "events.csv",
                 "visits.csv", "visit_rules.csv"]:
        (tmp_path / name).symlink_to(SAMPLE / name)
    (tmp_path / "job.toml").write_text(job, encoding="utf-8")
    env = dict(os.environ, SHEQU_SECRET="a secret for the test, long enough")
    subprocess.run([BIN, "run", "--quiet", str(tmp_path / "job.toml"), "--out", str(tmp_path / "o")],
                   check=True, env=env)
    hh = pq.read_table(tmp_path / "o" / "households.parquet").to_pandas()
    assert len(hh) > 50 and (hh["grid_id"] == "50010300100101").all()
    assert "household_id" not in hh.columns and hh["household_key"].str.len().eq(24).all()
    res = pq.read_table(tmp_path / "o" / "residents.parquet").to_pandas()
    assert res["resident_key"].is_unique and set(res["household_key"]) <= set(hh["household_key"])
    assert not {"name", "id_number", "phone", "resident_id"} & set(res.columns)
    assert res["sex"].isin(["male", "female", "unknown"]).all()
    assert hh["residents"].sum() == len(res)
    # The grid worker's coverage list: the same residents, the same pseudonyms.
    cov = pq.read_table(tmp_path / "o" / "coverage" / "residents.parquet").to_pandas()
    assert set(cov["resident_key"]) == set(res["resident_key"])
    assert (cov["grid_id"] == "50010300100101").all()
    near = cov["clinic_all_nearest_m"].dropna()
    assert len(near) > 0 and (near >= 0).all()
    assert (cov.loc[cov["clinic_all_nearest_m"] <= 300, "clinic_all_covered"]).all()
    # The registers' fix-list of the grid: findings about its residents, under the same keys.
    fix = pq.read_table(tmp_path / "o" / "registers" / "fix_list.parquet").to_pandas()
    about = fix.dropna(subset=["resident_key"])
    assert set(about["resident_key"]) <= set(res["resident_key"])
    assert (about["grid_id"] == "50010300100101").all()
    assert not {"name", "id_number", "resident_id"} & set(fix.columns)
    assert (cov["clinic_all_network_nearest_m"] + 1e-6 >= cov["clinic_all_nearest_m"]).all()
    # Without the secret the run is refused and nothing is written.
    env.pop("SHEQU_SECRET")
    r = subprocess.run([BIN, "run", "--quiet", str(tmp_path / "job.toml"), "--out", str(tmp_path / "o2")],
                       env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "SHEQU_SECRET" in r.stderr
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize("level", ["street", "community", "grid", "building"])
def test_special_needs_layers(out, level):
    gdf = gpd.read_parquet(out / "special_needs" / f"{level}.parquet")
    assert gdf.crs.to_epsg() == 4326 and len(gdf) > 0
    assert gdf[f"{level}_id"].map(type).eq(str).all()
    for c in ["disabled", "elderly_alone", "minimum_living_allowance"]:
        share = gdf[f"{c}_share"].dropna()
        assert ((share >= 0) & (share <= 1)).all()
        # A share is published only with its count and the residents.
        assert gdf.loc[gdf[f"{c}_share"].notna(), c].notna().all()
    # The GeoJSON twin has the same rows and properties.
    js = gpd.read_file(out / "special_needs" / f"{level}.geojson")
    assert len(js) == len(gdf) and set(gdf.columns) - {"geometry"} <= set(js.columns) | {"bbox"}


def test_special_needs_grid_hot_spots_and_rollups(out):
    grids = gpd.read_parquet(out / "special_needs" / "grid.parquet")
    comms = gpd.read_parquet(out / "special_needs" / "community.parquet")
    assert grids["elderly_alone_hot"].dropna().isin([True, False]).all()
    # Where every grid of a community is published, the community is their sum (the sample
    # places every household of a community in one of its grids).
    for _, c in comms.iterrows():
        g = grids[grids["community_id"] == c["community_id"]]
        for col in ["residents", "age_0_14", "unemployed"]:
            if g[col].notna().all() and c[col] == c[col]:
                assert g[col].sum() == c[col]
    summary = (out / "special_needs" / "summary.md").read_text(encoding="utf-8")
    assert "Getis-Ord" in summary and "2026-01-01" in summary


@pytest.mark.parametrize("level", ["street", "community", "grid"])
def test_coverage_layers(out, level):
    gdf = gpd.read_parquet(out / "coverage" / f"{level}.parquet")
    assert gdf.crs.to_epsg() == 4326 and len(gdf) > 0
    js = gpd.read_file(out / "coverage" / f"{level}.geojson")
    assert len(js) == len(gdf)
    for m in ["clinic_all", "clinic_all_network", "rehabilitation_disabled"]:
        t = gdf[f"{m}_target"]
        for d in [300, 500, 1000]:
            w = gdf[f"{m}_within_{d}m"]
            ok = w.notna() & t.notna()
            assert (w[ok] <= t[ok]).all()
            share = gdf[f"{m}_share_{d}m"]
            assert share.dropna().between(0, 1).all()
            assert share[w.isna() | t.isna()].isna().all()


def test_coverage_siting_and_equity(out):
    site = gpd.read_parquet(out / "coverage" / "siting.parquet")
    assert set(site["method"]) <= {"greedy", "exact"} and len(site) > 0
    assert site.geometry.geom_type.eq("Point").all()
    greedy = site[site["method"] == "greedy"]["gain"].dropna().tolist()
    assert greedy == sorted(greedy, reverse=True)
    eq = pq.read_table(out / "coverage" / "equity.parquet").to_pandas()
    assert eq["gini"].dropna().between(0, 1).all()
    lz = pq.read_table(out / "coverage" / "lorenz.parquet").to_pandas()
    for _, g in lz.groupby(["measure", "method"]):
        assert g["population_share"].is_monotonic_increasing
        assert abs(g["population_share"].iloc[-1] - 1) < 1e-9
    assert not (out / "coverage" / "residents.parquet").exists()
