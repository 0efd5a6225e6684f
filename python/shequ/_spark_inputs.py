"""What ``shequ.spark.run`` collects on the driver from DataFrames that stand for a job's
files: the departmental registers and the small layers. Each is small; it is written to a
Parquet file the job then reads in place of its own path."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from typing import TYPE_CHECKING, Any, Mapping

from . import _core
from .errors import JobError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

# The tables of ``[events]`` that the executors folding cases read (``analytics::events::Rules``).
RULE_FILES = ("deadlines", "calendar", "classes")

# The small layers a DataFrame may stand for: ``[layers.<name>]``, and ``network`` for
# ``[coverage.network]``.
SMALL_LAYERS = ("streets", "communities", "grids", "buildings", "facilities", "network")


def _with_layers(native: Any, layers: "Mapping[str, DataFrame]", spool: str) -> Any:
    """The job with each small layer of ``layers`` read from a Parquet file collected on the
    driver (``DataFrame.toArrow``) into the directory ``spool``: its geometry a WKB column,
    ``geometry`` unless the layer's ``geometry_column`` names another, in the layer's
    ``crs`` (which the job must give: plain Parquet has none). The job as it is when there
    are none."""
    import pyarrow.parquet as pq

    if not layers:
        return native
    data = json.loads(native.to_json())
    for name in sorted(layers):
        if name not in SMALL_LAYERS:
            raise JobError(
                f"layers={{{name!r}: ...}}: give one of {', '.join(SMALL_LAYERS)} (the rosters "
                "are households=, residents= and cases=)"
            )
        section = (data.get("coverage") or {}) if name == "network" else data["layers"]
        entry = section.get(name)
        if entry is None:
            where = "[coverage.network]" if name == "network" else f"[layers.{name}]"
            raise JobError(f"layers={{{name!r}: ...}}: the job has no {where}")
        path = os.path.join(spool, f"{name}.parquet")
        pq.write_table(layers[name].toArrow(), path)
        entry["path"], entry["encoding"] = path, None
        entry["geometry_column"] = entry.get("geometry_column") or "geometry"
        if "derive" in entry:
            entry["derive"] = False
    return _core.Job.from_json(json.dumps(data), native.base_dir)


def _with_registers(
    spark: "SparkSession", native: Any, registers: "Mapping[str, DataFrame]"
) -> tuple[Any, tuple[str, Any] | None]:
    """The job with each register of ``registers`` read from a Parquet file collected from
    its DataFrame, and (the files' directory, the broadcast of {path: bytes}); the job as it
    is when there are none."""
    import pyarrow.parquet as pq

    if not registers:
        return native, None
    data = json.loads(native.to_json())
    known = {r["id"] for r in data.get("registers", [])}
    unknown = sorted(set(registers) - known)
    if unknown:
        raise JobError(f"no [[registers]] entry with id {', '.join(map(repr, unknown))}")
    spool = tempfile.mkdtemp(prefix="shequ-registers-")
    files = {}
    for k, entry in enumerate(data["registers"]):
        if entry["id"] not in registers:
            continue
        path = os.path.join(spool, f"register-{k}.parquet")
        pq.write_table(registers[entry["id"]].toArrow(), path)
        entry["path"], entry["sheet"] = path, None
        with open(path, "rb") as f:
            files[path] = f.read()
    job = _core.Job.from_json(json.dumps(data), native.base_dir)
    return job, (spool, spark.sparkContext.broadcast(files))


def _materialised(files: dict[str, bytes]) -> None:
    """The collected registers' files on this executor, at the paths the job names."""
    for path, data in files.items():
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            partial = f"{path}.{uuid.uuid4().hex}"
            with open(partial, "wb") as f:
                f.write(data)
            os.replace(partial, path)


def _with_rules(spark: "SparkSession", native: Any) -> tuple[Any, str, Any] | None:
    """For the executors folding cases: the job with its rule tables (``[events]``'s
    ``deadlines``, ``calendar``, ``classes``, where it gives them) read once on the driver
    and named at paths in a spool directory, (that job, the directory, the broadcast of
    {path: bytes}) that each executor materialises (:func:`_materialised`) before it reads
    them; ``None`` when the job gives none. The driver's own run keeps the job's paths, so
    the manifest names the job's files."""
    data = json.loads(native.to_json())
    events = data.get("events") or {}
    given = [k for k in RULE_FILES if events.get(k)]
    if not given:
        return None
    spool = tempfile.mkdtemp(prefix="shequ-rules-")
    files = {}
    for k in given:
        source = os.path.join(str(native.base_dir), events[k])
        try:
            with open(source, "rb") as f:
                files[os.path.join(spool, f"{k}-{os.path.basename(source)}")] = f.read()
        except OSError as e:
            raise JobError(f"[events] {k}: cannot read {source}: {e}") from e
        events[k] = list(files)[-1]
    job = _core.Job.from_json(json.dumps(data), native.base_dir)
    return job, spool, spark.sparkContext.broadcast(files)
