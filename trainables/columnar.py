"""A table in the form trials read without copying it, and handing freed memory back.

The development part goes to the object store once as `Columns`: a numpy array per column, an Arrow array per text
column, whose buffers Ray stores out of band; `Columns.frame` builds the DataFrame over the node's copy, so no trial
copies them. A column of Python objects travels as it is: every trial that reads it makes its own copy.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Columns:
    """A DataFrame or Series as arrays, one per column (numpy, or Arrow for text), with its index and dtypes."""

    names: tuple[Any, ...]
    arrays: tuple[Any, ...]  # np.ndarray, or pyarrow.ChunkedArray for an Arrow-backed text column
    dtypes: tuple[Any, ...]
    index: pd.Index
    name: Any = None  # a Series' name
    series: bool = False

    @classmethod
    def of(cls, data: pd.DataFrame | pd.Series) -> Columns:
        """The arrays of `data`'s columns, without copying them where they are numpy or Arrow arrays already."""
        import pyarrow as pa

        frame = data.to_frame() if isinstance(data, pd.Series) else data
        arrays = []
        for _, values in frame.items():
            if pd.api.types.is_string_dtype(values.dtype) and getattr(values.dtype, "storage", None) == "pyarrow":
                arrays.append(pa.chunked_array(values))  # the column's own Arrow buffers
            elif isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
                arrays.append(values.array)  # categories, nullable numbers: pandas pickles their arrays
            else:
                arrays.append(values.to_numpy())  # a view of its block
        return cls(
            names=tuple(frame.columns),
            arrays=tuple(arrays),
            dtypes=tuple(frame.dtypes),
            index=data.index,
            name=data.name if isinstance(data, pd.Series) else None,
            series=isinstance(data, pd.Series),
        )

    def frame(self) -> pd.DataFrame | pd.Series:
        """The DataFrame (or Series) again, over these arrays: nothing is copied."""
        columns = {}
        for name, values, dtype in zip(self.names, self.arrays, self.dtypes, strict=True):
            if isinstance(values, np.ndarray):
                columns[name] = pd.Series(values, index=self.index, dtype=dtype, copy=False)
            elif isinstance(values, pd.api.extensions.ExtensionArray):
                columns[name] = pd.Series(values, index=self.index, copy=False)
            else:  # Arrow text: pandas' `str` array wraps the Arrow buffers as they are
                columns[name] = pd.Series(pd.array(values, dtype=dtype), index=self.index, copy=False)
        frame = pd.DataFrame(columns, index=self.index, copy=False)
        if self.series:
            return frame.iloc[:, 0].rename(self.name)
        return frame

    def __len__(self) -> int:
        return len(self.index)


def as_frame(data: pd.DataFrame | pd.Series | Columns) -> pd.DataFrame | pd.Series:
    """A frame or series as it is; `Columns` as the frame over its arrays."""
    return data.frame() if isinstance(data, Columns) else data


def no_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's columns and dtypes without its rows or its memory: a view such as `iloc[:0]` keeps the whole
    block it was cut from alive (on a million rows, a copy of the table)."""
    return frame.iloc[:0].copy()


def return_freed_memory() -> None:
    """Hand freed memory back to the system: after a large read, Arrow's pool (Parquet) or glibc's allocator (CSV)
    keeps about one more copy of the table for as long as the process lives."""
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:
        pass
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # another C library: nothing to trim
            pass
