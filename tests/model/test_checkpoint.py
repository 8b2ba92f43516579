from __future__ import annotations

import pickle

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from model.checkpoint import CheckpointError, load_colorizer, read_checkpoint_info, save_colorizer
from model.colorizer import Colorizer, ColorizerConfig, build_colorizer

TINY = ColorizerConfig(
    encoder_channels=(4, 4, 8, 8, 8, 8, 16, 16, 16, 16), bottleneck_channels=16, res_blocks=1, cbam_reduction=2
)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = Colorizer(TINY)
    # Non-trivial BatchNorm statistics, so the round trip covers buffers too.
    model.train()(torch.rand(2, 1, 32, 32), torch.rand(2, 3, 32, 32))
    path = tmp_path / "tiny.safetensors"
    sha = save_colorizer(model, path, step=42, training_data="unit test", metrics={"psnr": 20.5})
    return model.eval(), path, sha


def test_round_trip_is_bit_identical(tiny_checkpoint):
    model, path, sha = tiny_checkpoint
    loaded, info = load_colorizer(path)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert info.config == TINY
    assert info.step == 42 and info.metrics == {"psnr": 20.5} and info.training_data == "unit test"
    assert info.preset == "custom" and info.sha256 == sha
    line, reference = torch.rand(1, 1, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.inference_mode():  # same weights, same layout: the same output bit for bit
        assert torch.equal(model.for_inference()(line, reference), loaded(line, reference))


def test_half_precision_file_loads_as_float32(tmp_path):
    model = build_colorizer("lite")
    path = tmp_path / "lite16.safetensors"
    save_colorizer(model, path, dtype=torch.float16)
    full = tmp_path / "lite32.safetensors"
    save_colorizer(model, full)
    assert path.stat().st_size < 0.6 * full.stat().st_size
    loaded, info = load_colorizer(path, expected_preset="lite")
    assert info.preset == "lite"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())


def test_pickle_is_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle code ran')",))

    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"x": Boom()}))
    zipped = tmp_path / "torch.pt"
    torch.save(Colorizer(TINY).state_dict(), zipped)
    for path in (plain, zipped):
        with pytest.raises(CheckpointError, match=r"pickle.*only \.safetensors"):
            load_colorizer(path)


@pytest.mark.parametrize(("first_bytes", "modulus"), [(b"\x80", 0x100), (b"PK", 0x10000)])
def test_header_length_that_looks_like_a_pickle_signature_still_loads(tmp_path, first_bytes, modulus):
    # The 8-byte header length is little endian, so its first bytes are arbitrary; once they were 0x80, which the
    # pickle check mistook for a pickle protocol marker (a real, intermittent CI failure).
    model = Colorizer(TINY)
    path = tmp_path / "odd-length.safetensors"
    save_colorizer(model, path, training_data="")
    base_length = int.from_bytes(path.read_bytes()[:8], "little")
    wanted = int.from_bytes(first_bytes.ljust(2, b"\0"), "little") % modulus
    needed = (wanted - base_length) % modulus
    for padding in range(max(0, needed - 8), needed + 9):  # safetensors pads its header to a multiple of 8
        save_colorizer(model, path, training_data="x" * padding)
        if path.read_bytes()[: len(first_bytes)] == first_bytes:
            break
    else:
        pytest.fail(f"no padding gave a header length starting with {first_bytes!r}")
    assert read_checkpoint_info(path).training_data == "x" * padding
    load_colorizer(path)


def test_truncated_file_is_refused(tiny_checkpoint, tmp_path):
    _, path, _ = tiny_checkpoint
    data = path.read_bytes()
    for cut in (4, 200, len(data) - 10):
        broken = tmp_path / f"cut{cut}.safetensors"
        broken.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"truncated|not a safetensors|empty"):
            load_colorizer(broken)


def test_tensors_that_do_not_match_the_config_are_refused(tmp_path):
    lite_path, paper_path = tmp_path / "lite.safetensors", tmp_path / "paper-header.safetensors"
    save_colorizer(build_colorizer("lite"), lite_path)
    save_colorizer(Colorizer(TINY), paper_path, training_data="x")
    # Lite's tensors under the tiny model's metadata: the tensors no longer fit the stored config.
    with safe_open(str(paper_path), framework="pt") as handle:
        metadata = handle.metadata()
    save_file(load_file(str(lite_path)), str(tmp_path / "mixed.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_colorizer(tmp_path / "mixed.safetensors")


def test_wrong_preset_and_missing_file(tmp_path):
    path = tmp_path / "lite.safetensors"
    save_colorizer(build_colorizer("lite"), path)
    with pytest.raises(CheckpointError, match="holds preset 'lite', expected 'icme2023'"):
        load_colorizer(path, expected_preset="icme2023")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_colorizer(tmp_path / "nope.safetensors")
    assert read_checkpoint_info(path).preset == "lite"
