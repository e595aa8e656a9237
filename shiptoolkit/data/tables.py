"""Reading the small CSV files users hand us (submissions, truth, groups) with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiptoolkit.errors import DataError


def read_csv_columns(source: str | Path | Any, columns: tuple[str, ...], what: str):
    """A DataFrame of strings (empty cells as "") from a path or a DataFrame, with `columns` checked.

    Raises:
        DataError: naming `what` when the file is missing or lacks one of `columns`.
    """
    import pandas as pd

    name = f"{what} CSV"
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source)
        name += f" {str(path)!r}"
        if not path.is_file():
            raise DataError(f"{what} file {str(path)!r} not found.")
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors are ValueErrors
            raise DataError(f"{name} could not be read as CSV: {exc}") from None
    missing = set(columns) - set(frame.columns)
    if missing:
        raise DataError(f"{name} lacks column(s) {sorted(missing)}; expected {','.join(columns)}. "
                        f"Found: {list(frame.columns)}")
    return frame
