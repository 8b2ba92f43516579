"""inkpaint's command line: one Click command per job; each option maps to one field of a spec or config."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError, version

import click

from model.augment import AugmentConfig
from model.checkpoint import DEFAULT_WEIGHTS, CheckpointError
from model.colorizer import DEFAULT_PRESET, PRESETS

WEIGHTS_ENVVAR = "INKPAINT_WEIGHTS"


def package_version() -> str:
    """The installed distribution's version (a source checkout run without installing says so)."""
    try:
        return version("inkpaint")
    except PackageNotFoundError:
        return "0+source"


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_version(), prog_name="inkpaint")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Color animation line art from colored keyframes."""
    setup_logging(verbose)


@main.command()
@click.option(
    "-o",
    "--output",
    "output_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for checkpoints and metrics.jsonl; rerunning resumes.",
)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=DEFAULT_PRESET)
@click.option("--data", default="openmoji", help="'openmoji', or a folder URL of colored frames to train on.")
@click.option("--line-data", default=None, help="Folder of line art paired by name with --data (else XDoG).")
@click.option("--resolution", type=click.IntRange(32, 2048), default=256, help="Training image side in pixels.")
@click.option("--batch-size", type=click.IntRange(1), default=16)
@click.option("--steps", type=click.IntRange(1), default=20_000)
@click.option("--lr-generator", type=click.FloatRange(0, min_open=True), default=1e-4)
@click.option("--lr-discriminator", type=click.FloatRange(0, min_open=True), default=2e-4)
@click.option("--adversarial/--no-adversarial", default=True, help="Train with the PatchGAN term.")
@click.option(
    "--vgg-weights",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="VGG19 weights (safetensors) for the perceptual and style terms.",
)
@click.option(
    "--init-weights",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Start from these colorizer weights (fine-tune).",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Use at most N training drawings.")
@click.option("--val-images", type=click.IntRange(1), default=64)
@click.option("--val-every", type=click.IntRange(1), default=500)
@click.option("--log-every", type=click.IntRange(1), default=50)
@click.option(
    "--max-minutes",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Stop cleanly after this much wall time.",
)
@click.option("--seed", type=int, default=0)
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option("--amp/--no-amp", default=True, help="bfloat16 autocast on CUDA.")
@click.option("--workers", type=click.IntRange(1), default=None, help="Processes rendering training data.")
@click.option(
    "--warp",
    type=click.FloatRange(0, 0.5),
    default=AugmentConfig().max_shift,
    help="Thin-plate-spline warp of the reference, as a fraction of the size.",
)
def train(**options: object) -> None:
    """Train a colorizer (OpenMoji line-art/color pairs by default)."""
    from model.train import TrainConfig, Trainer

    warp = options.pop("warp")
    config = TrainConfig(**options, augment=AugmentConfig(max_shift=warp))
    try:
        metrics = Trainer(config).run()
    except (ValueError, CheckpointError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"trained to {config.output_dir}: validation {metrics}")


@main.command(name="eval")
@click.option(
    "--weights",
    type=str,
    default=str(DEFAULT_WEIGHTS),
    envvar=WEIGHTS_ENVVAR,
    help="Colorizer weights (.safetensors, local path or URL).",
)
@click.option(
    "--data",
    default="openmoji",
    help="'openmoji' (its test split), or a folder URL with line/, reference/ and truth/ subfolders.",
)
@click.option("--resolution", type=click.IntRange(32, 2048), default=256)
@click.option("--limit", type=click.IntRange(1), default=None, help="Score at most N drawings.")
@click.option("--batch-size", type=click.IntRange(1), default=16)
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
def evaluate_command(weights: str, data: str, resolution: int, limit: int | None, batch_size: int, device: str) -> None:
    """Score weights against ground truth beside two baselines; prints one table."""
    from model.checkpoint import load_colorizer
    from model.evaluate import evaluate, format_table, load_eval_set
    from model.train import resolve_device

    try:
        model, info = load_colorizer(weights, device=resolve_device(device))
        data_set = load_eval_set(data, resolution, limit)
    except (ValueError, CheckpointError, FileNotFoundError) as error:
        raise click.UsageError(str(error)) from error
    results = evaluate(model, data_set, batch_size)
    title = (
        f"{data} ({len(data_set)} drawings, {resolution}px), weights {weights} "
        f"({info.preset}, step {info.step}, sha256 {info.sha256[:12]})"
    )
    click.echo(format_table(results, title))


@main.command(name="export-weights")
@click.argument("source", type=str)
@click.argument("destination", type=click.Path(dir_okay=False))
@click.option("--half/--full", default=True, help="Store float16 tensors (half the size) or float32.")
def export_weights(source: str, destination: str, half: bool) -> None:
    """Copy a checkpoint with its provenance, e.g. a training run's best weights into float16 for shipping."""
    import torch

    from model.checkpoint import load_colorizer, save_colorizer

    try:
        model, info = load_colorizer(source)
    except CheckpointError as error:
        raise click.UsageError(str(error)) from error
    sha = save_colorizer(
        model, destination, step=info.step, training_data=info.training_data, metrics=info.metrics,
        dtype=torch.float16 if half else None, extra=info.extra,
    )  # fmt: skip
    click.echo(f"wrote {destination} (sha256 {sha})")


@main.command()
@click.argument("frames", type=str)
@click.option("-r", "--reference", required=True, help="The colored keyframe (path or URL).")
@click.option("-o", "--output", required=True, help="Folder (path or URL) receiving one PNG per frame.")
@click.option("--video", default=None, help="Also write the colored shot as this video file (.mp4, .mov, .mkv).")
@click.option("--fps", type=click.FloatRange(0, 1000, min_open=True), default=24.0, help="Video frame rate.")
@click.option("--codec", type=click.Choice(["h264", "prores", "ffv1"]), default="h264", help="Video codec.")
@click.option("--weights", default=str(DEFAULT_WEIGHTS), envvar=WEIGHTS_ENVVAR, help="Colorizer weights.")
@click.option(
    "--resolution",
    type=click.IntRange(32, 4096),
    default=256,
    help="Model working resolution, long side (the shipped weights were trained at 256); "
    "lines stay at the frames' own resolution.",
)
@click.option("--batch-size", type=click.IntRange(1, 256), default=4, help="Frames per model call.")
@click.option("--resume/--no-resume", default=True, help="Skip frames whose output PNG already exists.")
@click.option("--address", default=None, envvar="RAY_ADDRESS", help="Ray cluster address; default: a local Ray.")
def shot(frames: str, reference: str, output: str, video: str | None, fps: float, codec: str, weights: str,
         resolution: int, batch_size: int, resume: bool, address: str | None) -> None:  # fmt: skip
    """Color one shot: FRAMES (a folder of line art or a video) like the keyframe given with --reference."""
    from jobs.shot import colorize_one_shot
    from pipeline.colorize import Shot, ShotOptions

    name = frames.rstrip("/").rsplit("/", 1)[-1] or "shot"
    spec = Shot(name=name, frames=frames, reference=reference, output=output, video=video)
    options = ShotOptions(resolution=resolution, batch_size=batch_size, resume=resume, fps=fps, codec=codec)
    try:
        result = colorize_one_shot(spec, options, weights, address)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    click.echo(result.summary())
    if result.status != "ok":
        sys.exit(1)


def colorize_shot() -> None:
    """Entry point of the `colorize-shot` console script: the same command as `inkpaint shot`."""
    setup_logging(verbose=False)
    shot.main(args=sys.argv[1:], prog_name="colorize-shot")


if __name__ == "__main__":
    main()
