"""shequ (社区): the community data hub, in Python.

Build the five-level model (street → community → grid → building → household) from a job, then
ask it the questions community offices ask: special-needs populations per grid, service
coverage and accessibility, where the next facility would help most. Every computation is the
Rust library's own, the same as the ``shequ`` command line's.

>>> import shequ, tempfile
>>> job = shequ.Job.from_toml(shequ.sample(tempfile.mkdtemp(), households=300, communities=1))
>>> model = shequ.build(job)
>>> model.grids.height
4

Tables come back as polars DataFrames and speak the Arrow PyCapsule interface, so
``pyarrow.table(t)``, ``polars.DataFrame(t)``, DuckDB and lonboard read them without copying.
Spatial tables are :class:`GeoFrame` s (WKB geometry, CRS attached); ``to_geopandas()`` gives
a GeoDataFrame. Personal identifiers never come back in plain form unless asked for.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, overload

import polars as pl

from . import _core
from .errors import (
    ColumnNotFoundError,
    ComputeError,
    CrsError,
    DataError,
    FormatError,
    InternalError,
    IoError,
    JobError,
    PrivacyError,
    ShequError,
)

__version__ = _core.versions()[0]
PROJ_VERSION: str = _core.versions()[1]
"""The PROJ library compiled into the module (with its database embedded)."""

__all__ = [
    "ColumnNotFoundError",
    "ComputeError",
    "CrsError",
    "DataError",
    "FormatError",
    "GeoFrame",
    "InternalError",
    "IoError",
    "Job",
    "JobError",
    "Model",
    "PrivacyError",
    "ShequError",
    "build",
    "sample",
]

_LEVELS = ("street", "community", "grid")


class GeoFrame(pl.DataFrame):
    """A polars DataFrame with a WKB geometry column and its CRS.

    It is a ``polars.DataFrame`` in every respect (filter, join, group by, ...). Its Arrow
    stream (``__arrow_c_stream__``) marks the geometry column as GeoArrow WKB with the CRS, so
    GeoPandas, lonboard and DuckDB spatial see geometry; :meth:`to_geopandas` converts.

    Results of polars operations are plain DataFrames (polars does not carry the CRS): use
    ``GeoFrame.of(df, crs=frame.crs)`` to make one a GeoFrame again, without copying.
    """

    geometry_column: str = "geometry"
    crs: str | None = None
    """The CRS as PROJJSON text (``None`` if unknown)."""

    @classmethod
    def of(
        cls, df: pl.DataFrame, *, geometry_column: str = "geometry", crs: str | None = None
    ) -> "GeoFrame":
        """A GeoFrame sharing ``df``'s data (no copy)."""
        if geometry_column not in df.columns:
            raise ValueError(f"no column {geometry_column!r} in the frame")
        g = cls.__new__(cls)
        g._df = df._df
        g.geometry_column = geometry_column
        g.crs = crs
        return g

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        plain = pl.DataFrame._from_pydf(self._df)
        table = _core.geoarrow_table(plain, self.geometry_column, self.crs)
        return table.__arrow_c_stream__(requested_schema)

    def to_geopandas(self) -> Any:
        """A ``geopandas.GeoDataFrame`` with the geometry decoded and the CRS set."""
        import geopandas  # type: ignore[import-untyped]

        return geopandas.GeoDataFrame.from_arrow(self)

    @property
    def crs_name(self) -> str | None:
        """The CRS's name (from its PROJJSON), e.g. ``China Geodetic Coordinate System 2000``."""
        if self.crs is None:
            return None
        return json.loads(self.crs).get("name")


def _frame(t: _core.Table) -> pl.DataFrame:
    df = pl.DataFrame(t)
    if t.geometry_column is not None:
        return GeoFrame.of(df, geometry_column=t.geometry_column, crs=t.crs)
    return df


def _geo(t: _core.Table) -> GeoFrame:
    if t.geometry_column is None:
        raise TypeError("not a spatial table")
    return GeoFrame.of(pl.DataFrame(t), geometry_column=t.geometry_column, crs=t.crs)


def _is_arrow(data: object) -> bool:
    return hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__")


def _spool(data: object, directory: Path, name: str) -> tuple[Path, dict[str, Any]]:
    """Writes in-memory layer data to a file the job can read; returns it and job keys."""
    try:
        import geopandas  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - geopandas is optional
        geopandas = None
    if geopandas is not None and isinstance(data, geopandas.GeoDataFrame):
        if data.crs is None:
            raise CrsError(f"layer {name}: the GeoDataFrame has no CRS; set one with set_crs()")
        path = directory / f"{name}.parquet"
        data.to_parquet(path, index=False)
        return path, {}
    if type(data).__module__.startswith("pandas"):
        data = pl.from_pandas(data)
    if isinstance(data, GeoFrame):
        data = pl.DataFrame._from_pydf(data._df)
    if _is_arrow(data):
        path = directory / f"{name}.parquet"
        _core.write_parquet(data, path)
        return path, {}
    raise TypeError(
        f"layer {name}: `data` must be a GeoDataFrame, a pandas or polars DataFrame or an "
        f"Arrow table/stream, not {type(data).__name__}"
    )


