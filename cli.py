"""inkpaint's command line: one Click command per job; each option maps to one field of a spec or config."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

import click

from jobs.recording import NotRecorded
from jobs.shot_eval import PIPELINE_VARIANT_NAMES, run_shot_eval
from jobs.shot_eval_cases import DEFAULT_MAX_FRAMES
from jobs.shot_eval_tables import format_tables, write_html
from model.augment import AugmentConfig
from model.checkpoint import DEFAULT_WEIGHTS, CheckpointError
from model.colorizer import DEFAULT_PRESET, PRESETS
from pipeline.shot import OPTIONS, InvalidOptions, Option, Shot, ShotOptions, ShotResult
from pipeline.status import ShotStatus

WEIGHTS_ENVVAR = "INKPAINT_WEIGHTS"
RAY_ADDRESS_ENVVAR = "RAY_ADDRESS"
# -h as well as --help on every command; every option's default in its help (a command's own context_settings
# apply when it runs alone, as `colorize-shot` does).
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True}
ray_address_option = click.option(
    "--address",
    default=None,
    envvar=RAY_ADDRESS_ENVVAR,
    show_envvar=True,
    help="Ray cluster address; default: a local Ray.",
)
OWN_LOGGERS = ("cli", "jobs", "pipeline", "model")
# Libraries whose DEBUG lines would bury inkpaint's own under -v (Pillow alone writes a hundred per run).
THIRD_PARTY_LOGGERS = ("PIL", "fsspec", "s3fs", "aiobotocore", "botocore", "boto3", "urllib3", "asyncio",
                       "matplotlib", "filelock")  # fmt: skip


def package_version() -> str:
    """The installed distribution's version (a source checkout run without installing says so)."""
    try:
        return version("inkpaint")
    except PackageNotFoundError:
        return "0+source"


def setup_logging(verbose: bool) -> None:
    """INFO and above on stderr, WARNING and above from third-party libraries; with `verbose`, inkpaint's own
    modules log at DEBUG too, each line naming its module."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        if verbose
        else "%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.getLogger().setLevel(logging.INFO)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.NOTSET)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf, which pass its comparisons (nan is neither below nor above a
    bound) and fail much later, e.g. as 'cannot convert NaN to integer ratio' when a video is opened."""

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_version(), prog_name="inkpaint")
@click.option(
    "-v", "--verbose", is_flag=True, help="Log inkpaint's own steps at DEBUG (third-party libraries stay quiet)."
)
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
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=DEFAULT_PRESET, help="The network's size.")
@click.option("--data", default="openmoji", help="'openmoji', or a folder URL of colored frames to train on.")
@click.option("--line-data", default=None, help="Folder of line art paired by name with --data (else XDoG).")
@click.option("--resolution", type=click.IntRange(32, 2048), default=256, help="Training image side in pixels.")
@click.option("--batch-size", type=click.IntRange(1), default=16, help="Drawings per training step.")
@click.option(
    "--steps", type=click.IntRange(1), default=20_000, help="Optimizer steps in all (a resumed run counts on)."
)
@click.option(
    "--lr-generator", type=FiniteFloatRange(0, min_open=True), default=1e-4, help="Adam learning rate of the colorizer."
)
@click.option(
    "--lr-discriminator",
    type=FiniteFloatRange(0, min_open=True),
    default=2e-4,
    help="Adam learning rate of the discriminator.",
)
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
@click.option("--val-images", type=click.IntRange(1), default=64, help="Validation drawings scored each time.")
@click.option("--val-every", type=click.IntRange(1), default=500, help="Steps between validations (and checkpoints).")
@click.option("--log-every", type=click.IntRange(1), default=50, help="Steps between lines in metrics.jsonl.")
@click.option(
    "--max-minutes",
    type=FiniteFloatRange(0, min_open=True),
    default=None,
    help="Stop cleanly after this much wall time.",
)
@click.option("--seed", type=int, default=0, help="Seeds data order, augmentation and initialisation.")
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option("--amp/--no-amp", default=True, help="bfloat16 autocast on CUDA.")
@click.option("--workers", type=click.IntRange(1), default=None, help="Processes rendering training data.")
@click.option(
    "--warp",
    type=FiniteFloatRange(0, 0.5),
    default=AugmentConfig().max_shift,
    help="Thin-plate-spline warp of the reference, as a fraction of the size.",
)
def train(**options: object) -> None:
    """Train a colorizer (OpenMoji line-art/color pairs by default)."""
    from model.train import TrainConfig, Trainer

    warp = options.pop("warp")
    config = TrainConfig(**options, augment=AugmentConfig(max_shift=warp))
    try:
        trainer = Trainer(config)
    except (ValueError, CheckpointError) as error:  # data or initial weights that cannot be used
        raise click.UsageError(str(error)) from error
    try:
        metrics = trainer.run()
    except (ValueError, CheckpointError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"trained to {config.output_dir}: validation {metrics}")


