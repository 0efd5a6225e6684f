"""Exceptions raised by shequ, one class per error category of the Rust library.

Every exception carries the location the library knows, as attributes that are ``None`` when
unknown: ``layer`` (the job's layer name), ``file``, ``index`` (0-based row or feature) and
``column``. Problems with single rows are not exceptions: they are rows of ``Model.quality``.
"""

from __future__ import annotations


class ShequError(Exception):
    """Base class of every shequ error."""

    layer: str | None = None
    file: str | None = None
    index: int | None = None
    column: str | None = None


class IoError(ShequError, OSError):
    """A file could not be opened, read or written."""


class JobError(ShequError, ValueError):
    """The job is malformed or inconsistent (unknown keys, wrong types, missing sections)."""


class DataError(ShequError, ValueError):
    """A file's content cannot be used as a whole (truncated, wrong format, bad encoding)."""


class ColumnNotFoundError(DataError, KeyError):
    """A column named in the job is not in the input; the message lists those it has."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CrsError(ShequError, ValueError):
    """A coordinate reference system could not be parsed, or a transformation failed."""


class ComputeError(ShequError, RuntimeError):
    """A table computation failed (from polars)."""


class FormatError(DataError):
    """A Parquet or Arrow error while reading or writing a table."""


class InternalError(ShequError, RuntimeError):
    """A check shequ makes on its own work failed (a bug, never bad input): for example a
    layer whose rows read are not the rows placed plus the rows reported."""


class PrivacyError(ShequError, PermissionError):
    """The privacy policy refuses the request (person-level rows in a research run, a missing
    or weak pseudonym key, a named list without a scope)."""


__all__ = [
    "ColumnNotFoundError",
    "ComputeError",
    "CrsError",
    "DataError",
    "FormatError",
    "InternalError",
    "IoError",
    "JobError",
    "PrivacyError",
    "ShequError",
]
