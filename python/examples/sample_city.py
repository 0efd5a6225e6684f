"""Walk the sample city from loading to a map: the notebook example of docs/python.md.

Run it after ``pip install "shequ[geo]"`` (the wheel, GeoPandas and matplotlib):

    python sample_city.py [OUT_DIR]

It writes the synthetic district, builds the model, looks at data quality, special-needs
populations and service coverage per grid, asks where two new elderly day-care centres would
help most, and draws the coverage map to OUT_DIR/coverage_map.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # draw to a file; in Jupyter leave this out
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

import shequ  # noqa: E402


def main(out: Path) -> None:
    # 1. Data. The sample district: 7 communities, 28 grids, ~4,000 households with planted
    #    data-quality problems, GB18030 resident roster, facilities and walking paths.
    job_path = shequ.sample(out / "city")
    job = shequ.Job.from_toml(job_path)

    # 2. Build: every row is placed or reported (Ctrl-C interrupts; the GIL is released).
    model = shequ.build(job)
    print(model)
    for layer, c in model.counts().items():
        print(f"{layer:<12} read {c['read']:>6}  placed {c['placed']:>6}  reported {c['rejected']:>4}")

    # 3. Data quality: what was wrong, where.
    quality = model.quality
    print(quality.group_by("kind", "severity").len().sort("len", descending=True))

    # 4. Special needs per grid (research outputs: counts below k are suppressed, i.e. null).
    grids = model.special_needs("grid")
    print(
        grids.select("grid_id", "name", "residents", "disabled", "elderly_alone", "age_60_plus")
        .sort("disabled", descending=True, nulls_last=True)
        .head(5)
    )

    # 5. Coverage: share of empty-nest elderly within 1,000 m of an elderly day-care centre
    #    (in this small district most 300 m and 500 m shares are below k and suppressed).
    coverage = model.coverage("grid")
    share = "elderly_daycare_empty_nest_share_1000m"
    print(coverage.select("grid_id", "name", share).sort(share).head(5))
    print(model.coverage(table="blind_spots").head())

    # 6. Where would two new centres help most?
    picks = model.site(k=2).filter(pl.col("method") == "greedy")
    print(picks.select("pick", "site_id", "gain", "cumulative"))

    # 7. A map with GeoPandas: grids by coverage share, facilities, the two picks.
    ax = coverage.to_geopandas().plot(
        column=share, cmap="YlGnBu", legend=True, edgecolor="grey", figsize=(8, 8),
        missing_kwds={"color": "lightgrey", "hatch": "//", "label": "suppressed"},
    )
    model.facilities.to_geopandas().plot(ax=ax, color="black", markersize=12)
    picks_gdf = shequ.GeoFrame.of(picks, crs=model.grids.crs).to_geopandas()
    picks_gdf.plot(ax=ax, color="red", marker="D", markersize=40)
    ax.set_title(f"{share} per grid")
    ax.set_axis_off()
    path = out / "coverage_map.png"
    plt.savefig(path, dpi=100, bbox_inches="tight")
    print(f"map: {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="shequ-")))
