"""A generated city on Spark's local mode beside `shequ run` on one machine.

    target/py-venv/bin/python benches/spark/city.py HOUSEHOLDS [COMMUNITIES] [--rosters]
        [--streets=N] [--by-street]

`shequ sample` generates a city of HOUSEHOLDS households, with its planted problems (about 2.7 residents and 1.5 cases
each; 8 grids per community, 30 extra vertices per boundary edge), and its cases are turned
into a Parquet file of text columns. The city's sample job (with the heuristic complementary suppression) then runs twice, as in
`cases.py`: `shequ run`, and `shequ.spark.run` on `local[2]` with the cases as a DataFrame
(each executor's Python worker builds the frame, households and residents included, from
the job's paths). Wall time and the peak summed RSS of each run's process tree are printed,
and the outputs are checked equal. The Spark session is stopped after the fold, before the
driver's finish (`shequ.spark.partials`, then `_core.run_with_partials`).

With `--rosters`, the households and the residents are Parquet DataFrames as well: the
households are placed on the executors against the driver's frame (one broadcast), the
residents placed against the broadcast households and folded by the analyses of people
there, and the cases folded against the broadcast roster ids, both in the driver's frame
without footprints (`shequ.spark.run`'s path: no executor reads a roster file or a small
layer).

`--streets=N` deals the communities to N streets (one by default). With `--by-street` (and
`--rosters`), the households are placed in the by-street mode: each street's rows against
its piece of the frame (`shequ.spark.by_street`), and the residents and cases against the
driver's frame without footprints (one broadcast).
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
city = Path(sys.argv[2])
read = lambda name: shequ.spark.numbered(spark.read.parquet(str(city / f"{name}.parquet")))
native, placed, people, reach, frame = shequ.spark._native(sys.argv[1]), None, None, None, None
if (city / "households.parquet").exists():
    households = read("households")
    native = shequ.spark.resolved(native, households)
    if os.environ.get("SHEQU_BENCH_BY_STREET"):
        placed, reach, frame = shequ.spark.by_street(spark, native, households)
        print(f"bench: the frame of people (broadcast to the residents' and cases' executors): "
              f"{len(frame) / 1e6:.2f} MB")
    else:
        piece, frame = _core.whole_frame(native)
        print(f"bench: the whole frame as one piece (broadcast to the households' executors): "
              f"{len(piece) / 1e6:.2f} MB; the frame of people: {len(frame) / 1e6:.2f} MB")
        placed = shequ.spark._households(spark, native, households, piece)
    placed = [shequ.spark._merged_households(placed)]
    print(f"bench: the merged households (broadcast): {len(placed[0]) / 1e6:.2f} MB")
    people = shequ.spark._residents(spark, native, read("residents"), placed, None, frame)
cases = shequ.spark._cases(spark, native, read("events"), people, frame)
spark.stop()
_core.run_with_partials(native, Path(sys.argv[3]), placed, cases, people, reach)
"""


def as_parquet(city, name, encoding="utf8"):
    """`name`.csv as a Parquet file of text columns, and the job reading it (both runs read
    the Parquet file; a planted broken line, which Arrow cannot parse, is left out); its
    rows."""
    read = pacsv.ReadOptions(encoding=encoding)
    parse = pacsv.ParseOptions(invalid_row_handler=lambda row: "skip")
    header = pacsv.read_csv(city / f"{name}.csv", read_options=read,
                            parse_options=parse).schema.names
    table = pacsv.read_csv(
        city / f"{name}.csv",
        read_options=read,
        parse_options=parse,
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header}, strings_can_be_null=False),
    )
    pq.write_table(table, city / f"{name}.parquet", row_group_size=200_000)
    text = (city / "job.toml").read_text(encoding="utf-8")
    assert f'path = "{name}.csv"' in text
    text = text.replace(f'path = "{name}.csv"', f'path = "{name}.parquet"')
    (city / "job.toml").write_text(text, encoding="utf-8")
    return table.num_rows


def main():
    households = int([a for a in sys.argv[1:] if not a.startswith("--")][0])
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    communities = int(args[1]) if len(args) > 1 else max(1, households // 3333)
    streets = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--streets=")), 1)
    if "--by-street" in sys.argv:
        assert "--rosters" in sys.argv, "--by-street places the households DataFrame"
        os.environ["SHEQU_BENCH_BY_STREET"] = "1"
    shequ_bin = os.environ.get("SHEQU_BIN", str(ROOT / "target" / "debug" / "shequ"))
    work = pathlib.Path(tempfile.mkdtemp(prefix="shequ-spark-city-"))
    city = work / "city"
    subprocess.run(
        [shequ_bin, "sample", "-q", "--households", str(households),
         "--streets", str(streets), "--communities", str(communities),
         "--grids-per-community", "8",
         "--edge-detail", "30", "--out", str(city)],
        check=True,
    )
    rosters = "--rosters" in sys.argv
    cases = as_parquet(city, "events")
    text = (city / "job.toml").read_text(encoding="utf-8")
    # The heuristic complementary suppression: the optimal programme (microlp) takes minutes
    # per run at this size, the same in both runs, and is not what is compared here.
    assert "[privacy]\n" in text
    text = text.replace("[privacy]\n", '[privacy]\ncomplementary = "heuristic"\n', 1)
    (city / "job.toml").write_text(text, encoding="utf-8")
    job = str(city / "job.toml")
    if rosters:
        as_parquet(city, "households")
        residents = as_parquet(city, "residents", "gb18030")
    else:
        residents = sum(1 for _ in open(city / "residents.csv", "rb")) - 1
    print(f"{households:,} households, about {residents:,} resident rows, {cases:,} cases; "
          f"{'households, residents and cases' if rosters else 'cases'} as DataFrames; "
          f"{streets} streets, {'by street' if os.environ.get('SHEQU_BENCH_BY_STREET') else 'broadcast'}")
    side_by_side(work, job, city, shequ_bin, SPARK_RUN)


if __name__ == "__main__":
    main()
