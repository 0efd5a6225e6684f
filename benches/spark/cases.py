"""Cases on Spark's local mode beside `shequ run` on one machine, on the same rows.

    [ARROW_BATCH=rows] target/py-venv/bin/python benches/spark/cases.py [copies]

The sample city's cases are copied `copies` times (new ids, same places and times: 5,847
rows per copy; 171 copies make 1,000,000 cases) into a Parquet file of text columns. The
same job then runs twice: `shequ run` (the CLI cargo built, $SHEQU_BIN) and
`shequ.spark.run` on `local[2]` with the cases as a DataFrame. Each run's wall time and the
peak of the summed RSS of its process tree (sampled every 0.2 s from /proc) are printed, and
the two runs' output tables are checked equal.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pandas as pd
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data-samples" / "sample-city"


def tree_rss(pid):
    """The summed RSS (bytes) of `pid` and its descendants."""
    children = {}
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(stat[1]), []).append(int(p.name))
        except (OSError, IndexError):
            continue
    total, todo = 0, [pid]
    while todo:
        q = todo.pop()
        todo.extend(children.get(q, []))
        try:
            for line in (pathlib.Path("/proc") / str(q) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def measured(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0]

    def sample():
        while p.poll() is None:
            peak[0] = max(peak[0], tree_rss(p.pid))
            time.sleep(0.2)

    t = threading.Thread(target=sample)
    t.start()
    out, err = p.communicate()
    t.join()
    if p.returncode != 0:
        lines = [l for l in err.decode().splitlines() if not l.lstrip().startswith("at ")]
        sys.exit(f"{cmd[0]} failed:\n" + "\n".join(lines[-60:]))
    return time.perf_counter() - t0, peak[0], out.decode()


SPARK_RUN = """
import os, sys
from pyspark.sql import SparkSession
import shequ.spark
os.environ["PYSPARK_PYTHON"] = sys.executable
spark = (SparkSession.builder.master("local[2]").appName("shequ-bench")
         .config("spark.ui.enabled", "false").config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.memory", "4g")
         .config("spark.sql.execution.arrow.maxRecordsPerBatch", os.environ.get("ARROW_BATCH", "10000"))
         .getOrCreate())
cases = spark.read.parquet(sys.argv[2])
shequ.spark.run(spark, sys.argv[1], sys.argv[3], cases=cases)
spark.stop()
"""


def side_by_side(work, job, cases, shequ_bin, spark_run):
    """Runs `job` with `shequ run` and with the Spark script `spark_run` (its arguments: the
    job, `cases` (the cases' Parquet file, or the city's directory), the output directory); prints both runs' time and peak,
    checks their outputs equal, and removes `work`."""
    t1, m1, _ = measured([shequ_bin, "run", "-q", job, "--out", str(work / "one")])
    print(f"shequ run (one machine, 2 cores):  {t1:7.1f} s  peak {m1 / 1e9:5.2f} GB")
    script = work / "spark_run.py"
    script.write_text(spark_run)
    t2, m2, said = measured([sys.executable, str(script), job, str(cases), str(work / "spark")])
    print(f"shequ.spark.run (local[2]):        {t2:7.1f} s  peak {m2 / 1e9:5.2f} GB")
    for line in said.splitlines():
        if line.startswith("bench: "):  # what the script measured of itself
            print(line[len("bench: "):])
    a, b = tables(work / "one"), tables(work / "spark")
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].equals(b[name]), name
    m = [json.loads((work / d / "manifest.json").read_text())["counts"] for d in ("one", "spark")]
    assert m[0] == m[1]
    print(f"outputs equal ({len(a)} tables); events read {m[0]['events']['read']:,}")
    steps = [json.loads((work / d / "manifest.json").read_text())["steps"] for d in ("one", "spark")]
    cov = [sum(x["seconds"] for x in s if x["step"] == "coverage") for s in steps]
    print(f"coverage step: {cov[0]:.1f} s on one machine, {cov[1]:.1f} s on the driver")
    shutil.rmtree(work)


def tables(out):
    return {str(p.relative_to(out)): pq.read_table(p) for p in sorted(out.rglob("*.parquet"))}


def main():
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 171
    work = pathlib.Path(tempfile.mkdtemp(prefix="shequ-spark-bench-"))
    city = work / "city"
    shutil.copytree(SAMPLE, city)
    one = pd.read_csv(city / "events.csv", dtype=str, keep_default_na=False)
    id_col = one.columns[0]
    parts = []
    for k in range(copies):
        c = one.copy()
        c[id_col] = c[id_col] + f"-{k:04d}"
        parts.append(c)
    cases = pd.concat(parts, ignore_index=True)
    cases.to_parquet(city / "events.parquet", index=False, row_group_size=100_000)
    text = (city / "job.toml").read_text(encoding="utf-8")
    (city / "job.toml").write_text(
        text.replace('path = "events.csv"', 'path = "events.parquet"'), encoding="utf-8")
    job = str(city / "job.toml")
    shequ_bin = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))
    print(f"{len(cases):,} cases over the sample city ({copies} copies)")
    side_by_side(work, job, city / "events.parquet", shequ_bin, SPARK_RUN)


if __name__ == "__main__":
    main()
