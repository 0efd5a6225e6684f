"""Spark tables from a run's outputs (:func:`shequ.spark.save_tables`): each Parquet output
saved as a table named by its path, Hive partitions kept, geometry columns as Spark's
GEOMETRY type where this Spark has it and knows the column's CRS."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession


def _table_name(rel: Path, prefix: str) -> str:
    parts = list(rel.with_suffix("").parts) if rel.suffix == ".parquet" else list(rel.parts)
    return prefix + "_".join("".join(c if c.isalnum() else "_" for c in p) for p in parts)


def _tables_in(out: Path) -> list[tuple[str, Path]]:
    """The Parquet tables of an output directory: files, and directories of Hive partitions
    (children named ``key=value``), relative to ``out``."""
    found = []
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if any("=" in p for p in rel.parts):
            continue
        if path.is_file() and path.suffix == ".parquet":
            found.append((str(rel), path))
        elif path.is_dir() and any("=" in c.name for c in path.iterdir() if c.is_dir()):
            found.append((str(rel), path))
    return found


def _geometry_columns(path: Path) -> dict[str, int | None]:
    """Each GeoParquet geometry column of the table at ``path`` with its EPSG code (``None``
    when its CRS has none)."""
    import pyarrow.parquet as pq

    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    if not files:
        return {}
    meta = pq.read_schema(files[0]).metadata or {}
    if b"geo" not in meta:
        return {}
    columns = json.loads(meta[b"geo"]).get("columns", {})
    codes: dict[str, int | None] = {}
    for name, col in columns.items():
        crs = col.get("crs") or {}
        ident = crs.get("id", crs) if isinstance(crs, dict) else {}
        epsg = ident.get("authority") == "EPSG" and ident.get("code")
        codes[name] = int(epsg) if epsg else None
    return codes


def _with_geometry(df: "DataFrame", column: str, epsg: int | None) -> "DataFrame":
    """``df`` with its WKB ``column`` as Spark's GEOMETRY type in the column's CRS, where this
    Spark has the type and the CRS; else unchanged (WKB, the CRS in the table's properties)."""
    from pyspark.sql import functions as F

    if epsg is None or not hasattr(F, "st_geomfromwkb"):
        return df
    try:
        typed = df.withColumn(column, F.st_setsrid(F.st_geomfromwkb(column), F.lit(epsg)))
        typed.schema  # Spark checks the CRS here
        return typed
    except Exception:  # noqa: BLE001 - Spark refuses CRSs it does not know (AnalysisException)
        return df


def save_tables(
    spark: "SparkSession",
    out: str | os.PathLike[str],
    *,
    database: str | None = None,
    prefix: str = "",
    mode: str = "overwrite",
) -> dict[str, str]:
    """Saves every Parquet output of a run in ``out`` as a Spark table (in ``database`` when
    given), named by its path (``special_needs/grid.parquet`` is ``special_needs_grid``)
    after ``prefix``; Hive-partitioned outputs keep their partitions. Geometry columns become
    Spark's GEOMETRY type in their CRS where this Spark has the type and knows the CRS (Spark
    4.1+: EPSG:4326); otherwise they stay WKB, with the CRS in the table property
    ``shequ.crs``. Returns each table's name by output path."""
    saved = {}
    # Partition values are codes: "500103001" stays text, leading zeros and all.
    inference = "spark.sql.sources.partitionColumnTypeInference.enabled"
    before = spark.conf.get(inference) or "true"
    spark.conf.set(inference, "false")
    try:
        for rel, path in _tables_in(Path(out)):
            saved[rel] = _save_table(spark, rel, path, database, prefix, mode)
    finally:
        spark.conf.set(inference, before)
    return saved


def _partition_keys(path: Path) -> list[str]:
    """The Hive partition keys of a table directory, outermost first."""
    keys = []
    while path.is_dir():
        inner = sorted(c for c in path.iterdir() if c.is_dir() and "=" in c.name)
        if not inner:
            break
        keys.append(inner[0].name.split("=", 1)[0])
        path = inner[0]
    return keys


def _save_table(
    spark: "SparkSession", rel: str, path: Path, database: str | None, prefix: str, mode: str
) -> str:
    """One output saved as a table (see :func:`save_tables`); its name."""
    name = _table_name(Path(rel), prefix)
    if database:
        name = f"{database}.{name}"
    df = spark.read.parquet(str(path))
    geometry = _geometry_columns(path)
    for column, epsg in geometry.items():
        df = _with_geometry(df, column, epsg)
    writer = df.write.mode(mode)
    keys = _partition_keys(path)
    if keys:
        writer = writer.partitionBy(*keys)
    writer.saveAsTable(name)
    for column, epsg in geometry.items():
        if epsg is None or dict(df.dtypes)[column] == "binary":
            crs = f"EPSG:{epsg}" if epsg else "see the GeoParquet file's metadata"
            prop = f"'shequ.crs.{column}' = '{crs}'"
            spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({prop})")
    return name
