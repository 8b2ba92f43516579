"""Training the colorizer: data on the device, augmented-self references, L1 + LSGAN (+ VGG terms), Adam.

A run writes into its output folder:
- ``last.safetensors`` and ``best.safetensors`` (by validation PSNR): colorizer checkpoints with provenance;
- ``training_state.safetensors``: discriminator, optimizers and random state, for an exact resume;
- ``metrics.jsonl``: one JSON object per logged step and per validation, for plotting;
- ``training.png``: the losses and the validation PSNR/SSIM drawn from it (`model/plots.py`), redrawn at every
  validation.
Rerunning with the same output folder resumes where the last checkpoint left off.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from tqdm import tqdm

from model.augment import AugmentConfig, make_training_batch
from model.checkpoint import load_colorizer, save_colorizer
from model.colorizer import Colorizer, build_colorizer
from model.data import DATA_ATTRIBUTION, PairArrays, load_folder_pairs, load_openmoji_pairs
from model.discriminator import PatchDiscriminator
from model.evaluate import EvalSet, evaluate, make_eval_set
from model.files import write_bytes_atomic
from model.losses import GeneratorLoss, LossWeights, VGG19Features, lsgan_discriminator_loss
from model.plots import write_training_plot

log = logging.getLogger(__name__)

VAL_SHARE = 0.05  # of a folder's drawings, set aside for validation by model.data.split_of
# A folder this large holds at least one validation drawing with a probability of about 99.4%.
MIN_FOLDER_DRAWINGS = 100


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; stored with its checkpoints.

    Args:
        output_dir: folder for checkpoints and the metrics log.
        preset: colorizer preset to train.
        data: "openmoji", or a folder URL of colored frames (line art from `line_data` or extracted by XDoG).
        line_data: folder of line art paired by file name with `data`.
        resolution: training image side in pixels.
        batch_size: images per step.
        steps: total optimizer steps.
        lr_generator: Adam learning rate of the colorizer.
        lr_discriminator: Adam learning rate of the discriminator.
        adversarial: train with the PatchGAN (LSGAN) term.
        vgg_weights: safetensors file of VGG19 weights enabling the perceptual and style terms.
        init_weights: start the colorizer from these weights (fine-tuning) instead of from scratch.
        limit: use at most this many training drawings (quick runs and tests).
        val_images: validation drawings scored at each validation.
        val_every: steps between validations and checkpoints.
        log_every: steps between metric log lines.
        max_minutes: stop cleanly (validate, save) after this much wall time.
        seed: seeds data order, augmentation and initialisation.
        device: "auto", "cpu", "cuda" or "cuda:N".
        amp: bfloat16 autocast on CUDA.
        workers: processes rendering the training data (None: all cores).
        augment: augmentation settings.
    """

    output_dir: str
    preset: str = "lite"
    data: str = "openmoji"
    line_data: str | None = None
    resolution: int = 256
    batch_size: int = 16
    steps: int = 20_000
    lr_generator: float = 1e-4
    lr_discriminator: float = 2e-4
    adversarial: bool = True
    vgg_weights: str | None = None
    init_weights: str | None = None
    limit: int | None = None
    val_images: int = 64
    val_every: int = 500
    log_every: int = 50
    max_minutes: float | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    workers: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def warm_start(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy every tensor of `state` whose name and shape fit `model`; return the names left at initialisation.

    A checkpoint of a related shape (another color_stride, a wider bottleneck) then starts most of the network.
    """
    own = model.state_dict()
    fitting = {name: value for name, value in state.items() if name in own and own[name].shape == value.shape}
    if not fitting:
        msg = "the initial weights share no tensor with this network; train it from scratch instead"
        raise ValueError(msg)
    model.load_state_dict(fitting, strict=False)
    return sorted(name for name in own if name not in fitting)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_training_pairs(config: TrainConfig, split: str, limit: int | None) -> PairArrays:
    """The configured data source's pairs for one split (folder data is split by file name the same way)."""
    if config.data == "openmoji":
        return load_openmoji_pairs(split, config.resolution, limit=limit, workers=config.workers)
    pairs = load_folder_pairs(config.data, config.line_data, size=config.resolution)
    return pairs.select_split(split, limit)


def describe_data(config: TrainConfig) -> str:
    """A line for checkpoint metadata saying what the weights were trained on."""
    if config.data == "openmoji":
        return f"{DATA_ATTRIBUTION}; train split; {config.resolution}px renders"
    return f"folder {config.data} (line art: {config.line_data or 'XDoG'}); {config.resolution}px"


def flatten_optimizer(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """Optimizer state as flat tensors plus its param groups as JSON, for a safetensors file."""
    state = optimizer.state_dict()
    tensors = {
        f"{prefix}.{index}.{key}": torch.as_tensor(value).cpu().contiguous()
        for index, values in state["state"].items()
        for key, value in values.items()
    }
    return tensors, json.dumps(state["param_groups"])


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], groups: str) -> dict:
    """Inverse of `flatten_optimizer`."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": json.loads(groups)}


class Trainer:
    """Owns the models, optimizers and data of one training run.

    Args:
        config: the run's settings.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.output = Path(config.output_dir)
        self.device = resolve_device(config.device)
        # The data first: too few drawings is refused before a network is built or a file written.
        self.val_set = self.load_val_data()
        self.train_line, self.train_color = self.load_train_data()
        self.output.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(config.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.colorizer = self.initial_colorizer().to(self.device).train()
        self.discriminator = PatchDiscriminator().to(self.device).train()
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam(self.colorizer.parameters(), lr=config.lr_generator, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_discriminator, betas=betas)
        vgg = VGG19Features.from_file(config.vgg_weights).to(self.device) if config.vgg_weights else None
        self.loss = GeneratorLoss(LossWeights(), vgg)
        self.step = 0  # steps of this run; checkpoints record base_step + step
        self.best_psnr = -math.inf
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if config.amp and self.device.type == "cuda" else nullcontext()
        )
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.resume()

    def initial_colorizer(self) -> Colorizer:
        """The preset's network, warm-started from `init_weights` where its tensors fit."""
        self.base_step = 0
        model = build_colorizer(self.config.preset)
        if self.config.init_weights:
            source, info = load_colorizer(self.config.init_weights)
            fresh = warm_start(model, source.state_dict())
            log.info(
                "fine-tuning from %s (step %d); %s", self.config.init_weights, info.step,
                f"new tensors: {', '.join(fresh)}" if fresh else "every tensor loaded",
            )  # fmt: skip
            self.base_step = info.step
        return model

    def load_train_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = load_training_pairs(self.config, "train", self.config.limit)
        if len(pairs.names) == 0:
            msg = f"training data {self.config.data!r} has no training images"
            raise ValueError(msg)
        log.info("training on %d drawings at %dpx", len(pairs.names), self.config.resolution)
        return pairs.to_tensors(self.device)

    def load_val_data(self) -> EvalSet:
        pairs = load_training_pairs(self.config, "val", self.config.val_images)
        if len(pairs) == 0:  # only a small folder: OpenMoji's validation split has hundreds of drawings
            # Drawings are set aside for validation by a hash of their names (model.data.split_of), about 1 in 20.
            count = len(load_folder_pairs(self.config.data, self.config.line_data, size=self.config.resolution))
            msg = (
                f"training data {self.config.data!r}: none of its {count} drawings falls in the validation split "
                f"(about 1 in {round(1 / VAL_SHARE)} drawings, chosen by file name); give at least "
                f"{MIN_FOLDER_DRAWINGS} drawings (a few hundred for a validation score worth reading)"
            )
            raise ValueError(msg)
        return make_eval_set(pairs.line, pairs.color, pairs.names)

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def provenance(self) -> dict[str, str]:
        return {
            "train_config": json.dumps(asdict(self.config)),
            "command": " ".join(sys.argv),
            "hardware": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else platform.processor(),
        }

    def save(self, metrics: dict[str, float]) -> None:
        """Write last.safetensors and the training state; best.safetensors when validation PSNR improved."""
        data = describe_data(self.config)
        save_colorizer(
            self.colorizer, self.output / "last.safetensors", step=self.base_step + self.step, training_data=data,
            metrics=metrics, extra=self.provenance(),
        )  # fmt: skip
        if metrics.get("psnr", -math.inf) > self.best_psnr:
            self.best_psnr = metrics["psnr"]
            save_colorizer(
                self.colorizer, self.output / "best.safetensors", step=self.base_step + self.step, training_data=data,
                metrics=metrics, extra=self.provenance(),
            )  # fmt: skip
        g_tensors, g_groups = flatten_optimizer("opt_g", self.opt_g)
        d_tensors, d_groups = flatten_optimizer("opt_d", self.opt_d)
        tensors = {f"discriminator.{k}": v.cpu() for k, v in self.discriminator.state_dict().items()}
        tensors |= g_tensors | d_tensors
        tensors["rng.generator"] = self.generator.get_state().cpu()
        metadata = {"step": str(self.step), "best_psnr": str(self.best_psnr), "opt_g": g_groups, "opt_d": d_groups}
        write_bytes_atomic(save(tensors, metadata=metadata), str(self.output / "training_state.safetensors"))

    def resume(self) -> None:
        """Continue from the output folder's last checkpoint, if there is one."""
        state_path, weights_path = self.output / "training_state.safetensors", self.output / "last.safetensors"
        if not (state_path.exists() and weights_path.exists()):
            return
        model, _ = load_colorizer(weights_path, expected_preset=self.config.preset)
        self.colorizer.load_state_dict(model.state_dict())
        tensors = load_file(str(state_path))
        with safe_open(str(state_path), framework="pt") as handle:
            metadata = handle.metadata()
        self.discriminator.load_state_dict(
            {k.removeprefix("discriminator."): v for k, v in tensors.items() if k.startswith("discriminator.")}
        )
        self.opt_g.load_state_dict(unflatten_optimizer("opt_g", tensors, metadata["opt_g"]))
        self.opt_d.load_state_dict(unflatten_optimizer("opt_d", tensors, metadata["opt_d"]))
        self.generator.set_state(tensors["rng.generator"].to(self.generator.get_state().device))
        self.step = int(metadata["step"])
        self.best_psnr = float(metadata["best_psnr"])
        log.info("resumed from %s at step %d", weights_path, self.step)

    # -- the loop ------------------------------------------------------------------------------------------------

    def sample_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A random batch with augmented-self references: (line [0,1], reference [-1,1], target [-1,1])."""
        count = self.train_line.shape[0]
        index = torch.randint(count, (self.config.batch_size,), device=self.device, generator=self.generator)
        line = self.train_line[index].float().div_(255)
        color = self.train_color[index].float().div_(255)
        return make_training_batch(line, color, self.config.augment, self.generator)

    def train_step(self) -> dict[str, torch.Tensor]:
        """One generator and one discriminator update; returns detached loss terms."""
        line, reference, target = self.sample_batch()
        with self.autocast:
            prediction = self.colorizer(line, reference)
            fake_scores = self.discriminator(prediction, line) if self.config.adversarial else None
            total, terms = self.loss(prediction.float(), target, fake_scores)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        if self.config.adversarial:
            with self.autocast:
                real = self.discriminator(target, line)
                fake = self.discriminator(prediction.detach(), line)
                d_loss = lsgan_discriminator_loss(real.float(), fake.float())
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            terms["discriminator"] = d_loss.detach()
        terms["total"] = total.detach()
        return terms

    def validate(self) -> dict[str, float]:
        results = evaluate(self.colorizer, self.val_set)
        return {"psnr": results["inkpaint"]["psnr"], "ssim": results["inkpaint"]["ssim"]}

    def log_line(self, record: dict) -> None:
        with open(self.output / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def run(self) -> dict[str, float]:
        """Train until `steps` (or `max_minutes`); returns the last validation metrics."""
        config = self.config
        started = time.monotonic()
        deadline = started + config.max_minutes * 60 if config.max_minutes else math.inf
        interactive = sys.stderr.isatty()
        bar = tqdm(total=config.steps, initial=self.step, disable=not interactive, desc="train", unit="step")
        metrics: dict[str, float] = {}
        window_start, window_steps = time.monotonic(), 0
        while self.step < config.steps:
            terms = self.train_step()
            self.step += 1
            window_steps += 1
            bar.update(1)
            last_step = self.step >= config.steps or time.monotonic() >= deadline
            if self.step % config.log_every == 0 or last_step:
                elapsed = time.monotonic() - window_start
                record = {k: round(float(v), 5) for k, v in terms.items()}
                record |= {"step": self.step, "images_per_s": round(window_steps * config.batch_size / elapsed, 2)}
                self.log_line({"kind": "train", **record})
                bar.set_postfix(loss=record["total"])
                if not interactive:
                    log.info("step %d/%d loss %.4f (%.1f images/s)", self.step, config.steps, record["total"],
                             record["images_per_s"])  # fmt: skip
                window_start, window_steps = time.monotonic(), 0
            if self.step % config.val_every == 0 or last_step:
                metrics = self.validate()
                self.log_line({"kind": "val", "step": self.step, "seconds": time.monotonic() - started, **metrics})
                log.info("step %d validation PSNR %.2f dB SSIM %.4f", self.step, metrics["psnr"], metrics["ssim"])
                self.save(metrics)
                write_training_plot(self.output / "metrics.jsonl", self.output / "training.png")
            if last_step:
                break
        bar.close()
        return metrics
