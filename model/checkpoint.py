"""Colorizer checkpoints: safetensors files with the config and provenance in their metadata.

Only safetensors is ever parsed, so a checkpoint from an untrusted source cannot run code. Files are checked before
the network is touched: a pickle, a truncated file, or tensors that do not match the stored config are refused with a
message naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import fsspec
import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from model.colorizer import Colorizer, ColorizerConfig, preset_name
from model.files import write_bytes_atomic

FORMAT = "inkpaint-colorizer/1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "inkpaint-lite.safetensors"
# safetensors refuses headers above 100 MB; anything near that is not one of ours.
MAX_HEADER_BYTES = 100_000_000


class CheckpointError(ValueError):
    """A weights file that cannot be used, with the reason."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself.

    Args:
        config: the network's shape.
        preset: the preset name, or "custom".
        step: training steps behind the weights.
        training_data: a description of the data it was trained on.
        metrics: validation metrics at save time.
        sha256: hash of the file's bytes.
        extra: any other provenance fields (command line, hardware, torch version).
    """

    config: ColorizerConfig
    preset: str
    step: int
    training_data: str
    metrics: dict[str, float]
    sha256: str
    extra: dict[str, str] = field(default_factory=dict)


def save_colorizer(
    model: Colorizer,
    url: str | os.PathLike,
    *,
    step: int = 0,
    training_data: str = "",
    metrics: dict[str, float] | None = None,
    dtype: torch.dtype | None = None,
    extra: dict[str, str] | None = None,
) -> str:
    """Write the model's weights and provenance atomically; returns the file's sha256.

    Args:
        model: the colorizer to save.
        url: local path or fsspec URL of the .safetensors file.
        step: training step.
        training_data: description of the training data.
        metrics: validation metrics to record.
        dtype: store floating tensors in this dtype (e.g. torch.float16 for the shipped weights).
        extra: other provenance strings.
    """
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor.contiguous()
    metadata = {
        "format": FORMAT,
        "preset": preset_name(model.config) or "custom",
        "config": json.dumps(model.config.to_dict()),
        "step": str(step),
        "training_data": training_data,
        "metrics": json.dumps(metrics or {}),
        "torch": torch.__version__,
        **(extra or {}),
    }
    data = save_safetensors_bytes(tensors, metadata=metadata)
    write_bytes_atomic(data, str(url))
    return hashlib.sha256(data).hexdigest()


def read_checkpoint_bytes(url: str | os.PathLike) -> bytes:
    """The raw bytes of a weights file, with a clear error when it is missing."""
    try:
        with fsspec.open(str(url), "rb") as handle:
            return handle.read()
    except FileNotFoundError as error:
        msg = f"weights file {str(url)!r} does not exist"
        raise CheckpointError(msg) from error
    except IsADirectoryError as error:
        msg = f"weights {str(url)!r} is a folder; give the .safetensors file itself"
        raise CheckpointError(msg) from error
    except OSError as error:  # refused permission, a store that cannot be reached ...
        msg = f"weights file {str(url)!r} cannot be read: {error}"
        raise CheckpointError(msg) from error


def parse_header(data: bytes, source: str) -> dict:
    """Validate a safetensors header without trusting it; returns the header dict."""
    # A safetensors header starts with "{" after its 8-byte length; the length's first byte may be anything,
    # 0x80 included, so the pickle signatures are only checked on files that are not safetensors.
    looks_like_safetensors = data[8:9] == b"{"
    if not looks_like_safetensors and (data[:2] == b"PK" or data[:1] == b"\x80"):
        msg = (
            f"weights file {source!r} is a pickle / torch.save file; inkpaint loads only .safetensors files, "
            "because unpickling can run code. Convert it with safetensors.torch.save_file in a trusted environment."
        )
        raise CheckpointError(msg)
    if len(data) < 8:
        msg = f"weights file {source!r} is {len(data)} bytes long: empty or truncated"
        raise CheckpointError(msg)
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > MAX_HEADER_BYTES or data[8:9] != b"{":
        msg = f"weights file {source!r} is not a safetensors file (bad header)"
        raise CheckpointError(msg)
    if 8 + header_length > len(data):
        msg = f"weights file {source!r} is truncated: its header alone needs {8 + header_length} bytes, has {len(data)}"
        raise CheckpointError(msg)
    try:
        header = json.loads(data[8 : 8 + header_length])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        msg = f"weights file {source!r} has a corrupt safetensors header: {error}"
        raise CheckpointError(msg) from error
    data_end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    if 8 + header_length + data_end > len(data):
        msg = (
            f"weights file {source!r} is truncated: its tensors need {8 + header_length + data_end} bytes, "
            f"the file has {len(data)}"
        )
        raise CheckpointError(msg)
    return header


def info_from_metadata(metadata: dict[str, str], sha256: str, source: str) -> CheckpointInfo:
    """Turn safetensors metadata into a CheckpointInfo, refusing files that are not inkpaint colorizers."""
    if metadata.get("format") != FORMAT:
        msg = f"weights file {source!r} is not an inkpaint colorizer checkpoint (format {metadata.get('format')!r})"
        raise CheckpointError(msg)
    try:
        config = ColorizerConfig.from_dict(json.loads(metadata["config"]))
        metrics = json.loads(metadata.get("metrics", "{}"))
        step = int(metadata.get("step", "0"))
    except (KeyError, ValueError, TypeError) as error:
        msg = f"weights file {source!r} has unreadable metadata: {error}"
        raise CheckpointError(msg) from error
    known = {"format", "config", "metrics", "step", "preset", "training_data"}
    return CheckpointInfo(
        config=config,
        preset=metadata.get("preset", "custom"),
        step=step,
        training_data=metadata.get("training_data", ""),
        metrics=metrics,
        sha256=sha256,
        extra={k: v for k, v in metadata.items() if k not in known},
    )


def read_checkpoint_info(url: str | os.PathLike) -> CheckpointInfo:
    """The provenance of a weights file, validated (its tensors' names and shapes against its config too) without
    loading the weights."""
    source = str(url)
    data = read_checkpoint_bytes(source)
    header = parse_header(data, source)
    info = info_from_metadata(header.get("__metadata__", {}), hashlib.sha256(data).hexdigest(), source)
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        expected = {name: list(t.shape) for name, t in Colorizer(info.config).state_dict().items()}
    check_tensors(header, expected, info, source)
    return info


def check_tensors(header: dict, expected: dict[str, list[int]], info: CheckpointInfo, source: str) -> None:
    """Raise CheckpointError unless the header's tensors are exactly the config's, by name and shape."""
    stored = {k: v for k, v in header.items() if k != "__metadata__"}
    problems = [f"missing {k}" for k in expected if k not in stored]
    problems += [f"unexpected {k}" for k in stored if k not in expected]
    problems += [
        f"{k} has shape {stored[k]['shape']}, config needs {shape}"
        for k, shape in expected.items()
        if k in stored and list(stored[k]["shape"]) != shape
    ]
    if problems:
        listed = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        msg = f"weights file {source!r} does not match its config ({info.preset}): {listed}"
        raise CheckpointError(msg)


def load_colorizer(
    url: str | os.PathLike = DEFAULT_WEIGHTS,
    *,
    device: str | torch.device = "cpu",
    expected_preset: str | None = None,
) -> tuple[Colorizer, CheckpointInfo]:
    """Build the colorizer a checkpoint describes and load its weights (float32, eval mode).

    Args:
        url: local path or fsspec URL of a .safetensors file; defaults to the shipped weights.
        device: where to put the model.
        expected_preset: refuse a file of another preset.
    """
    source = str(url)
    data = read_checkpoint_bytes(source)
    header = parse_header(data, source)
    info = info_from_metadata(header.get("__metadata__", {}), hashlib.sha256(data).hexdigest(), source)
    if expected_preset is not None and info.preset != expected_preset:
        msg = f"weights file {source!r} holds preset {info.preset!r}, expected {expected_preset!r}"
        raise CheckpointError(msg)
    model = Colorizer(info.config)
    expected = model.state_dict()
    check_tensors(header, {k: list(v.shape) for k, v in expected.items()}, info, source)
    tensors = load_safetensors_bytes(data)
    state = {k: v.to(expected[k].dtype) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    return model.for_inference(device), info
