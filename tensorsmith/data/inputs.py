"""Inputs to columns: every split becomes a `Split`, a dict of equally long `Column`s.

Accepted: torch tensors and `torch.utils.data.Dataset`s (items that are tensors, tuples or dicts),
numpy arrays (plain or structured), dicts of columns, lists of strings, pyarrow tables, Hugging
Face `datasets.Dataset`s (through their Arrow table), pandas DataFrames, and paths: `.npy`, `.npz`,
`.parquet`, `.arrow`/`.feather` (Arrow IPC, file or stream), a directory of them (what
`datasets.save_to_disk` writes), `.txt` (one sample per line) and `.jsonl`.

A column has a kind, which decides the checks it gets:
  text      list of str                     exact and near-duplicate (MinHash) checks, empties
  tokens    list of 1-D integer arrays      exact and near-duplicate (MinHash) checks, empties
  image     float array [N, C, H, W]        exact and perceptual-hash checks, NaN/Inf
  numeric   array [N] or [N, F]             exact checks, NaN/Inf/constant, leakage
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

import numpy as np

KINDS = ("text", "tokens", "image", "numeric")
TOKEN_NAMES = ("input_ids", "ids", "tokens", "token_ids")
LABEL_NAMES = ("label", "labels", "target", "targets", "y")


@dataclass
class Column:
    name: str
    kind: str
    values: object  # list[str], list[np.ndarray] or np.ndarray, by kind

    def __len__(self) -> int:
        return len(self.values)


Split = dict  # str -> Column


def load(source, kinds: dict | None = None) -> Split:
    """The columns of `source` (any accepted input or path); `kinds` overrides a column's kind."""
    raw = _columns(source)
    if not raw:
        raise ValueError(f"no columns found in {_describe(source)}")
    split = {name: _column(name, values, (kinds or {}).get(name)) for name, values in raw.items()}
    lengths = {name: len(c) for name, c in split.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns of {_describe(source)} differ in length: {lengths}")
    return split


def default_label(split: Split) -> str | None:
    return next((n for n in LABEL_NAMES if n in split), None)


def _describe(source) -> str:
    return source if isinstance(source, (str, os.PathLike)) else type(source).__name__


def _columns(source) -> dict:
    """name -> raw values (array, tensor or list)."""
    import torch

    if isinstance(source, (str, os.PathLike)):
        return _read_path(os.fspath(source))
    if isinstance(source, torch.Tensor):
        return {"input": source}
    if isinstance(source, np.ndarray):
        if source.dtype.names:
            return {n: source[n] for n in source.dtype.names}
        return {"input": source}
    if isinstance(source, dict):
        return dict(source)
    if isinstance(source, tuple):  # (inputs, labels) or more arrays
        return _name_items(list(source))
    if isinstance(source, list) and (not source or isinstance(source[0], str)):
        return {"text": source}
    table = _arrow_table(source)
    if table is not None:
        return _from_arrow(table)
    if hasattr(source, "columns") and hasattr(source, "to_numpy"):  # a pandas DataFrame
        return {str(c): source[c].to_numpy() for c in source.columns}
    if isinstance(source, torch.utils.data.TensorDataset):
        return _name_items(list(source.tensors))
    if hasattr(source, "__getitem__") and hasattr(source, "__len__"):
        return _from_items(source)
    raise TypeError(f"cannot read samples from {type(source).__name__}")


def _name_items(items: list) -> dict:
    if len(items) == 1:
        return {"input": items[0]}
    if len(items) == 2:
        return {"input": items[0], "label": items[1]}
    return {str(i): item for i, item in enumerate(items)}


def _from_items(dataset) -> dict:
    """A map-style dataset read item by item (with a progress bar when it is long)."""
    from .progress import progress

    columns: dict[str, list] = {}
    with progress(len(dataset), "reading dataset", "sample") as bar:
        for i in range(len(dataset)):
            item = dataset[i]
            if isinstance(item, dict):
                named = item
            elif isinstance(item, (tuple, list)) and not isinstance(item, str):
                named = _name_items(list(item))
            else:
                named = {"input": item}
            for name, value in named.items():
                columns.setdefault(name, []).append(value)
            bar.update(1)
    return columns


def _arrow_table(source):
    try:
        import pyarrow as pa
    except ImportError:
        return None
    if isinstance(source, pa.Table):
        return source
    data = getattr(source, "data", None)  # datasets.Dataset keeps its pyarrow table in .data.table
    table = getattr(data, "table", None)
    if not isinstance(table, pa.Table):
        return None
    indices = getattr(source, "_indices", None)  # after select/shuffle/filter: the rows it has
    if indices is not None:
        table = table.take(getattr(indices, "table", indices).column(0))
    return table


def _from_arrow(table) -> dict:
    import pyarrow as pa

    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            columns[name] = [s or "" for s in col.to_pylist()]
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
            columns[name] = col.to_numpy()
        elif (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)) and \
                pa.types.is_integer(col.type.value_type):  # token ids: split the flat values
            lists = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
            offsets = lists.offsets.to_numpy()
            flat = lists.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]]
            columns[name] = np.split(flat, offsets[1:-1] - offsets[0])
        else:  # other lists (feature vectors, images as nested lists) and anything else
            columns[name] = [np.asarray(v) if v is not None else np.zeros(0) for v in col.to_pylist()]
    return columns


