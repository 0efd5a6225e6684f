"""A generated city on Spark's local mode beside `shequ run` on one machine.

    target/py-venv/bin/python benches/spark/city.py HOUSEHOLDS [COMMUNITIES]

`shequ sample` generates a city of HOUSEHOLDS households, with its planted problems (about 2.7 residents and 1.5 cases
each; 8 grids per community, 30 extra vertices per boundary edge), and its cases are turned
into a Parquet file of text columns. The city's sample job (with the heuristic complementary suppression) then runs twice, as in
`cases.py`: `shequ run`, and `shequ.spark.run` on `local[2]` with the cases as a DataFrame
(each executor's Python worker builds the frame, households and residents included, from
the job's paths). Wall time and the peak summed RSS of each run's process tree are printed,
and the outputs are checked equal. The Spark session is stopped after the fold, before the
driver's finish (`shequ.spark.partials`, then `_core.run_with_cases`).
"""

import os
import pathlib
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from cases import ROOT, side_by_side  # noqa: E402

# As `shequ.spark.run`, with the session stopped between the executors' fold and the driver's
# finish, so that the executors' frames are gone before the driver's run needs its memory.
SPARK_RUN = """
import os, sys
from pathlib import Path
from pyspark.sql import SparkSession
import shequ, shequ.spark
from shequ import _core
os.environ["PYSPARK_PYTHON"] = sys.executable
spark = (SparkSession.builder.master("local[2]").appName("shequ-bench")
         .config("spark.ui.enabled", "false").config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.memory", "4g").getOrCreate())
job = shequ.Job.from_toml(sys.argv[1])
rows = shequ.spark.numbered(spark.read.parquet(sys.argv[2]))
partials = shequ.spark.partials(job, rows)
spark.stop()
_core.run_with_cases(job._core, Path(sys.argv[3]), partials)
"""


def main():
    households = int(sys.argv[1])
    communities = int(sys.argv[2]) if len(sys.argv) > 2 else max(1, households // 3333)
    shequ_bin = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))
    work = pathlib.Path(tempfile.mkdtemp(prefix="shequ-spark-city-"))
    city = work / "city"
    subprocess.run(
        [shequ_bin, "sample", "-q", "--households", str(households),
         "--communities", str(communities), "--grids-per-community", "8",
         "--edge-detail", "30", "--out", str(city)],
        check=True,
    )
    header = pacsv.read_csv(city / "events.csv").schema.names
    cases = pacsv.read_csv(
        city / "events.csv",
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header}, strings_can_be_null=False),
    )
    pq.write_table(cases, city / "events.parquet", row_group_size=200_000)
    text = (city / "job.toml").read_text(encoding="utf-8")
    assert 'path = "events.csv"' in text
    # The heuristic complementary suppression: the optimal programme (microlp) takes minutes
    # per run at this size, the same in both runs, and is not what is compared here.
    assert "[privacy]\n" in text
    text = text.replace("[privacy]\n", '[privacy]\ncomplementary = "heuristic"\n', 1)
    (city / "job.toml").write_text(
        text.replace('path = "events.csv"', 'path = "events.parquet"'), encoding="utf-8")
    job = str(city / "job.toml")
    residents = sum(1 for _ in open(city / "residents.csv", "rb")) - 1
    print(f"{households:,} households, about {residents:,} resident rows, "
          f"{cases.num_rows:,} cases")
    side_by_side(work, job, city / "events.parquet", shequ_bin, SPARK_RUN)


if __name__ == "__main__":
    main()