class Job:
    """A job: which layers to read, how their columns map, CRS, privacy and analyses.

    The structure is the TOML job file's (see ``docs/job.md``): sections ``layers``,
    ``options``, ``privacy``, ``special_needs``, ``coverage``, ``output``. Build one from a
    file (:meth:`from_toml`), a dict (:meth:`from_dict`) or keyword arguments. Any layer may
    give ``data`` (a GeoDataFrame, polars or pandas DataFrame, or Arrow table) instead of
    ``path``; it is written to a temporary Parquet file the job reads. So may each entry of
    ``registers`` (a department's list, see ``docs/registers.md``).

    >>> job = shequ.Job(layers={"grids": {"path": "grids.geojson", "id": "code"}}, base_dir=".")
    >>> job.to_dict()["layers"]["grids"]["id"]
    'code'
    """

    def __init__(self, *, base_dir: str | os.PathLike[str] | None = None, **sections: Any):
        self._spool: tempfile.TemporaryDirectory[str] | None = None
        sections = {k: v for k, v in sections.items() if v is not None}
        layers = copy.copy(sections.get("layers") or {})
        for name, layer in list(layers.items()):
            layers[name] = self._spooled(layer, name, f"[layers.{name}]")
        if layers:
            sections["layers"] = layers
        registers = [
            self._spooled(r, f"register-{r.get('id')}", f"[[registers]] {r.get('id')!r}")
            for r in sections.get("registers") or []
        ]
        if registers:
            sections["registers"] = registers
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        self._core = _core.Job.from_json(json.dumps(sections, default=str), base)

    def _spooled(self, entry: Any, name: str, what: str) -> Any:
        """A layer or register whose ``data`` is written to a temporary file it then reads."""
        if not (isinstance(entry, Mapping) and "data" in entry):
            return entry
        entry = dict(entry)
        data = entry.pop("data")
        if "path" in entry:
            raise JobError(f"{what} has both `path` and `data`")
        if self._spool is None:
            self._spool = tempfile.TemporaryDirectory(prefix="shequ-job-")
        path, extra = _spool(data, Path(self._spool.name), name)
        entry["path"] = str(path)
        entry.update(extra)
        return entry

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> "Job":
        """Reads a job file; relative paths are resolved against its directory."""
        job = cls.__new__(cls)
        job._spool = None
        job._core = _core.Job.from_toml(Path(path))
        return job

    @classmethod
    def from_dict(
        cls, sections: Mapping[str, Any], *, base_dir: str | os.PathLike[str] | None = None
    ) -> "Job":
        """A job from a dict of sections (as the TOML file has them)."""
        return cls(base_dir=base_dir, **dict(sections))

    def to_dict(self) -> dict[str, Any]:
        """Every section, with defaults filled in."""
        return json.loads(self._core.to_json())

    def replace(self, **sections: Any) -> "Job":
        """A copy with some sections replaced (``None`` removes one); same base directory."""
        d = self.to_dict()
        for k, v in sections.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        job = Job(base_dir=self.base_dir, **d)
        job._spool = job._spool or self._spool
        return job

    @property
    def base_dir(self) -> Path:
        """The directory relative paths are resolved against."""
        return Path(self._core.base_dir)

    @property
    def source(self) -> Path | None:
        """The job file, if read from one."""
        s = self._core.source
        return None if s is None else Path(s)

    def __repr__(self) -> str:
        name = self.to_dict().get("name")
        return f"Job(name={name!r}, base_dir={str(self.base_dir)!r})"


def build(job: Job | str | os.PathLike[str]) -> "Model":
    """Reads, checks, transforms and places every row of the job's layers.

    Runs with the GIL released; Ctrl-C interrupts it. Rows that cannot be placed are in
    :attr:`Model.quality`; a layer that cannot be used as a whole raises a :class:`ShequError`.
    """
    if not isinstance(job, Job):
        job = Job.from_toml(job)
    return Model(_core.build(job._core), job)