def _read_path(path: str) -> dict:
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "*.arrow")) + glob.glob(os.path.join(path, "*.parquet")))
        if not files:
            raise ValueError(f"{path}: no .arrow or .parquet files in this directory")
        import pyarrow as pa
        return _from_arrow(pa.concat_tables([_read_table(f) for f in files]))
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return _columns(np.load(path, mmap_mode="r", allow_pickle=False))
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if ext in (".parquet", ".arrow", ".feather", ".ipc"):
        return _from_arrow(_read_table(path))
    if ext == ".txt":
        with open(path, encoding="utf-8") as f:
            return {"text": f.read().splitlines()}
    if ext in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return {k: [r.get(k) for r in rows] for k in (rows[0] if rows else {})}
    raise ValueError(f"{path}: unknown file type (expected .npy, .npz, .parquet, .arrow, .txt, "
                     f".jsonl or a directory of .arrow/.parquet files)")


def _read_table(path: str):
    try:
        import pyarrow.parquet as pq
        from pyarrow import ipc
    except ImportError:
        raise ImportError(f"reading {path} needs pyarrow: pip install 'tensorsmith[data]'") from None
    if path.endswith(".parquet"):
        return pq.read_table(path)
    try:
        return ipc.open_file(path).read_all()
    except (OSError, ValueError):  # pyarrow.ArrowInvalid: datasets writes the stream format
        return ipc.open_stream(path).read_all()


def _column(name: str, values, kind: str | None) -> Column:
    import torch

    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, list) and not any(isinstance(v, str) for v in values[:1000]):
        values = _stack_items(values)
    if isinstance(values, list):
        if kind not in (None, "text", "tokens"):
            raise ValueError(f"column {name!r}: a list of strings or sequences cannot be {kind!r}")
        if kind == "tokens" or not any(isinstance(v, str) for v in values[:1000]):
            return Column(name, "tokens", [np.asarray(v, dtype=np.int64).ravel() for v in values])
        return Column(name, "text", ["" if v is None else str(v) for v in values])
    values = np.asarray(values)
    if values.dtype == object:
        return Column(name, "text", ["" if v is None else str(v) for v in values])
    if values.dtype.kind in "US":
        return Column(name, "text", values.astype(str).tolist())
    kind = kind or _numeric_kind(name, values)
    if kind == "tokens":
        return Column(name, "tokens", list(np.asarray(values, dtype=np.int64).reshape(len(values), -1)))
    if kind == "image":
        return Column(name, "image", _as_nchw(values))
    if kind != "numeric":
        raise ValueError(f"column {name!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    return Column(name, "numeric", values if values.ndim <= 2 else values.reshape(len(values), -1))


def _stack_items(values: list):
    if not values:
        return np.zeros(0)
    """Per-sample tensors/arrays/numbers -> one array when they share a shape, else a list."""
    import torch

    items = [v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for v in values]
    if all(isinstance(v, (int, float, bool, np.number, np.bool_)) for v in items):
        return np.asarray(items)
    arrays = [np.asarray(v) if v is not None else np.zeros(0) for v in items]
    if len({a.shape for a in arrays}) == 1 and arrays[0].dtype != object:
        return np.stack(arrays)
    return arrays  # ragged: token sequences


def _numeric_kind(name: str, values: np.ndarray) -> str:
    if values.ndim == 2 and values.dtype.kind in "iu" and name in TOKEN_NAMES:
        return "tokens"
    if values.ndim in (3, 4) and min(_spatial(values.shape[1:])) >= 8:
        return "image"
    return "numeric"


def _spatial(shape) -> tuple:
    """(H, W) of one sample: [H, W], [C, H, W] or [H, W, C] with C in 1, 3, 4."""
    if len(shape) == 2:
        return tuple(shape)
    if shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
        return tuple(shape[1:])
    if shape[-1] in (1, 3, 4):
        return tuple(shape[:2])
    return tuple(shape[1:])


def _as_nchw(values: np.ndarray) -> np.ndarray:
    if values.ndim == 3:
        return values[:, None]
    c_first = values.shape[1] in (1, 3, 4) and values.shape[-1] not in (1, 3, 4)
    return values if c_first or values.shape[-1] not in (1, 3, 4) else values.transpose(0, 3, 1, 2)
