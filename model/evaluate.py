"""Scoring a colorizer against ground truth, side by side with two simple baselines.

An evaluation set is (line art, reference, truth) triples. On OpenMoji the reference is the truth warped by a
thin-plate spline with a fixed seed (the paper's "augmented-self" reference), so every run scores the same triples.
The baselines say what a colorizer must beat to be worth running:
- "lines on white": the line art alone;
- "reference under lines": the reference's own pixels, multiplied by the target's lines (colors where the reference
  had them, which is right only where the drawing did not move).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from model.colorizer import Colorizer
from model.data import load_folder_pairs, load_openmoji_pairs
from model.metrics import psnr, ssim
from model.warps import tps_warp

EVAL_WARP = 0.15
# The page's template, package data (model/templates/), autoescaped: drawing names and titles come from files.
_PAGE = jinja2.Environment(loader=jinja2.PackageLoader("model", "templates"), autoescape=True, trim_blocks=True,
                           undefined=jinja2.StrictUndefined).get_template("eval.html.j2")  # fmt: skip


@dataclass
class EvalSet:
    """Evaluation triples: line (N, 1, H, W) in [0, 1]; reference and truth (N, 3, H, W) in [0, 1]."""

    line: torch.Tensor
    reference: torch.Tensor
    truth: torch.Tensor
    names: list[str]

    def __len__(self) -> int:
        return self.line.shape[0]


def make_eval_set(
    line: np.ndarray | torch.Tensor,
    color: np.ndarray | torch.Tensor,
    names: list[str],
    seed: int = 1234,
    max_shift: float = EVAL_WARP,
) -> EvalSet:
    """Triples from aligned pairs: line (N, H, W) uint8, color (N, H, W, 3) uint8; references are seeded warps."""
    line_t = torch.as_tensor(np.asarray(line)).float().div(255).unsqueeze(1)  # (N, 1, H, W)
    truth = torch.as_tensor(np.asarray(color)).float().div(255).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
    generator = torch.Generator().manual_seed(seed)
    reference = tps_warp(truth, max_shift=max_shift, generator=generator).clamp(0, 1)
    return EvalSet(line=line_t, reference=reference, truth=truth, names=list(names))


def load_eval_set(data: str, resolution: int, limit: int | None = None) -> EvalSet:
    """The OpenMoji test split ("openmoji") or a folder URL holding line/, reference/ and truth/ paired by name."""
    if data == "openmoji":
        pairs = load_openmoji_pairs("test", resolution, limit=limit)
        return make_eval_set(pairs.line, pairs.color, pairs.names)
    root = data.rstrip("/")
    truth = load_folder_pairs(f"{root}/truth", f"{root}/line", size=resolution)
    references = load_folder_pairs(f"{root}/reference", f"{root}/line", size=resolution)
    if references.names != truth.names:
        missing = sorted(set(truth.names) ^ set(references.names))
        msg = f"{root}/reference and {root}/truth must hold the same file names; unmatched: {missing[:5]}"
        raise ValueError(msg)
    count = limit or len(truth)

    def unit(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array[:count]).float().div(255)

    return EvalSet(
        line=unit(truth.line).unsqueeze(1),
        reference=unit(references.color).permute(0, 3, 1, 2).contiguous(),
        truth=unit(truth.color).permute(0, 3, 1, 2).contiguous(),
        names=truth.names[:count],
    )


def lines_on_white(line: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Baseline: the line art itself as an RGB image."""
    return line.expand(-1, 3, -1, -1)


def reference_under_lines(line: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Baseline: the reference's pixels (resized to the frame) multiplied by the frame's lines."""
    if reference.shape[-2:] != line.shape[-2:]:
        reference = F.interpolate(reference, size=line.shape[-2:], mode="bilinear", align_corners=False)
    return reference * line


def model_method(model: Colorizer) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Wrap a colorizer as a method on [0, 1] images; the model's lines are replaced by the artist's (multiply)."""
    device = next(model.parameters()).device

    @torch.inference_mode()
    def run(line: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        line, reference = line.to(device), reference.to(device)
        colors = model(line, reference * 2 - 1).float().add(1).div(2).clamp(0, 1)
        return (colors * line).cpu()

    return run


def score(
    method: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], data: EvalSet, batch_size: int = 16
) -> dict[str, float]:
    """Mean PSNR (dB, 0-255 scale) and SSIM of a method over an evaluation set."""
    psnrs, ssims = [], []
    for start in range(0, len(data), batch_size):
        part = slice(start, start + batch_size)
        output = method(data.line[part], data.reference[part]).float().cpu()
        psnrs.append(psnr(output, data.truth[part]))
        ssims.append(ssim(output, data.truth[part]))
    return {"psnr": float(torch.cat(psnrs).mean()), "ssim": float(torch.cat(ssims).mean())}


def evaluate(model: Colorizer, data: EvalSet, batch_size: int = 16) -> dict[str, dict[str, float]]:
    """Scores of the model and both baselines on the same triples, keyed by method name."""
    was_training = model.training
    model.eval()
    results = {
        "inkpaint": score(model_method(model), data, batch_size),
        "lines on white": score(lines_on_white, data, batch_size),
        "reference under lines": score(reference_under_lines, data, batch_size),
    }
    model.train(was_training)
    return results


def format_table(results: dict[str, dict[str, float]], title: str) -> str:
    """A plain-text table of evaluate()'s results."""
    rows = [title, f"{'method':<24}{'PSNR (dB)':>12}{'SSIM':>10}"]
    rows += [f"{name:<24}{values['psnr']:>12.2f}{values['ssim']:>10.4f}" for name, values in results.items()]
    return "\n".join(rows)


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8."""
    array = image.float().clamp(0, 1).mul(255).round().byte()
    return array.expand(3, -1, -1).permute(1, 2, 0).numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()


def write_eval_html(
    folder: Path,
    results: dict[str, dict[str, float]],
    title: str,
    model: Colorizer,
    data: EvalSet,
    examples: int = 8,
) -> Path:
    """The evaluation as a page: the score table, then line art, reference, ours and truth side by side for the first
    `examples` drawings (one PNG per row in `folder`). Returns the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    count = min(examples, len(data))
    ours = model_method(model)(data.line[:count], data.reference[:count])
    shown = []
    for index in range(count):
        panels = [data.line[index], data.reference[index], ours[index], data.truth[index]]
        strip = np.concatenate([_to_uint8(panel) for panel in panels], axis=1)
        name = f"example-{index:03d}.png"
        Image.fromarray(strip).save(folder / name)
        shown.append({"name": data.names[index], "src": name})
    page = folder / "index.html"
    page.write_text(_PAGE.render(title=title, results=results, examples=shown), encoding="utf-8")
    return page
