"""Read a float32 state dict from a file written by ``torch.save`` in its legacy (pre-1.6, non-zip) format,
without torch: the speaker encoder's weights (Resemblyzer's ``pretrained.pt``) are such a file.

The format is five pickles in a row (magic number, protocol version, system info, the object whose tensors
point at storages by key, the list of storage keys), then each storage's raw bytes behind its element count.
Unpickling is restricted to the three names such a state dict uses: any other name is refused.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001


class Storage:
    def __init__(self, key: str) -> None:
        self.key = key
        self.data: np.ndarray | None = None


class Tensor:
    """A view of a storage, made an array once the storages are read."""

    def __init__(self, storage: Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        assert self.storage.data is not None
        data = self.storage.data[self.offset :]
        strides = tuple(step * data.itemsize for step in self.stride)
        return np.lib.stride_tricks.as_strided(data, self.size, strides).copy()


def rebuild_tensor(storage: Storage, offset: int, size: Any, stride: Any, *_: Any) -> Tensor:
    return Tensor(storage, offset, tuple(size), tuple(stride))


class StateDictUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch", "FloatStorage"): np.float32,
    }

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a float32 state dict")
        return self.ALLOWED[(module, name)]

    def persistent_load(self, pid: Any) -> Storage:
        kind, _dtype, key, *_ = pid  # ("storage", FloatStorage, key, location, numel[, view])
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind!r}")
        return self.storages.setdefault(key, Storage(key))


def load_state_dicts(path: Path) -> dict[str, Any]:
    """The saved object with every tensor as a float32 array (nested dicts kept as they are)."""
    with open(path, "rb") as file:
        if pickle.load(file) != MAGIC or pickle.load(file) != PROTOCOL:
            raise ValueError(f"{path} is not a legacy torch.save file")
        if not pickle.load(file).get("little_endian", False):
            raise ValueError(f"{path} was written big-endian")
        unpickler = StateDictUnpickler(file)
        saved = unpickler.load()
        for key in pickle.load(file):
            (count,) = np.frombuffer(file.read(8), dtype="<i8")
            unpickler.storages[key].data = np.frombuffer(file.read(4 * int(count)), dtype="<f4")
    return arrays(saved)


def arrays(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.array()
    if isinstance(value, dict):
        return {key: arrays(item) for key, item in value.items()}
    return value
