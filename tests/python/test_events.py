"""The grid work loop, checked independently with pandas and geopandas from the same files:
each case placed in its grid (point in polygon, or its building's grid), times per step,
medians and 90th percentiles, on-time rates against the deadline table on China's working-day
calendar, and satisfaction rates per grid equal what `shequ run` wrote (an operational run:
every count as it is, no suppression)."""

import datetime as dt
import os
import pathlib
import shutil
import subprocess

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data-samples" / "sample-city"
EVENTS = ROOT / "src" / "analytics" / "events"
BIN = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))
STEPS = ["发现时间", "上报时间", "交办时间", "处置时间", "反馈时间", "回访时间"]
NAMES = ["discovered", "reported", "assigned", "handled", "fed_back", "visited"]
AS_OF = pd.Timestamp("2026-01-01 00:00")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("loop")
    shutil.copytree(SAMPLE, d, dirs_exist_ok=True)
    env = dict(os.environ, SHEQU_SECRET="a secret for the events test")
    out = d / "out"
    subprocess.run([BIN, "run", "--quiet", str(d / "job-grid-worker.toml"), "--out", str(out)],
                   check=True, env=env)
    return d, out


def calendar():
    c = pd.read_csv(EVENTS / "calendar_cn.csv", dtype=str)
    holidays = set(c.loc[c["kind"] == "holiday", "date"])
    workdays = set(c.loc[c["kind"] == "workday", "date"])
    return holidays, workdays


def working_seconds(a, b, cal):
    """Seconds of [a, b] that fall on working days (every second of a working day counts)."""
    holidays, workdays = cal
    total = 0.0
    day = a.normalize()
    while day <= b:
        key = day.strftime("%Y-%m-%d")
        working = key in workdays or (day.weekday() < 5 and key not in holidays)
        if working:
            lo, hi = max(a, day), min(b, day + pd.Timedelta(days=1))
            total += max((hi - lo).total_seconds(), 0.0)
        day += pd.Timedelta(days=1)
    return total


def limits():
    t = pd.read_csv(EVENTS / "deadlines_default.csv", dtype=str)

    def find(cat, sub, step):
        for c, s in [(cat, sub), (cat, "*"), ("*", "*")]:
            r = t[(t.category == c) & (t.subcategory == s) & (t.step == step)]
            if len(r):
                r = r.iloc[0]
                secs = float(r.limit) * (3600 if r.unit == "hours" else 86400)
                return secs, r.unit == "working_days"
        return None

    return find


def placed_cases(d):
    """The cases shequ should place, placed here independently."""
    e = pd.read_csv(d / "events.csv", dtype=str).fillna("")
    e = e[e["案件编号"].str.startswith("SJ2025")]  # the planted rows are the Rust tests' business
    e = e.drop_duplicates("案件编号")
    grids = gpd.read_file(d / "grids.geojson")[["code", "geometry"]]
    buildings = gpd.read_file(d / "buildings.geojson")[["code", "grid_code"]]
    located = e[e["经度"] != ""]
    pts = gpd.GeoDataFrame(located, geometry=gpd.points_from_xy(
        located["经度"].astype(float), located["纬度"].astype(float)), crs=grids.crs)
    j = gpd.sjoin(pts, grids, predicate="within", how="inner")
    by_point = pd.DataFrame(j.drop(columns="geometry")).rename(columns={"code": "grid"})
    by_code = e[e["经度"] == ""].merge(buildings.drop_duplicates("code"), left_on="楼栋编码",
                                        right_on="code").rename(columns={"grid_code": "grid"})
    cases = pd.concat([by_point, by_code], ignore_index=True)
    for c in STEPS:
        cases[c] = pd.to_datetime(cases[c].replace("", None), format="%Y-%m-%d %H:%M")
    return cases


