"""The speaker encoder's weights, made without torch: ``python -m tools.voice_encoder``.

podscribe labels speakers with the GE2E voice encoder that the PyPI package ``resemblyzer``
ships inside its wheel (``resemblyzer/pretrained.pt``, Apache-2.0). Depending on resemblyzer
would pull in torch, librosa and scikit-learn; the job image stays light instead: this tool
fetches the pinned wheel with ``pip download --no-deps``, checks its sha256, reads the torch
checkpoint with a restricted unpickler (only the few globals a tensor checkpoint needs; the
storages become numpy arrays), and writes ``src/podscribe/speakers/voice_encoder.npz``: the
LSTM and linear weights as float32, plus the 40-band mel filterbank that
``librosa.filters.mel`` would build (Slaney scale and area normalisation), so nothing at run
time needs librosa. The provenance (wheel, version, sha256, licence) goes in the same file.

``pretrained.pt`` is in torch's legacy serialisation (before the zip format): a magic number,
a protocol version and system information, each pickled, then the pickled object whose
storages are persistent ids, then the list of storage keys, then each storage's raw bytes
preceded by its element count as a little-endian int64.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT = REPO_ROOT / "src" / "podscribe" / "speakers" / "voice_encoder.npz"

WHEEL_VERSION = "0.1.4"
WHEEL_NAME = f"Resemblyzer-{WHEEL_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f"
CHECKPOINT_MEMBER = "resemblyzer/pretrained.pt"

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES: dict[str, type[np.generic]] = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
}

# The encoder's mel front end (resemblyzer/hparams.py).
SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
N_MELS = 40


class CheckpointError(RuntimeError):
    """The wheel or its checkpoint is not what this tool was written for."""


@dataclass
class _Storage:
    """A storage named by the pickle; its bytes come after the pickled object."""

    dtype: type[np.generic]
    numel: int
    data: np.ndarray | None = None


@dataclass
class _PendingTensor:
    """A tensor whose storage is not read yet: ``_rebuild_tensor_v2``'s arguments."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        if self.storage.data is None:
            raise CheckpointError("a tensor's storage was never read")
        itemsize = self.storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :],
            shape=self.size,
            strides=tuple(step * itemsize for step in self.stride),
        )
        return np.array(view)