def sample(
    out_dir: str | os.PathLike[str],
    *,
    households: int = 4000,
    communities: int = 7,
    grids_per_community: int = 4,
    edge_detail: int = 6,
    plant_problems: bool = True,
    seed: int = 2024,
    streets: int = 1,
) -> Path:
    """Writes a deterministic synthetic district (layers, rosters, facilities, walking paths
    and ``job.toml``) into ``out_dir``; returns the job file's path.

    ``edge_detail`` adds vertices to every boundary edge (30 gives surveyed-looking boundaries
    of a hundred-plus vertices); ``plant_problems`` plants data-quality problems of every kind;
    the communities are dealt to ``streets`` streets in contiguous runs.
    """
    return Path(
        _core.sample(
            Path(out_dir),
            households=households,
            communities=communities,
            grids_per_community=grids_per_community,
            edge_detail=edge_detail,
            plant_problems=plant_problems,
            seed=seed,
            streets=streets,
        )
    )


class Model:
    """A built model and its analyses.

    Level tables (:attr:`streets`, :attr:`communities`, :attr:`grids`, :attr:`buildings`,
    :attr:`facilities`) and analysis tables are the job's outputs as ``shequ run`` writes them,
    under the job's privacy policy: research (aggregates, small counts suppressed) unless the
    job's ``[privacy]`` section says otherwise. Analyses are computed on first use and kept.
    """

    def __init__(self, core: _core.Model, job: Job):
        self._core = core
        self._job = job

    # -- outputs -----------------------------------------------------------------------------

    def _outputs(self, job: Job | None = None) -> tuple[dict[str, _core.Table], dict[str, str]]:
        return self._core.outputs((job or self._job)._core)

    def table(self, name: str, **sections: Any) -> pl.DataFrame:
        """One output table by name as in an output directory, without extension: ``grids``,
        ``special_needs/grid``, ``coverage/blind_spots``, ``suppression`` ... Keyword
        arguments replace job sections for this call (e.g. ``privacy={...}``)."""
        job = self._job.replace(**sections) if sections else None
        tables, _ = self._outputs(job)
        if name not in tables:
            raise KeyError(
                f"no output table {name!r} for this job; it has: {', '.join(sorted(tables))}"
            )
        return _frame(tables[name])

    def tables(self, **sections: Any) -> dict[str, pl.DataFrame]:
        """Every output table by name (see :meth:`table`)."""
        job = self._job.replace(**sections) if sections else None
        tables, _ = self._outputs(job)
        return {k: _frame(v) for k, v in tables.items()}

    def summary(self, name: str = "special_needs/summary.md", **sections: Any) -> str:
        """A person-readable summary: ``special_needs/summary.md`` or ``coverage/summary.md``."""
        job = self._job.replace(**sections) if sections else None
        _, texts = self._outputs(job)
        if name not in texts:
            raise KeyError(f"no summary {name!r}; there are: {', '.join(sorted(texts))}")
        return texts[name]

    def _level_table(self, name: str) -> GeoFrame:
        tables, _ = self._outputs()
        if name in tables:
            return _geo(tables[name])
        if name != "facilities" and name in self.levels:
            raise PrivacyError(
                f"no {name} table under this job's privacy policy (research outputs publish "
                f"buildings only when the finest level is the building)"
            )
        raise KeyError(f"the model has no {name}: the job reads no such layer")

    @property
    def streets(self) -> GeoFrame:
        """Streets (街道) with counts, in the job's output CRS."""
        return self._level_table("streets")

    @property
    def communities(self) -> GeoFrame:
        """Communities (社区) with counts."""
        return self._level_table("communities")

    @property
    def grids(self) -> GeoFrame:
        """Grids (网格) with counts."""
        return self._level_table("grids")

    @property
    def buildings(self) -> GeoFrame:
        """Buildings (楼栋) with counts, where the privacy policy allows."""
        return self._level_table("buildings")

    @property
    def facilities(self) -> GeoFrame:
        """Service facilities."""
        return self._level_table("facilities")

    @property
    def households(self) -> pl.DataFrame:
        """Households with their building, grid, community and street codes; ids masked
        (see :meth:`household_table` for pseudonyms or plain ids). No locations."""
        return self.household_table()

    def household_table(self, identifiers: str = "masked") -> pl.DataFrame:
        """Households with ``identifiers`` ``"masked"`` (default), ``"pseudonym"`` (keyed, needs
        the job's privacy key) or ``"plain"`` (explicit request for the data owner's own use)."""
        return _frame(self._core.households(identifiers))

    @property
    def quality(self) -> pl.DataFrame:
        """The data-quality report: one row per problem (layer, index, id, kind, severity,
        detail). Household and resident ids are masked; research runs leave them out."""
        return self.table("quality")

    # -- analyses ----------------------------------------------------------------------------

    def _with(self, section: str, options: Mapping[str, Any]) -> Job:
        current = self._job.to_dict().get(section) or {}
        merged = {**current, **options} if options else current
        return self._job.replace(**{section: merged})

    def _section_table(self, section: str, name: str, options: Mapping[str, Any]) -> pl.DataFrame:
        """Table ``<section>/<name>`` of the job with ``options`` merged into ``[section]``."""
        tables, _ = self._outputs(self._with(section, options))
        key = f"{section}/{name}"
        if key not in tables:
            have = sorted(k.split("/", 1)[1] for k in tables if k.startswith(f"{section}/"))
            raise KeyError(f"no {key!r} for this job and privacy policy; there are: {have}")
        return _frame(tables[key])

    @overload
    def special_needs(
        self, level: str = "grid", *, table: None = None, **options: Any
    ) -> GeoFrame: ...
    @overload
    def special_needs(self, level: str = "grid", *, table: str, **options: Any) -> pl.DataFrame: ...
    def special_needs(
        self, level: str = "grid", *, table: str | None = None, **options: Any
    ) -> pl.DataFrame:
        """Special-needs counts, shares, age structure and hot spots per unit of ``level``
        (``street``, ``community``, ``grid`` or ``building``), or another table of the pass
        (``table="suppression"``, ``"remainders"``). ``options`` override the job's
        ``[special_needs]`` section (e.g. ``categories=[...]``, ``reference_date=...``)."""
        return self._section_table("special_needs", table or level, options)

    @overload
    def coverage(self, level: str = "grid", *, table: None = None, **options: Any) -> GeoFrame: ...
    @overload
    def coverage(self, level: str = "grid", *, table: str, **options: Any) -> pl.DataFrame: ...
    def coverage(
        self, level: str = "grid", *, table: str | None = None, **options: Any
    ) -> pl.DataFrame:
        """Service coverage per unit of ``level`` (``street``, ``community``, ``grid``): target
        residents, those within each threshold, shares, mean nearest distance, accessibility
        scores and blind-spot flags; or another table (``table="blind_spots"``, ``"equity"``,
        ``"lorenz"``, ``"rules"``, ``"siting"``). ``options`` override ``[coverage]``."""
        return self._section_table("coverage", table or level, options)

    def accessibility(self, level: str = "grid", **options: Any) -> GeoFrame:
        """Two-step floating catchment accessibility (2SFCA, E2SFCA, G2SFCA) per unit of
        ``level``: the unit columns and the ``<measure>_2sfca``/``_e2sfca``/``_g2sfca`` scores
        of :meth:`coverage`. ``options`` override ``[coverage]`` (e.g.
        ``accessibility={"catchment_m": 1000}``)."""
        cov = self.coverage(level, **options)
        keep = [
            c
            for c in cov.columns
            if c.endswith(("_id", "_2sfca", "_e2sfca", "_g2sfca")) or c in ("name",)
        ]
        out = cov.select([*keep, cov.geometry_column])
        return GeoFrame.of(out, geometry_column=cov.geometry_column, crs=cov.crs)

    def site(self, **options: Any) -> GeoFrame:
        """Where new facilities would cover the most uncovered target residents: the greedy
        (and, when solved, exact) picks of the job's ``[coverage.siting]`` section, which
        ``options`` override (``rule=``, ``k=``, ``distance_m=`` ...)."""
        current = self._job.to_dict().get("coverage") or {}
        siting = {**(current.get("siting") or {}), **options}
        job = self._job.replace(coverage={**current, "siting": siting})
        tables, _ = self._outputs(job)
        if "coverage/siting" not in tables:
            raise KeyError("no siting result: the job's [coverage.siting] found no candidates")
        return _geo(tables["coverage/siting"])

    # -- writing and facts -------------------------------------------------------------------

    def write(self, out_dir: str | os.PathLike[str], **sections: Any) -> list[str]:
        """Writes every output under ``out_dir`` as ``shequ run`` does (GeoParquet, GeoJSON,
        Parquet, summaries, ``manifest.json``, the map if asked); returns the files."""
        job = self._job.replace(**sections) if sections else self._job
        return self._core.write(Path(out_dir), job._core)

    @property
    def working_crs(self) -> str:
        """The metric working CRS chosen from the data (e.g. ``EPSG:4545``)."""
        return self._core.working_crs

    @property
    def levels(self) -> list[str]:
        """The levels present, top down."""
        return self._core.levels

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows read, placed and rejected per layer (every row is one or the other)."""
        return self._core.counts()

    @property
    def job(self) -> Job:
        """The job the model was built from."""
        return self._job

    def __repr__(self) -> str:
        return repr(self._core)

