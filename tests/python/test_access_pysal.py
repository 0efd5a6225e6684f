"""shequ's 2SFCA, E2SFCA and Gaussian 2SFCA agree with PySAL `access` on the same inputs.

A small district is generated here (one community, one grid, households at random points,
clinics with capacities). shequ runs it as an operational job (so the per-home scores are
written, with plain ids for the join); PySAL `access` gets the same homes, populations,
capacities and the straight-line distances in shequ's working CRS (from the manifest).
"""

import json
import math
import os
import pathlib
import random
import subprocess

import access
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pyproj import Transformer

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))

LON0, LAT0 = 106.55, 29.56
CATCHMENT = 800.0
BANDS = {300.0: 1.0, 500.0: 0.68, 800.0: 0.22}
SIGMA = 400.0


def square(x0, y0, dx, dy):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + dx, y0], [x0 + dx, y0 + dy],
                                                [x0, y0 + dy], [x0, y0]]]}


def feature(geom, **props):
    return {"type": "Feature", "geometry": geom, "properties": props}


def write_district(d: pathlib.Path, seed: int):
    rng = random.Random(seed)
    size = 0.03  # about 3 km
    box = square(LON0, LAT0, size, size)
    fc = lambda feats: {"type": "FeatureCollection", "features": feats}  # noqa: E731
    (d / "communities.geojson").write_text(json.dumps(fc([feature(
        box, code="500103001001", name="test", street_code="500103001")])))
    (d / "grids.geojson").write_text(json.dumps(fc([feature(
        box, code="50010300100101", name="grid", community_code="500103001001")])))
    hh = ["household_id,lon,lat"]
    res = ["resident_id,household_id"]
    pop = {}
    for h in range(400):
        lon = LON0 + rng.uniform(0.001, size - 0.001)
        lat = LAT0 + rng.uniform(0.001, size - 0.001)
        hid = f"H{h:04d}"
        hh.append(f"{hid},{lon:.7f},{lat:.7f}")
        n = rng.randint(1, 4)
        pop[hid] = n
        for r in range(n):
            res.append(f"R{h:04d}{r},{hid}")
    (d / "households.csv").write_text("\n".join(hh) + "\n")
    (d / "residents.csv").write_text("\n".join(res) + "\n")
    feats = []
    for f in range(12):
        lon = LON0 + rng.uniform(0.0, size)
        lat = LAT0 + rng.uniform(0.0, size)
        feats.append(feature({"type": "Point", "coordinates": [lon, lat]}, code=f"C{f:02d}",
                             type="clinic", capacity=rng.randint(5, 40)))
    (d / "facilities.geojson").write_text(json.dumps(fc(feats)))
    bands = ", ".join(f"[{k:.0f}, {v}]" for k, v in BANDS.items())
    (d / "job.toml").write_text(f"""
[layers.streets]
derive = true
[layers.communities]
path = "communities.geojson"
id = "code"
parent = "street_code"
[layers.grids]
path = "grids.geojson"
id = "code"
parent = "community_code"
[layers.households]
path = "households.csv"
id = "household_id"
lon = "lon"
lat = "lat"
[layers.residents]
path = "residents.csv"
id = "resident_id"
household = "household_id"
[layers.facilities]
path = "facilities.geojson"
id = "code"
kind = "type"
capacity = "capacity"
[privacy]
output = "operational"
grid = "50010300100101"
plain_identifiers = true
[coverage]
replace_default_rules = true
[[coverage.rules]]
facility = "clinic"
target = "all"
thresholds_m = [300, 500, 800]
standard_m = 300
source = "test"
[coverage.accessibility]
catchment_m = {CATCHMENT}
bands = [{bands}]
gaussian_sigma_m = {SIGMA}
""")
    return pop, feats


@pytest.mark.parametrize("seed", [1, 2])
def test_two_step_measures_agree_with_pysal_access(tmp_path, seed):
    pop, feats = write_district(tmp_path, seed)
    env = dict(os.environ, SHEQU_SECRET="a secret for the access comparison test")
    subprocess.run([BIN, "run", "--quiet", str(tmp_path / "job.toml"), "--out", str(tmp_path / "o")],
                   check=True, env=env)
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    working = manifest["crs"]["working"]
    ours = pq.read_table(tmp_path / "o" / "coverage" / "residents.parquet").to_pandas()
    ours = ours.groupby("household_id").first()
    assert len(ours) == len(pop)

    # The same inputs for PySAL: homes and clinics in shequ's working CRS.
    t = Transformer.from_crs("EPSG:4326", working, always_xy=True)
    hh = pd.read_csv(tmp_path / "households.csv").set_index("household_id")
    hx, hy = t.transform(hh["lon"].values, hh["lat"].values)
    fx, fy = t.transform([f["geometry"]["coordinates"][0] for f in feats],
                         [f["geometry"]["coordinates"][1] for f in feats])
    demand = pd.DataFrame({"geoid": hh.index, "pop": [pop[h] for h in hh.index]})
    supply = pd.DataFrame({"geoid": [f["properties"]["code"] for f in feats],
                           "capacity": [float(f["properties"]["capacity"]) for f in feats]})
    rows = []
    for i, h in enumerate(hh.index):
        for j, f in enumerate(supply["geoid"]):
            rows.append((h, f, math.hypot(hx[i] - fx[j], hy[i] - fy[j])))
    cost = pd.DataFrame(rows, columns=["origin", "dest", "cost"])
    a = access.Access(demand_df=demand, demand_index="geoid", demand_value="pop",
                      supply_df=supply, supply_index="geoid", supply_value="capacity",
                      cost_df=cost, cost_origin="origin", cost_dest="dest", cost_name="cost")
    theirs = {
        "2sfca": a.two_stage_fca(name="x", max_cost=CATCHMENT)["x_capacity"],
        "e2sfca": a.enhanced_two_stage_fca(name="y", max_cost=CATCHMENT,
                                           weight_fn=access.weights.step_fn(BANDS))["y_capacity"],
        "g2sfca": a.two_stage_fca(name="z", max_cost=CATCHMENT,
                                  weight_fn=access.weights.gaussian(SIGMA))["z_capacity"],
    }
    compared = 0
    for method, series in theirs.items():
        mine = ours[f"clinic_all_{method}"]
        for h in hh.index:
            p, m = series.get(h), mine.get(h)
            if p is None or pd.isna(p):
                assert m is None or pd.isna(m), (method, h)
            else:
                assert m == pytest.approx(p, rel=1e-9, abs=1e-12), (method, h)
                compared += 1
    assert compared > 600