def per_step(cases):
    """One row per case and timed step: clock seconds from the step before it, and whether it
    kept its limit."""
    cal, find = calendar(), limits()
    rows = []
    for r in cases.itertuples(index=False):
        times = [getattr(r, c) for c in STEPS]
        last = None
        for i, t in enumerate(times):
            if pd.isna(t):
                continue
            if last is not None:
                lim = find(r.大类, r.小类, NAMES[i])
                on_time = None
                if lim is not None:
                    secs, working = lim
                    used = working_seconds(last, t, cal) if working else (t - last).total_seconds()
                    on_time = used <= secs
                rows.append((r.grid, NAMES[i], (t - last).total_seconds(), on_time))
            last = t
    return pd.DataFrame(rows, columns=["grid", "step", "seconds", "on_time"])


def test_times_on_time_and_satisfaction_per_grid_equal_pandas(run):
    d, out = run
    cases = placed_cases(d)
    steps = per_step(cases)
    got = pd.read_parquet(out / "events" / "grid.parquet").set_index("grid_id")
    assert got["ev_cases"].sum() >= len(cases)
    counts = cases.groupby("grid").size()
    # Every sample case shequ placed is placed in the same grid here (planted rows aside).
    planted = got["ev_cases"] - counts.reindex(got.index, fill_value=0)
    assert planted.sum() <= 8 and (planted >= 0).all()
    checked = 0
    for (grid, step), g in steps.groupby(["grid", "step"]):
        if planted.get(grid, 0) != 0:
            continue  # a planted row counted here; the others are exact
        s = np.sort(g["seconds"].to_numpy())
        assert got.loc[grid, f"ev_{step}_timed"] == len(s)
        assert got.loc[grid, f"median_hours_{step}"] == pytest.approx(np.quantile(s, 0.5) / 3600, rel=1e-12)
        assert got.loc[grid, f"p90_hours_{step}"] == pytest.approx(pd.Series(s).quantile(0.9) / 3600, rel=1e-12)
        judged = g["on_time"].dropna()
        assert got.loc[grid, f"ev_{step}_on_time"] == int(judged.sum())
        assert got.loc[grid, f"ev_{step}_late"] == int((~judged.astype(bool)).sum())
        if len(judged):
            assert got.loc[grid, f"on_time_rate_{step}"] == pytest.approx(judged.mean(), rel=1e-12)
        checked += 1
    assert checked > 50
    sat = cases["满意度"].map({"满意": 1, "基本满意": 1, "5": 1, "4": 1, "3": 1, "不满意": 0, "2": 0, "1": 0})
    rates = sat.groupby(cases["grid"]).mean()
    for grid, rate in rates.items():
        if planted.get(grid, 0) == 0:
            assert got.loc[grid, "satisfaction_rate"] == pytest.approx(rate, rel=1e-12)


def test_open_cases_and_cards_of_the_worker_grid(run):
    d, out = run
    cards = pd.read_parquet(out / "events" / "cards.parquet")
    cases = placed_cases(d)
    grid = cards["grid_id"].iloc[0]
    mine = cases[(cases["grid"] == grid) & (cases["状态"] != "已结案")]
    assert set(cards["case_id"]) >= set(mine["案件编号"])
    red = cards[cards["card"] == "red"]
    assert (red["hours_left"] < 0).all()
    assert (cards.loc[cards["card"] != "red", "hours_left"].dropna() >= 0).all()
    assert "text" not in cards.columns


def test_research_run_holds_no_case_text(run, tmp_path):
    d, _ = run
    out = tmp_path / "research"
    subprocess.run([BIN, "run", "--quiet", str(d / "job.toml"), "--out", str(out)], check=True)
    texts = pd.read_csv(d / "events.csv", dtype=str)["问题描述"].dropna()
    phones = {t.split("联系电话")[1] for t in texts if "联系电话" in t}
    assert phones
    for p in (out / "events").glob("*.parquet"):
        blob = pd.read_parquet(p).drop(columns=["geometry"], errors="ignore").astype(str).to_csv()
        assert not any(ph in blob for ph in phones), p
