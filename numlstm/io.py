"""Model files: an xarray Dataset on disk as netCDF or zarr, written atomically.

A model file is an ordinary dataset that any netCDF or zarr tool can open:
weights are variables with named dimensions, and two attributes say what it
is: ``numlstm_format`` (the kind of model) and ``numlstm_format_version``.
Nothing is pickled, so loading a file never runs code from it.

netCDF files are written with xarray's ``scipy`` engine (netCDF3, no C
library needed); zarr stores need the optional ``zarr`` package. Writes go to
a temporary path beside the target and are renamed into place, so a failure
leaves neither a partial file nor a damaged earlier one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import xarray as xr

__all__ = ["read_model", "write_dataset"]

FORMAT_ATTR = "numlstm_format"
VERSION_ATTR = "numlstm_format_version"
SUFFIXES = (".nc", ".zarr")


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike ending in .nc or .zarr, got {type(path).__name__}.")
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"path {str(path)!r} must end in .nc (netCDF) or .zarr (zarr store); got "
                         f"{path.suffix or 'no suffix'!r}. For example: model.nc.")
    return path


def _temporary(path, suffix=".tmp"):
    """A fresh name beside ``path``; created by the writer itself, so with the
    usual permissions (a ``tempfile`` file would be private to its owner)."""
    return path.parent / f".{path.name}.{uuid.uuid4().hex}{suffix}"


def write_dataset(ds, path):
    """Write ``ds`` to ``path`` (``.nc`` or ``.zarr``) atomically."""
    path = _check_path(path)
    if not path.parent.is_dir():
        raise ValueError(f"the folder {str(path.parent)!r} does not exist; create it first.")
    if path.suffix.lower() == ".nc":
        if path.is_dir():
            raise ValueError(f"{str(path)!r} is a folder; choose a file name.")
        tmp = _temporary(path)
        try:
            ds.to_netcdf(tmp, engine="scipy")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                os.remove(tmp)
        return
    try:
        import zarr  # noqa: F401
    except ImportError:
        raise ValueError("writing .zarr needs the zarr package (pip install zarr); or save to a .nc file.") from None
    if path.exists() and not (path / "zarr.json").exists() and not (path / ".zattrs").exists() and not (
            path / ".zgroup").exists():
        raise ValueError(f"{str(path)!r} exists and is not a zarr store; refusing to replace it.")
    tmp = _temporary(path)
    old = None
    try:
        _with_object_strings(ds).to_zarr(tmp, mode="w", consolidated=False)
        if path.exists():  # a directory cannot be replaced in one rename: move the old one aside first
            old = _temporary(path, ".old")
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        if old is not None and old.exists():
            if path.exists():
                shutil.rmtree(old)
            else:  # the new store did not land: put the old one back
                os.replace(old, path)


def _with_object_strings(ds):
    """Fixed-width unicode arrays as variable-length strings, which zarr v3 specifies."""
    fixed = [k for k, v in ds.variables.items() if v.dtype.kind == "U"]
    return ds.assign_coords({k: ds[k].astype(object) for k in fixed if k in ds.coords}).assign(
        {k: ds[k].astype(object) for k in fixed if k in ds.data_vars})


def read_model(path, expected_format, supported_version, writer="Forecaster.save"):
    """Open a model file, check its format and version, and load it into memory.

    ``writer`` names what writes such files, for the error messages."""
    path = _check_path(path)
    if not path.exists():
        raise ValueError(f"no model file at {str(path)!r}.")
    try:
        if path.suffix.lower() == ".nc":
            ds = xr.load_dataset(path)  # netCDF3 as written, or netCDF4 if edited and saved again
        else:
            ds = xr.open_zarr(path, consolidated=False).load()
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged file fails inside the readers in many ways
        # (OSError, ValueError, an unknown string _Encoding's LookupError, ...): each is a refusal.
        raise ValueError(f"{str(path)!r} could not be read as a {path.suffix} dataset ({type(err).__name__}: "
                         f"{err}). Model files are written by {writer}.") from None
    kind = ds.attrs.get(FORMAT_ATTR)
    if kind != expected_format:
        raise ValueError(
            f"{str(path)!r} is not a {expected_format} model file: its {FORMAT_ATTR!r} attribute is "
            f"{kind!r}. Model files are written by {writer}.")
    version = ds.attrs.get(VERSION_ATTR)
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise ValueError(f"{str(path)!r} has no valid {VERSION_ATTR!r} attribute (got {version!r}).") from None
    if version > supported_version:
        raise ValueError(
            f"{str(path)!r} uses model file format version {version}, newer than this numlstm reads "
            f"(up to {supported_version}); upgrade numlstm (pip install -U numlstm) to load it.")
    if version < 1:
        raise ValueError(f"{str(path)!r} has an invalid format version {version}.")
    return ds
