"""Type stubs of the native module ``shequ._core`` (checked by ``mypy.stubtest``)."""

import os
from pathlib import Path
from typing import Any, final

__all__ = [
    "Job",
    "Model",
    "Table",
    "build",
    "case_keys",
    "fold_cases",
    "fold_households",
    "fold_households_by_street",
    "fold_residents",
    "geoarrow_table",
    "household_extent",
    "household_keys",
    "household_streets",
    "merge_cases",
    "merge_households",
    "person_list_parts",
    "resident_keys",
    "roster_ids",
    "run_deferring_lists",
    "run_with_cases",
    "run_with_partials",
    "sample",
    "street_frame",
    "versions",
    "whole_frame",
    "with_working_crs",
    "write_parquet",
    "write_person_list_part",
]

@final
class Job:
    """A job: what to read and how (the TOML job file's structure)."""

    @staticmethod
    def from_toml(path: str | os.PathLike[str]) -> Job: ...
    @staticmethod
    def from_toml_str(text: str, base_dir: str | os.PathLike[str]) -> Job: ...
    @staticmethod
    def from_json(text: str, base_dir: str | os.PathLike[str]) -> Job: ...
    def to_json(self) -> str: ...
    @property
    def base_dir(self) -> Path: ...
    @property
    def source(self) -> Path | None: ...

@final
class Table:
    """An Arrow table owned by Rust, exported through the Arrow PyCapsule interface."""

    def __len__(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    @property
    def geometry_column(self) -> str | None: ...
    @property
    def crs(self) -> str | None: ...
    def __arrow_c_schema__(self) -> object: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

@final
class Model:
    """A built model, with its analyses computed on demand."""

    def outputs(self, job: Job | None = None) -> tuple[dict[str, Table], dict[str, str]]: ...
    def write(self, out_dir: str | os.PathLike[str], job: Job | None = None) -> list[str]: ...
    def households(self, identifiers: str = "masked") -> Table: ...
    @property
    def working_crs(self) -> str: ...
    def counts(self) -> dict[str, dict[str, int]]: ...
    @property
    def levels(self) -> list[str]: ...
    @property
    def job(self) -> Job: ...

def build(job: Job) -> Model: ...
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
) -> Path: ...
def geoarrow_table(data: Any, geometry_column: str, crs: str | None) -> Table: ...
def write_parquet(data: Any, path: str | os.PathLike[str]) -> int: ...
def versions() -> tuple[str, str]: ...
def case_keys(
    job: Job,
    path: str | os.PathLike[str],
    frame: str | None = None,
    roster: bytes | None = None,
    people: bytes | None = None,
) -> Table: ...
def fold_cases(
    job: Job,
    path: str | os.PathLike[str],
    rows: str,
    first: str,
    frame: str | None = None,
    roster: bytes | None = None,
    people: bytes | None = None,
) -> bytes: ...
def merge_cases(partials: list[bytes]) -> bytes: ...
def roster_ids(job: Job, residents: list[bytes]) -> bytes | None: ...
def run_with_cases(
    job: Job, out_dir: str | os.PathLike[str], partials: list[bytes]
) -> list[str]: ...
def run_with_partials(
    job: Job,
    out_dir: str | os.PathLike[str],
    households: list[bytes] | None = None,
    cases: list[bytes] | None = None,
    residents: list[bytes] | None = None,
    reach: list[bytes] | None = None,
) -> list[str]: ...
def run_deferring_lists(
    job: Job,
    out_dir: str | os.PathLike[str],
    households: list[bytes] | None = None,
    cases: list[bytes] | None = None,
    residents: list[bytes] | None = None,
    reach: list[bytes] | None = None,
) -> tuple[list[str], list[bytes]]: ...
def person_list_parts(job: Job, list: bytes) -> tuple[list[tuple[str, list[int]]], list[str]]: ...
def write_person_list_part(
    job: Job,
    list: bytes,
    part: int,
    roster: str | os.PathLike[str],
    numbers: str,
    out_dir: str | os.PathLike[str],
) -> str: ...
def merge_households(partials: list[bytes]) -> bytes: ...
def resident_keys(
    job: Job,
    path: str | os.PathLike[str],
    frame: str,
    households: bytes | None = None,
    people: bytes | None = None,
) -> Table: ...
def fold_residents(
    job: Job,
    path: str | os.PathLike[str],
    rows: str,
    first: str,
    frame: str,
    households: bytes | None = None,
    people: bytes | None = None,
) -> bytes: ...
def household_extent(
    job: Job, path: str | os.PathLike[str]
) -> list[float] | None: ...
def with_working_crs(job: Job, households: list[float] | None = None) -> Job: ...
def household_keys(
    job: Job,
    path: str | os.PathLike[str],
    frame: str | None = None,
    piece: bytes | None = None,
) -> Table: ...
def fold_households(
    job: Job,
    path: str | os.PathLike[str],
    rows: str,
    first: str,
    frame: str | None = None,
    piece: bytes | None = None,
) -> bytes: ...
def whole_frame(job: Job) -> tuple[bytes, bytes]: ...
def street_frame(job: Job) -> tuple[bytes, list[bytes], list[bytes] | None, bytes]: ...
def household_streets(
    job: Job, path: str | os.PathLike[str], name: str, keys: bytes
) -> Table: ...
def fold_households_by_street(
    job: Job,
    piece: bytes,
    path: str | os.PathLike[str],
    rows: str,
    first: str,
    halo: bytes | None = None,
) -> tuple[bytes, bytes | None]: ...
