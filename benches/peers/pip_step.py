"""Point-in-polygon side by side: N household points into the grids of a generated district,
counted per grid, in shequ (CLI and Python), GeoPandas (sjoin) and DuckDB spatial.

Each tool runs in its own process (peak memory from getrusage); the counts per grid must agree.
Prints a table of end-to-end and point-in-polygon times, ratios and peak memory.

    python pip_step.py --points 1000000 --edge-detail 0    # simple grids
    python pip_step.py --points 1000000 --edge-detail 30   # 120+-vertex boundaries
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))

JOB = """
name = "peers: points into grids"
[layers.grids]
path = "grids.geojson"
id = "code"
parent = "community_code"
[layers.communities]
derive = true
[layers.households]
path = "points.csv"
id = "id"
lon = "lon"
lat = "lat"
[privacy]
# Counts of every grid published as they are (k = 1: only empty cells are withheld).
output = "research"
k = 1
[output]
map = false
"""

TOOLS = {
    "shequ CLI": """
import json, subprocess, time, sys
t = time.perf_counter()
subprocess.run([{bin!r}, "run", "-q", "job.toml", "--out", "out"], check=True, stdout=subprocess.DEVNULL)
wall = time.perf_counter() - t
import resource
cli_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
m = json.load(open("out/manifest.json"))
pip = sum(s["seconds"] for s in m["steps"] if s["step"].startswith("place households"))
import pyarrow.parquet as pq
g = pq.read_table("out/grids.parquet", columns=["grid_id", "households"]).to_pylist()
result = {{"wall": wall, "pip": pip, "counts": {{r["grid_id"]: r["households"] for r in g}}, "cli_peak": cli_peak}}
""",
    "shequ Python": """
import json, time, shequ
t = time.perf_counter()
m = shequ.build("job.toml")
g = m.grids.select("grid_id", "households").rows()
wall = time.perf_counter() - t
result = {"wall": wall, "pip": None, "counts": dict(g)}
""",
    "GeoPandas": """
import json, time
import geopandas as gpd, pandas as pd
t = time.perf_counter()
grids = gpd.read_file("grids.geojson")[["code", "geometry"]]
pts = pd.read_csv("points.csv", dtype={"id": str})
pts = gpd.GeoDataFrame(pts[["id"]], geometry=gpd.points_from_xy(pts.lon, pts.lat), crs=4326)
t_pip = time.perf_counter()
joined = gpd.sjoin(pts, grids, predicate="within", how="inner")
pip = time.perf_counter() - t_pip
counts = joined.groupby("code").size()
wall = time.perf_counter() - t
result = {"wall": wall, "pip": pip, "counts": {k: int(v) for k, v in counts.items()}}
""",
    "DuckDB spatial": """
import json, time, duckdb
t = time.perf_counter()
con = duckdb.connect(config={"threads": 2})
con.load_extension("spatial")
con.sql("create table grids as select code, geom from ST_Read('grids.geojson')")
con.sql("create table pts as select id, ST_Point(lon, lat) as geom from read_csv('points.csv', types={'id': 'VARCHAR'})")
t_pip = time.perf_counter()
rows = con.sql("select g.code, count(*) from pts p join grids g on ST_Within(p.geom, g.geom) group by 1").fetchall()
pip = time.perf_counter() - t_pip
wall = time.perf_counter() - t
result = {"wall": wall, "pip": pip, "counts": {k: int(v) for k, v in rows}}
""",
}


# Every tool reports its own peak resident memory: its process's, or for the CLI, the binary's.
EPILOGUE = """
import json, resource
peak = result.pop("cli_peak", None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result["peak_mb"] = peak / 1024
print(json.dumps(result))
"""


def run_tool(name: str, code: str, work: Path) -> dict:
    code = textwrap.dedent(code)
    if name == "shequ CLI":
        code = code.format(bin=BIN)
    code += EPILOGUE
    env = dict(os.environ)
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=work, capture_output=True, text=True, env=env
    )
    if r.returncode != 0:
        raise SystemExit(f"{name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--edge-detail", type=int, default=0)
    ap.add_argument("--grids-per-community", type=int, default=8)
    ap.add_argument("--communities", type=int, default=250)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--final-line", action="store_true", help="print the end-to-end summary line")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="shequ-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [BIN, "sample", "-q", "--clean", "--households", "1000", "--communities",
         str(a.communities), "--grids-per-community", str(a.grids_per_community),
         "--edge-detail", str(a.edge_detail), "--out", str(work)],
        check=True,
    )
    import numpy as np
    import geopandas as gpd

    grids = gpd.read_file(work / "grids.geojson")
    minx, miny, maxx, maxy = grids.total_bounds
    rng = np.random.default_rng(a.seed)
    lon = rng.uniform(minx, maxx, a.points)
    lat = rng.uniform(miny, maxy, a.points)
    with open(work / "points.csv", "w") as f:
        f.write("id,lon,lat\n")
        for i, (x, y) in enumerate(zip(lon, lat)):
            f.write(f"P{i:08d},{x:.7f},{y:.7f}\n")
    (work / "job.toml").write_text(JOB)
    vertices = int(grids.geometry.apply(lambda g: len(g.exterior.coords)).mean())
    print(f"{a.points:,} points into {len(grids):,} grids (mean {vertices} vertices); work dir {work}")

    results = {}
    for name, code in TOOLS.items():
        results[name] = run_tool(name, code, work)
    ref = results["GeoPandas"]["counts"]
    # shequ tests containment in its metric working CRS, the others in longitude/latitude: a
    # straight edge in one is very slightly curved in the other, so a point within a hair of a
    # shared edge may fall on either side. Those points are counted and allowed for; anything
    # else is a disagreement.
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # buffering in degrees is what is meant here
        edges = gpd.GeoDataFrame(geometry=grids.boundary.buffer(1e-6), crs=4326)
    near = gpd.sjoin(pts, edges, predicate="within").index.unique().size
    for name, r in results.items():
        c = r["counts"]
        off = sum(abs((c.get(k) or 0) - (ref.get(k) or 0)) for k in set(c) | set(ref))
        inside = sum(v or 0 for v in c.values())
        if off > 2 * near or abs(inside - sum(ref.values())) > near:
            raise SystemExit(f"{name} disagrees with GeoPandas: {off} placements differ")
        r["off"] = off
    worst = max(r["off"] for r in results.values())
    print(
        f"counts per grid agree across {len(results)} runs ({sum(ref.values()):,} points inside "
        f"grids; at most {worst} placements differ, fewer than the {near} points within "
        f"1e-6 degrees of a grid edge allow)"
    )
    gp = results["GeoPandas"]
    print(
        f"{'tool':<16} {'end-to-end s':>12} {'vs GeoPandas':>12} {'PIP s':>8} {'vs sjoin':>9}"
        f" {'peak MB':>8}"
    )
    for name, r in results.items():
        pip = r["pip"]
        pip_s = "" if pip is None else f"{pip:8.2f}"
        pip_x = "" if pip is None else f"{gp['pip'] / pip:8.1f}x"
        ratio = gp["wall"] / r["wall"]
        print(
            f"{name:<16} {r['wall']:>12.2f} {ratio:>11.1f}x {pip_s:>8} {pip_x:>9}"
            f" {r['peak_mb']:>8.0f}"
        )
    if a.final_line:
        ratio = gp["wall"] / results["shequ CLI"]["wall"]
        print(f"end-to-end (points into grids; the full job is not compared yet): {ratio:.2f}x faster than GeoPandas")

if __name__ == "__main__":
    main()
