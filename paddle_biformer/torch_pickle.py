"""Reading ``torch.save`` files without PyTorch.

Both the zip format (PyTorch >= 1.6) and the legacy pickle format are read with a restricted
unpickler: tensors become numpy arrays, a few plain containers are rebuilt, and every other
class named in the file (``argparse.Namespace``, yacs ``CfgNode``, ``torch.device`` ...) becomes
an inert stand-in that keeps its data: nothing is imported and no code from the file runs.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile

import numpy as np

__all__ = ["load_torch_checkpoint", "is_torch_file", "CheckpointError", "PickledObject"]

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_TORCH_DTYPES = {
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "bfloat16": "bfloat16", "int64": np.int64,
    "long": np.int64, "int32": np.int32, "int": np.int32, "int16": np.int16, "int8": np.int8,
    "uint8": np.uint8, "bool": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class CheckpointError(ValueError):
    """A file that is not a readable PyTorch checkpoint."""


class _StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


class _Storage:
    """Raw storage bytes, decoded to a flat numpy array once filled."""

    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.array = dtype, numel, None

    def fill(self, raw: bytes, big_endian=False):
        if self.dtype == "bfloat16":  # numpy has no bfloat16: widen the 16 bits to float32
            bits = np.frombuffer(raw, dtype=">u2" if big_endian else "<u2").astype(np.uint32) << 16
            self.array = bits.view(np.float32)
        else:
            dt = np.dtype(self.dtype).newbyteorder(">" if big_endian else "<")
            self.array = np.frombuffer(raw, dtype=dt).astype(np.dtype(self.dtype), copy=False)


class _StorageView:
    """A slice of a storage (legacy files could store views): offset and size in elements."""

    def __init__(self, root, offset, numel):
        self.root, self.offset, self.numel = root, offset, numel

    @property
    def array(self):
        return self.root.array[self.offset: self.offset + self.numel]


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self) -> np.ndarray:
        flat = self.storage.array
        if not self.size:
            return np.array(flat[self.offset])
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], shape=self.size,
                                               strides=[s * item for s in self.stride])
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *args, **kwargs):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *args):
    return data


class PickledObject(dict):
    """Inert stand-in for any other class named in the pickle (``argparse.Namespace``, yacs
    ``CfgNode``, ``torch.device`` ...). It runs nothing: it records the constructor arguments
    (``args``), dict items (a CfgNode is a dict subclass) and instance state, and reads like
    the original: ``obj["MODEL"]``, ``obj.model`` (from the state or the items)."""

    _name = "object"

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.__dict__["args"] = args
        self.__dict__["kwargs"] = kwargs
        self.__dict__["state"] = None

    def __setstate__(self, state):
        self.__dict__["state"] = state

    def __getattr__(self, name):
        state = self.__dict__.get("state")
        if isinstance(state, dict) and name in state:
            return state[name]
        if name in self:
            return self[name]
        raise AttributeError(f"{self._name} from the checkpoint has no {name!r}")

    def __setattr__(self, name, value):
        # yacs' CfgNode.__setstate__ would set attributes; keep them inert
        self.__dict__[name] = value

    def __reduce__(self):  # a stand-in is never pickled again as the original class
        return dict, (dict(self),)

    def __repr__(self):
        return f"<{self._name} from checkpoint>"


class _Unpickler(pickle.Unpickler):
    _SAFE = {("collections", "OrderedDict"): collections.OrderedDict,
             ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
             ("builtins", "slice"): slice, ("builtins", "complex"): complex,
             ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
             ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
             ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
             ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter}

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages  # key -> _Storage

    def find_class(self, module, name):
        if (module, name) in self._SAFE:
            return self._SAFE[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(_TORCH_DTYPES[name])
        return type(name, (PickledObject,), {"_name": f"{module}.{name}"})

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else np.uint8
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, numel)
        storage = self.storages[key]
        if len(pid) > 5 and pid[5] is not None:  # legacy view of a bigger storage
            _view_key, offset, view_size = pid[5]
            return _StorageView(storage, offset, view_size)
        return storage


def _materialize(obj):
    if isinstance(obj, _LazyTensor):
        return obj.materialize()
    if isinstance(obj, PickledObject):  # keep the stand-in (an argparse.Namespace's fields are its state)
        state = obj.__dict__.get("state")
        if state is not None:
            obj.__dict__["state"] = _materialize(state)
        for k, v in list(obj.items()):
            dict.__setitem__(obj, k, _materialize(v))
        return obj
    if isinstance(obj, dict):
        return type(obj)((k, _materialize(v)) for k, v in obj.items()) if isinstance(obj, collections.OrderedDict) \
            else {k: _materialize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _load_zip(path):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise CheckpointError(f"{path}: a zip file without data.pkl is not a PyTorch checkpoint")
        prefix = pkl[: -len("data.pkl")]
        big = False
        if prefix + "byteorder" in names:
            big = zf.read(prefix + "byteorder").decode().strip() == "big"
        storages = {}
        obj = _Unpickler(io.BytesIO(zf.read(pkl)), storages).load()
        for key, storage in storages.items():
            storage.fill(zf.read(f"{prefix}data/{key}"), big)
    return _materialize(obj)


def _load_legacy(path):
    with open(path, "rb") as f:
        try:
            magic = pickle.load(f)
        except Exception as e:
            raise CheckpointError(f"{path} is neither a zip nor a pickle file ({e})") from None
        if magic != _LEGACY_MAGIC:
            raise CheckpointError(f"{path} is a pickle but not a PyTorch checkpoint")
        pickle.load(f)  # protocol version
        sys_info = pickle.load(f)
        big = not sys_info.get("little_endian", True)
        storages = {}
        obj = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            storage = storages[str(key)]
            numel = int.from_bytes(f.read(8), "big" if big else "little")
            itemsize = 2 if storage.dtype == "bfloat16" else np.dtype(storage.dtype).itemsize
            storage.fill(f.read(numel * itemsize), big)
    return _materialize(obj)


def load_torch_checkpoint(path: str):
    """Read a ``torch.save`` file into Python objects with numpy arrays for tensors."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(e).__name__}: {e}); "
                              "download it again") from None


def is_torch_file(path: str) -> bool:
    """True for a ``torch.save`` file (zip with data.pkl, or a legacy pickle), by content."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("data.pkl") for n in zf.namelist())
    with open(path, "rb") as f:
        head = f.read(2)
    return head[:1] == b"\x80" and not path.endswith((".pdparams", ".pdopt", ".pdckpt"))
