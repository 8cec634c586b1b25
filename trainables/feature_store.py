"""Where cached frozen-prefix features live: a process-wide memory LRU in front of a folder.

The memory copy lets a Ray actor that is reused for the next trial keep its features; the
folder (the study's `stores.features`) shares them between trials and processes on a node.
Entries are keyed by `fingerprint`, a hash of everything the features depend on, so a key
never needs invalidating: changed weights or inputs make a new key.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

CACHE_VERSION = "1"
MEMORY_BYTES = int(os.environ.get("TRANSFER_FEATURE_CACHE_MB", "1024")) * 2**20


def fingerprint(*parts) -> str:
    """A hash of strings and tensors (a tensor by dtype, shape and bytes)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, torch.Tensor):
            tensor = part.detach().cpu().contiguous()
            digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
            if tensor.dtype == torch.bfloat16:
                tensor = tensor.float()
            digest.update(tensor.numpy().reshape(-1).view("uint8").data)
        else:
            digest.update(str(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def state_fingerprint(model: nn.Module, keep) -> str:
    """A hash of the entries of `model.state_dict()` whose key `keep` accepts."""
    items = [(k, t) for k, t in model.state_dict().items() if keep(k)]
    return fingerprint(CACHE_VERSION, *(part for item in items for part in item))


class FeatureStore:
    """Process-wide memory LRU in front of an optional folder of `.pt` files."""

    _memory: OrderedDict[str, torch.Tensor] = OrderedDict()
    _memory_bytes = 0

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else None

    def _file(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.pt"

    def get(self, key: str) -> torch.Tensor | None:
        cls = type(self)
        if key in cls._memory:
            cls._memory.move_to_end(key)
            return cls._memory[key]
        if self.directory is not None and self._file(key).is_file():
            try:
                value = torch.load(self._file(key), map_location="cpu", weights_only=True)
            except Exception:  # a damaged file is recomputed, not trusted
                return None
            self._remember(key, value)
            return value
        return None

    def put(self, key: str, value: torch.Tensor) -> None:
        value = value.cpu()
        self._remember(key, value)
        if self.directory is not None:
            path = self._file(key)
            partial = path.with_suffix(f".tmp{os.getpid()}")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(value, partial)
                partial.replace(path)  # atomic: concurrent trials never read half a file
            except OSError:  # a full or read-only disk: the memory copy still serves
                partial.unlink(missing_ok=True)

    def _remember(self, key: str, value: torch.Tensor) -> None:
        cls = type(self)
        size = value.numel() * value.element_size()
        if size > MEMORY_BYTES:
            return
        cls._memory[key] = value
        cls._memory_bytes += size
        while cls._memory_bytes > MEMORY_BYTES:
            _, old = cls._memory.popitem(last=False)
            cls._memory_bytes -= old.numel() * old.element_size()

    @classmethod
    def clear_memory(cls) -> None:
        cls._memory.clear()
        cls._memory_bytes = 0