def _rebuild_tensor_v2(
    storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _PendingTensor:
    return _PendingTensor(storage, offset, tuple(size), tuple(stride))


class _CheckpointUnpickler(pickle.Unpickler):
    """Allows the globals of a plain tensor checkpoint, nothing else: no code runs."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Callable[..., Any]]] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }

    def __init__(self, stream: io.BufferedIOBase) -> None:
        super().__init__(stream)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return name  # the persistent id names its storage type by this class
        allowed = self._ALLOWED.get((module, name))
        if allowed is None:
            raise CheckpointError(f"the checkpoint refers to {module}.{name}, which is not allowed")
        return allowed

    def persistent_load(self, pid: Any) -> _Storage:
        kind, storage_type, key, _location, numel, view = pid
        if kind != "storage" or view is not None or storage_type not in _STORAGE_DTYPES:
            raise CheckpointError(f"unexpected persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(_STORAGE_DTYPES[storage_type], int(numel))
        return self.storages[key]


def _restricted_load(stream: io.BufferedIOBase) -> Any:
    return _CheckpointUnpickler(stream).load()


def read_legacy_checkpoint(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format torch checkpoint's ``model_state``, as numpy arrays.

    Raises:
        CheckpointError: the bytes are not a legacy tensor checkpoint, or refer to anything
            beyond tensors and ordered dicts.
    """
    stream = io.BytesIO(data)
    if _restricted_load(stream) != _LEGACY_MAGIC:
        raise CheckpointError("not a legacy torch checkpoint (magic number)")
    if _restricted_load(stream) != _LEGACY_PROTOCOL:
        raise CheckpointError("unknown legacy checkpoint protocol")
    sys_info = _restricted_load(stream)
    if not sys_info.get("little_endian", False):
        raise CheckpointError("big-endian checkpoints are not supported")
    unpickler = _CheckpointUnpickler(stream)
    checkpoint = unpickler.load()
    keys = _restricted_load(stream)
    for key in keys:
        storage = unpickler.storages[key]
        numel = int.from_bytes(stream.read(8), "little")
        if numel != storage.numel:
            raise CheckpointError(f"storage {key}: {numel} elements, expected {storage.numel}")
        width = np.dtype(storage.dtype).itemsize
        raw = stream.read(numel * width)
        storage.data = np.frombuffer(raw, dtype=np.dtype(storage.dtype).newbyteorder("<"))
    state = checkpoint["model_state"]
    return {name: tensor.materialise() for name, tensor in state.items()}


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, log_step = min_log_hz / f_sp, np.log(6.4) / 27.0
    mel = hz / f_sp
    above = hz >= min_log_hz
    mel[above] = min_log_mel + np.log(hz[above] / min_log_hz) / log_step
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, log_step = min_log_hz / f_sp, np.log(6.4) / 27.0
    hz = mel * f_sp
    above = mel >= min_log_mel
    hz[above] = min_log_hz * np.exp(log_step * (mel[above] - min_log_mel))
    return hz


def mel_filterbank(
    sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS
) -> np.ndarray:
    """``librosa.filters.mel(sr, n_fft, n_mels)``: Slaney-scale triangles, area-normalised."""
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    edges = _mel_to_hz(
        np.linspace(
            _hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([sample_rate / 2.0]))[0], n_mels + 2
        )
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    filterbank: np.ndarray = weights.astype(np.float32)
    return filterbank


def download_wheel(directory: Path) -> Path:
    """The pinned resemblyzer wheel, downloaded with pip (no dependencies), sha256-checked."""
    subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"resemblyzer=={WHEEL_VERSION}",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-d",
            str(directory),
        ],
        check=True,
    )
    wheel = directory / WHEEL_NAME
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise CheckpointError(f"{WHEEL_NAME}: sha256 {digest}, expected {WHEEL_SHA256}")
    return wheel


def build(wheel: Path, output: Path) -> dict[str, np.ndarray]:
    """Write the encoder's weights, mel filterbank and provenance to ``output``."""
    with zipfile.ZipFile(wheel) as archive:
        state = read_legacy_checkpoint(archive.read(CHECKPOINT_MEMBER))
    arrays = {
        name.replace(".", "/"): array.astype(np.float32)
        for name, array in state.items()
        if name.startswith(("lstm.", "linear."))  # GE2E's similarity scale is for training
    }
    arrays["mel/filterbank"] = mel_filterbank()
    provenance = {
        "source": f"PyPI resemblyzer {WHEEL_VERSION}, {CHECKPOINT_MEMBER}",
        "wheel": WHEEL_NAME,
        "sha256": WHEEL_SHA256,
        "licence": "Apache-2.0",
        "built_by": "python -m tools.voice_encoder",
    }
    arrays["provenance"] = np.array(json.dumps(provenance, sort_keys=True))
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, **arrays)  # type: ignore[arg-type]
    return arrays


def main(argv: list[str] | None = None) -> int:
    """Fetch the wheel (or use ``--wheel``) and write the encoder's ``.npz``."""
    parser = argparse.ArgumentParser(prog="python -m tools.voice_encoder", description=__doc__)
    parser.add_argument("--wheel", type=Path, help="a resemblyzer wheel already on disk")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        if args.wheel and hashlib.sha256(wheel.read_bytes()).hexdigest() != WHEEL_SHA256:
            raise CheckpointError(f"{wheel}: not the pinned {WHEEL_NAME}")
        arrays = build(wheel, args.output)
    for name, array in sorted(arrays.items()):
        print(f"{name}: {array.shape} {array.dtype}")
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
