from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from cli import main
from model.augment import AugmentConfig, make_training_batch
from model.checkpoint import load_colorizer, read_checkpoint_info
from model.colorizer import Colorizer, ColorizerConfig, build_colorizer
from model.data import load_openmoji_pairs
from model.losses import GeneratorLoss
from model.train import TrainConfig, Trainer, warm_start


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("render-cache")


@pytest.fixture(autouse=True)
def isolated_cache(cache_dir, monkeypatch):
    monkeypatch.setenv("INKPAINT_CACHE", str(cache_dir))


def test_one_training_step_on_openmoji_lowers_the_loss():
    torch.manual_seed(0)
    pairs = load_openmoji_pairs("train", 64, limit=8, workers=1)
    line, color = pairs.to_tensors()
    generator = torch.Generator().manual_seed(0)
    line_in, reference, target = make_training_batch(
        line.float() / 255, color.float() / 255, AugmentConfig(), generator
    )
    model = build_colorizer("lite").train()
    loss = GeneratorLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    before, _ = loss(model(line_in, reference), target, None)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after, _ = loss(model(line_in, reference), target, None)
    assert after < before * 0.98


def test_trainer_writes_checkpoints_and_resumes(tmp_path):
    config = TrainConfig(
        output_dir=str(tmp_path / "run"), resolution=64, batch_size=4, steps=3, limit=8, val_images=4,
        val_every=2, log_every=1, workers=1,
    )  # fmt: skip
    first = Trainer(config).run()
    assert set(first) == {"psnr", "ssim"} and first["psnr"] > 0
    run = tmp_path / "run"
    for name in ("last.safetensors", "best.safetensors", "training_state.safetensors", "metrics.jsonl", "training.png"):
        assert (run / name).exists(), name
    info = read_checkpoint_info(run / "last.safetensors")
    assert info.step == 3 and info.preset == "lite" and "OpenMoji" in info.training_data
    assert json.loads(info.extra["train_config"])["resolution"] == 64

    resumed = Trainer(TrainConfig(**{**config.__dict__, "steps": 5}))
    assert resumed.step == 3
    # The discriminator and optimizer state came back too, not only the colorizer.
    assert resumed.opt_g.state_dict()["state"], "generator optimizer state was not restored"
    resumed.run()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5]
    assert read_checkpoint_info(run / "last.safetensors").step == 5
    model, _ = load_colorizer(run / "best.safetensors")
    assert not model.training


def test_eval_command_prints_the_table(tmp_path):
    weights = tmp_path / "w.safetensors"
    runner = CliRunner()
    from model.checkpoint import save_colorizer

    save_colorizer(build_colorizer("lite"), weights, step=7)
    result = runner.invoke(main, ["eval", "--weights", str(weights), "--limit", "4", "--resolution", "64"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "step 7" in lines[0]
    methods = [line.split("  ")[0] for line in lines[2:]]
    assert methods == ["inkpaint", "lines on white", "reference under lines"]
    for line in lines[2:5]:
        psnr, ssim = (float(v) for v in line.split()[-2:])
        assert 0 < psnr < 60 and -1 <= ssim <= 1


def test_eval_writes_a_page_with_side_by_side_pictures(tmp_path):
    weights = tmp_path / "w.safetensors"
    from model.checkpoint import save_colorizer

    save_colorizer(build_colorizer("lite"), weights, step=7)
    args = ["eval", "--weights", str(weights), "--limit", "3", "--resolution", "64", "--html", str(tmp_path / "page")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "page" / "index.html").read_text()
    first_psnr = result.output.splitlines()[2].split()[-2]
    assert f"<td>inkpaint</td><td>{first_psnr}</td>" in page  # the page's numbers are the printed table's
    examples = sorted((tmp_path / "page").glob("example-*.png"))
    assert len(examples) == 3 and all(f'src="{p.name}"' in page for p in examples)
    with Image.open(examples[0]) as strip:
        assert strip.size == (4 * 64, 64)  # line art, reference, ours, truth


def test_eval_refuses_a_pickle(tmp_path):
    bad = tmp_path / "model.pt"
    torch.save({"a": torch.zeros(1)}, bad)
    result = CliRunner().invoke(main, ["eval", "--weights", str(bad), "--limit", "2"])
    assert result.exit_code == 2
    assert "pickle" in result.output and str(bad) in result.output


def test_eval_on_a_folder_of_triples(tmp_path):
    sample = Path(__file__).resolve().parents[2] / "samples" / "wave"
    for sub in ("line", "reference", "truth"):
        (tmp_path / sub).mkdir()
    for index in (2, 6, 11):
        shutil.copy(sample / "frames" / f"frame{index}.png", tmp_path / "line" / f"f{index}.png")
        shutil.copy(sample / "key.png", tmp_path / "reference" / f"f{index}.png")
        shutil.copy(sample / "truth" / f"frame{index}.png", tmp_path / "truth" / f"f{index}.png")
    result = CliRunner().invoke(main, ["eval", "--data", str(tmp_path), "--resolution", "128"])
    assert result.exit_code == 0, result.output
    assert "(3 drawings, 128px)" in result.output
    scores = {line[:24].strip(): float(line.split()[-2]) for line in result.output.splitlines()[2:]}
    # The shipped weights color the held-out sample better than leaving it uncolored.
    assert scores["inkpaint"] > scores["lines on white"] + 1.0


def test_warm_start_copies_the_tensors_that_fit_and_names_the_rest():
    torch.manual_seed(0)
    narrow = ColorizerConfig(encoder_channels=(4, 4, 8, 8, 8, 8, 16, 16, 16, 16), bottleneck_channels=16, res_blocks=1)
    source = Colorizer(narrow)
    target = Colorizer(ColorizerConfig(**{**narrow.to_dict(), "bottleneck_channels": 24}))
    fresh = warm_start(target, source.state_dict())
    assert fresh and all(name.startswith(("bottleneck.", "decoder.stages.0.")) for name in fresh)
    encoder_weight = "line_encoder.layers.3.conv.weight"
    assert torch.equal(target.state_dict()[encoder_weight], source.state_dict()[encoder_weight])
    with pytest.raises(ValueError, match="share no tensor"):
        warm_start(target, {"elsewhere.weight": torch.zeros(1)})