@main.command(name="eval")
@click.option(
    "--weights",
    type=str,
    default=str(DEFAULT_WEIGHTS),
    envvar=WEIGHTS_ENVVAR,
    show_envvar=True,
    help="Colorizer weights (.safetensors, local path or URL).",
)
@click.option(
    "--data",
    default="openmoji",
    help="'openmoji' (its test split), or a folder URL with line/, reference/ and truth/ subfolders.",
)
@click.option("--resolution", type=click.IntRange(32, 2048), default=256, help="Image side the model works at.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Score at most N drawings.")
@click.option("--batch-size", type=click.IntRange(1), default=16, help="Drawings per model call.")
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--html",
    "html_folder",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write the table and side-by-side pictures (line art, reference, ours, truth) as a page here.",
)
@click.option(
    "--shots",
    "shots_folder",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Instead, score finished colored shots: each entry of this folder is a case folder (reference.png, lines/, "
    "truth/), a folder of colored frames or a video, colored again from its first frame through the shot pipeline.",
)
@click.option(
    "--variants",
    default=None,
    help=f"With --shots: the pipeline variants to run, comma-separated (default: all): "
    f"{', '.join(PIPELINE_VARIANT_NAMES)}. The baselines always run.",
)
@click.option(
    "--max-frames",
    type=click.IntRange(2),
    default=DEFAULT_MAX_FRAMES,
    help="With --shots: frames taken from a video or frame folder (up to its first cut), the keyframe included.",
)
@click.pass_context
def evaluate_command(ctx: click.Context, weights: str, data: str, resolution: int, limit: int | None,
                     batch_size: int, device: str, html_folder: str | None, shots_folder: str | None,
                     variants: str | None, max_frames: int) -> None:  # fmt: skip
    """Score weights against ground truth beside two baselines; prints one table. With --shots, score the shot
    pipeline on finished shots instead: one row per variant, then one row per shot (Markdown tables)."""
    given = [f"--{name.replace('_', '-')}" for name in ("data", "limit", "variants", "max_frames")
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]  # fmt: skip
    if shots_folder is not None:
        if mixed := [option for option in given if option in ("--data", "--limit")]:
            raise click.UsageError(f"{' and '.join(mixed)} choose drawings to score; --shots scores shots: give one")
        evaluate_shots_command(shots_folder, weights, device, variants, resolution, batch_size, max_frames,
                               html_folder)  # fmt: skip
        return
    if only_shots := [option for option in given if option in ("--variants", "--max-frames")]:
        raise click.UsageError(f"{' and '.join(only_shots)} apply to --shots only")
    from model.checkpoint import load_colorizer
    from model.evaluate import evaluate, format_table, load_eval_set, write_eval_html
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
    if html_folder is not None:
        page = write_eval_html(Path(html_folder), results, title, model, data_set)
        click.echo(f"wrote {page}")


def evaluate_shots_command(shots_folder: str, weights: str, device: str, variants: str | None, resolution: int,
                           batch_size: int, max_frames: int, html_folder: str | None) -> None:  # fmt: skip
    """`eval --shots`: the tables on stdout, the failures named; exit code 1 when a shot or a variant failed."""
    try:
        result = run_shot_eval(shots_folder, weights, device, variants, resolution, batch_size, max_frames)
    except (ValueError, CheckpointError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(format_tables(result))
    if html_folder is not None:
        click.echo(f"wrote {write_html(result, html_folder)}")
    if result.failed:
        click.echo(f"failed shots: {', '.join(case.name for case in result.failed)}", err=True)
        sys.exit(1)


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


def switch(option: Option) -> str:
    """A shot option's switch: the one it declares, else --name (--name/--no-name for a yes/no option)."""
    dashed = option.name.replace("_", "-")
    return option.switch or (f"--{dashed}/--no-{dashed}" if option.type is bool else f"--{dashed}")


def click_type(option: Option) -> click.ParamType | type:
    """A shot option's values as Click checks them: its choices, or its range, else its type."""
    if option.choices:
        return click.Choice(option.choices)
    if option.type is float:
        return FiniteFloatRange(option.low, option.high, min_open=option.above_low)
    if option.type is int and (option.low is not None or option.high is not None):
        return click.IntRange(option.low, option.high, min_open=option.above_low)
    return option.type


def shot_options(command: Callable) -> Callable:
    """A switch for each ShotOptions field the command line takes, in declaration order, made from its
    declaration (pipeline/shot.py): flag, type, range or choices, default and help."""
    for option in reversed([option for option in OPTIONS.values() if option.on_command_line]):
        flag = {"is_flag": True} if option.type is bool else {"type": click_type(option)}
        command = click.option(switch(option), option.name, default=option.default, help=option.help, **flag)(command)
    return command


@main.command(context_settings=CONTEXT_SETTINGS)  # its own too: `colorize-shot` runs it alone
@click.argument("frames", type=str)
@click.option(
    "-r",
    "--reference",
    "references",
    required=True,
    multiple=True,
    help="A colored keyframe (path or URL); repeat for several, e.g. the shot's first and last drawing.",
)
@click.option(
    "--keyframe-at",
    "keyframe_frames",
    type=click.IntRange(1),
    multiple=True,
    help="Frame number (1 = the shot's first frame) each --reference was painted on, in the same order; frames "
    "are then colored outward from it and nearer keyframes count more.",
)
@click.option("-o", "--output", required=True, help="Folder (path or URL) receiving one PNG per frame.")
@click.option("--video", default=None, help="Also write the colored shot as this video file (.mp4, .mov, .mkv).")
@click.option(
    "--weights", default=str(DEFAULT_WEIGHTS), envvar=WEIGHTS_ENVVAR, show_envvar=True, help="Colorizer weights."
)
@click.option(
    "--reference-lines",
    default=None,
    help="The keyframe's own line art (path or URL), when the studio has it; else the frame it was painted on "
    "(--keyframe-at), else lines extracted from it.",
)
@shot_options
@ray_address_option
def shot(frames: str, references: tuple[str, ...], keyframe_frames: tuple[int, ...], output: str,
         video: str | None, weights: str, reference_lines: str | None, address: str | None,
         **option_values: object) -> None:  # fmt: skip
    """Color one shot: FRAMES (a folder of line art or a video) like the keyframes given with --reference."""
    from jobs.shot import colorize_one_shot
    from pipeline.references import ShotReference

    if keyframe_frames and len(keyframe_frames) != len(references):
        msg = f"--keyframe-at was given {len(keyframe_frames)} times for {len(references)} --reference; give one each"
        raise click.UsageError(msg)
    positions = [number - 1 for number in keyframe_frames] or [None] * len(references)
    if len(references) > 1 and not keyframe_frames:
        raise click.UsageError("several --reference need --keyframe-at for each: the frame it was painted on")
    keyframes = [ShotReference(url, position) for url, position in zip(references, positions, strict=True)]
    name = frames.rstrip("/").rsplit("/", 1)[-1] or "shot"
    spec = Shot(name=name, frames=frames, reference=keyframes[0].url, output=output, video=video,
                keyframe_position=keyframes[0].position, extra_references=tuple(keyframes[1:]),
                reference_lines=reference_lines)  # fmt: skip
    try:
        options = ShotOptions(**option_values)
    except InvalidOptions as invalid:  # values each switch accepts alone, but not together
        problems = [f"{switch(OPTIONS[name]).split('/')[0]}: {what}" for name, what in invalid.problems]
        raise click.UsageError("; ".join(problems)) from invalid
    try:
        result = colorize_one_shot(spec, options, weights, address)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    except NotRecorded as failure:
        if failure.result is not None:
            echo_shot_summary(failure.result)
        not_recorded(failure)
    echo_shot_summary(result)
    if result.status is not ShotStatus.OK:
        sys.exit(1)


def echo_shot_summary(result: ShotResult) -> None:
    """The summary's first line on stdout; the lines of failed frames on stderr."""
    first, *failures = result.summary().splitlines()
    click.echo(first)
    for line in failures:
        click.echo(line, err=True)


def not_recorded(failure: NotRecorded) -> NoReturn:
    """A run's record could not be written (a full disk ...): say which, and what a rerun does; exit 1."""
    click.echo(f"Error: {failure}; run the same command again once there is room: frames that no table records are "
               "colored again, and the shot is recorded", err=True)  # fmt: skip
    sys.exit(1)


@main.command()
@click.argument("output", metavar="OUT")
def report(output: str) -> None:
    """Write the run's report page, OUT/inkpaint-report/index.html (runs write it themselves when they finish):
    every shot as pictures, failures first, then the shots most likely wrong."""
    from jobs.report import write_report

    page, shots = write_report(output)
    click.echo(f"report of {len(shots)} shots: {page}")
    if not shots:
        click.echo(f"no results found in {output}", err=True)
        sys.exit(1)


@main.command()
@click.argument("output", metavar="OUT")
def verify(output: str) -> None:
    """Check that every frame a run planned in OUT (an episode's output or a shot's output folder) is there,
    decodes, and is byte for byte the file that was written (its recorded SHA-256). Exit code 1 if not."""
    from jobs.verify import verify_output

    try:
        report = verify_output(output)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@main.command()
@click.argument("spec_url", metavar="SPEC")
def validate(spec_url: str) -> None:
    """Check a job spec (YAML or JSON) without running it: every problem, with its field."""
    from jobs.plan import input_problems
    from jobs.spec import load_spec

    try:
        spec = load_spec(spec_url)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    problems = input_problems(spec)
    if problems:
        lines = [f"spec {spec_url!r}: {len(problems)} input(s) cannot be used:", *(f"  {p}" for p in problems)]
        raise click.UsageError("\n".join(lines))
    shots = f"{len(spec.shots)} shots" + (f" and a sequence ({spec.sequence.frames})" if spec.sequence else "")
    click.echo(f"spec {spec_url} is valid: episode {spec.episode}, {shots}, {len(spec.keyframes)} keyframes")


@main.command()
@click.argument("spec_url", metavar="SPEC")
@ray_address_option
@click.option("--dry-run", is_flag=True, help="Print the plan (shots, frames, keyframes and why) and stop.")
@click.option("--resume/--no-resume", default=True, help="Skip shots already complete for the same inputs.")
@click.option("--cpu-workers", type=click.IntRange(1), default=1, help="Workers sharing the CPUs when there is no GPU.")
def run(spec_url: str, address: str | None, dry_run: bool, resume: bool, cpu_workers: int) -> None:
    """Color an episode described by a job spec (YAML or JSON); exits 1 naming the shots that failed."""
    from jobs.episode import run_episode
    from jobs.plan import plan_episode
    from jobs.spec import load_spec

    try:
        plan = plan_episode(load_spec(spec_url))
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    click.echo(plan.describe())
    if dry_run:
        return
    try:
        episode = run_episode(plan, address=address, resume=resume, cpu_workers=cpu_workers)
    except NotRecorded as failure:
        not_recorded(failure)
    click.echo(episode.summary())
    if episode.failed:
        click.echo(f"failed shots: {', '.join(r.shot for r in episode.failed)}", err=True)
    for message in episode.unrecorded:
        click.echo(f"Error: {message}; run the same command again once there is room: the shot's frames that no table "
                   "records are colored again", err=True)  # fmt: skip
    if episode.failed or episode.unrecorded:
        sys.exit(1)


@main.command()
@click.argument("queue", metavar="QUEUE_URL")
@ray_address_option
def nightly(queue: str, address: str | None) -> None:
    """Run every spec in the queue folder that is not complete yet, under the queue's lock; write a report.

    Exits 0 when everything succeeded (or another nightly run holds the lock: nothing is done twice), 1 when a
    spec was invalid or a shot failed.
    """
    from jobs.nightly import LockHeld, run_nightly

    try:
        runs, summary = run_nightly(queue, address=address)
    except LockHeld as held:
        click.echo(f"nothing to do: {held}")
        return
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    except NotRecorded as failure:
        not_recorded(failure)
    click.echo(summary)
    if any(run.failed for run in runs):
        sys.exit(1)


# Cluster runs as Ray Jobs. RAY_API_SERVER_ADDRESS is Ray's own name for the job API address (`ray job submit`
# reads it and `ray start` prints it); RAY_ADDRESS above is the GCS address a driver joins, a different port.
JOBS_ADDRESS_ENVVAR = "RAY_API_SERVER_ADDRESS"

jobs_address_option = click.option(
    "--address",
    required=True,
    envvar=JOBS_ADDRESS_ENVVAR,
    show_envvar=True,
    metavar="URL",
    help="The Ray head's job API (its dashboard), e.g. http://HEAD:8265.",
)


@contextmanager
def cluster_errors() -> Iterator[None]:
    """An unknown id, a bad or unreachable address and a refused token are usage errors (exit 2)."""
    try:
        yield
    except (ValueError, ConnectionError, PermissionError) as error:
        raise click.UsageError(str(error)) from error
    except RuntimeError as error:
        raise click.ClickException(str(error)) from error


@main.command(name="submit")
@click.argument("spec", metavar="SPEC")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- RUN_OPTIONS...]")
@jobs_address_option
@click.option(
    "--id",
    "submission_id",
    default=None,
    help="Submission id, the idempotency key: an id the cluster already has is not run again. "
    "Default: inkpaint-<spec name>-<UTC time>-<random>.",
)
def submit_command(spec: str, run_args: tuple[str, ...], address: str, submission_id: str | None) -> None:
    """Run `inkpaint run SPEC` on a Ray cluster as a Ray Job, uploading this project folder (without .git,
    outputs, tests and training logs; with the shipped weights).

    SPEC is a file inside this project folder or a URL the cluster can read. Options after `--` go to
    `inkpaint run`, e.g. `inkpaint submit episode.yaml --id ep12 -- --no-resume`. Prints the id and whether it was
    newly submitted; exits 0 in both cases. A cluster with token authentication needs RAY_AUTH_MODE=token and its
    token (RAY_AUTH_TOKEN or ~/.ray/auth_token) here too.
    """
    from jobs.submit import submit_run

    with cluster_errors():
        outcome = submit_run(spec, address, submission_id, list(run_args))
    click.echo(outcome.summary())
    click.echo(f"follow it with: inkpaint status {outcome.submission_id} / inkpaint logs {outcome.submission_id}")


@main.command(name="status")
@click.argument("submission_id", metavar="ID")
@jobs_address_option
@click.option("--wait", is_flag=True, help="Wait until the job has ended, then exit with its outcome.")
def status_command(submission_id: str, address: str, wait: bool) -> None:
    """Print a submitted job's status, exit code, times and message.

    Exits 0 whenever the status could be read, whatever the job's state; with --wait, 0 only if the job SUCCEEDED
    and 1 if it FAILED or was STOPPED. An unknown ID or address exits 2.
    """
    from jobs.submit import job_status, wait_for_job

    with cluster_errors():
        report = wait_for_job(address, submission_id) if wait else job_status(address, submission_id)
    click.echo(report.summary())
    if wait and report.status != "SUCCEEDED":
        sys.exit(1)


@main.command(name="logs")
@click.argument("submission_id", metavar="ID")
@jobs_address_option
def logs_command(submission_id: str, address: str) -> None:
    """Print everything a submitted job has printed so far."""
    from jobs.submit import job_logs

    with cluster_errors():
        text = job_logs(address, submission_id)
    click.echo(text, nl=not text.endswith("\n"))


@main.command(name="stop")
@click.argument("submission_id", metavar="ID")
@jobs_address_option
def stop_command(submission_id: str, address: str) -> None:
    """Stop a submitted job (SIGTERM, then SIGKILL); exits 0 also when it had already ended."""
    from jobs.submit import job_status, stop_job

    with cluster_errors():
        if stop_job(address, submission_id):
            click.echo(f"stopping {submission_id}")
            return
        report = job_status(address, submission_id)
    click.echo(f"{submission_id} is not running ({report.status}); nothing to stop")


def colorize_shot() -> None:
    """Entry point of the `colorize-shot` console script: the same command as `inkpaint shot`."""
    setup_logging(verbose=False)
    shot.main(args=sys.argv[1:], prog_name="colorize-shot")


if __name__ == "__main__":
    main()
