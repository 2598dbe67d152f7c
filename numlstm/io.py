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
import warnings
from pathlib import Path

import numpy as np
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


# A model file's data is at most this many times its size on disk (netCDF3 is stored as is;
# a compressed netCDF4 or zarr copy of a model compresses far less), or MODEL_FLOOR_BYTES.
MODEL_EXPANSION = 1000
MODEL_FLOOR_BYTES = 2 ** 28


def _stored_bytes(path):
    """Bytes on disk of a file, or of every file under a (zarr) directory."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _check_netcdf3_sizes(path, writer):
    """Refuse a netCDF3 file whose header declares more data than the file can hold, before
    any reader allocates it (xarray loads index coordinates as it opens a file)."""
    with open(path, "rb") as f:
        if f.read(3) != b"CDF":
            return  # netCDF4 (HDF5): its own reader checks its structure
    import gc

    from scipy.io import netcdf_file

    failure, negative, declared = None, False, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's note on closing a memory-mapped file, also from a half-read one
        try:
            nc = netcdf_file(path, "r", mmap=True)  # the header only: the data stay on disk
            try:
                shapes = [(v.shape, v.itemsize()) for v in nc.variables.values()]
                # (a length past 2**31 reads as negative here; netCDF's own library reads it as huge)
                negative = any(n is not None and n < 0 for n in nc.dimensions.values())
                declared = sum(abs(float(np.prod(shape, dtype=np.float64))) * size for shape, size in shapes)
            finally:
                nc.close()
        except Exception as err:  # noqa: BLE001 - a damaged header fails inside scipy in many ways
            failure = f"{type(err).__name__}: {err}"
        gc.collect()  # a reader that failed half-way closes when collected: here, where its warning is silenced
    if failure is not None:
        raise ValueError(f"{str(path)!r} could not be read as a netCDF file ({failure}). Model files are written "
                         f"by {writer}.")
    stored = path.stat().st_size
    if negative or declared > max(MODEL_EXPANSION * stored, MODEL_FLOOR_BYTES):
        raise ValueError(f"{str(path)!r} declares {declared:,.0f} bytes of data in {stored:,} bytes on disk: its "
                         f"header is damaged. Model files are written by {writer}.")


def read_model(path, expected_format, supported_version, writer="Forecaster.save"):
    """Open a model file, check its format and version, and load it into memory.

    ``writer`` names what writes such files, for the error messages."""
    path = _check_path(path)
    if not path.exists():
        raise ValueError(f"no model file at {str(path)!r}.")
    if path.suffix.lower() == ".nc":
        _check_netcdf3_sizes(path, writer)
    try:
        if path.suffix.lower() == ".nc":
            ds = xr.open_dataset(path)  # netCDF3 as written, or netCDF4 if edited and saved again
        else:
            ds = xr.open_zarr(path, consolidated=False)
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged file fails inside the readers in many ways
        # (OSError, ValueError, an unknown string _Encoding's LookupError, ...): each is a refusal.
        raise ValueError(f"{str(path)!r} could not be read as a {path.suffix} dataset ({type(err).__name__}: "
                         f"{err}). Model files are written by {writer}.") from None
    # The sizes come from the file's header: a damaged one (one flipped byte in a dimension's
    # length) can declare gigabytes that reading would allocate before anything is checked.
    declared = sum(v.size * v.dtype.itemsize for v in ds.variables.values())
    stored = _stored_bytes(path)
    if declared > max(MODEL_EXPANSION * stored, MODEL_FLOOR_BYTES):
        ds.close()
        raise ValueError(f"{str(path)!r} declares {declared:,} bytes of data in {stored:,} bytes on disk: its header "
                         f"is damaged. Model files are written by {writer}.")
    try:
        ds = ds.load()
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - as above: a damaged file fails in many ways
        raise ValueError(f"{str(path)!r} could not be read as a {path.suffix} dataset ({type(err).__name__}: "
                         f"{err}). Model files are written by {writer}.") from None
    finally:
        ds.close()
    kind = ds.attrs.get(FORMAT_ATTR)
    if kind != expected_format:
        raise ValueError(
            f"{str(path)!r} is not a {expected_format} model file: its {FORMAT_ATTR!r} attribute is "
            f"{kind!r}. Model files are written by {writer}.")
    version = ds.attrs.get(VERSION_ATTR)
    try:
        whole = int(version)
        if whole != version:  # 1.5, and a damaged type's NaN (int(inf) is the OverflowError)
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{str(path)!r} has no valid {VERSION_ATTR!r} attribute (got {version!r}); it should be "
                         f"a whole number. Model files are written by {writer}.") from None
    version = whole
    if version > supported_version:
        raise ValueError(
            f"{str(path)!r} uses model file format version {version}, newer than this numlstm reads "
            f"(up to {supported_version}); upgrade numlstm (pip install -U numlstm) to load it.")
    if version < 1:
        raise ValueError(f"{str(path)!r} has an invalid format version {version}.")
    return ds
