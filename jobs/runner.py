"""Runs shots on Ray: one ShotWorker actor per GPU of the cluster (one CPU worker without GPUs), retries, progress.

The only module that imports ray. A ShotWorker loads the colorizer once and colors shots with
pipeline.colorize.ShotColorizer; its method streams progress events and then the ShotResult back to the driver.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ray
from ray import ObjectRefGenerator
from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

from pipeline.shot import Shot, ShotOptions, ShotResult

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.5  # seconds between progress events a worker streams to the driver
RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"  # its "Token authentication is ..."


@dataclass(frozen=True)
class RunSettings:
    """Where and how shots run.

    Args:
        weights: colorizer weights (path or URL) every worker loads.
        address: a Ray cluster's address, or None to start a local Ray for the run.
        retries: how many times a shot is retried after its worker died.
        cpu_threads: torch threads of a CPU worker (None: its node's cores shared among the CPU workers).
        cpu_workers: CPU workers to start when the cluster has no GPU.
    """

    weights: str
    address: str | None = None
    retries: int = 2
    cpu_threads: int | None = None
    cpu_workers: int = 1


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Join `address`, or start a quiet local Ray (temp dir under the system temp, no dashboard) and stop it after.

    A local Ray's temp dir (its logs and sockets) is removed when the run ends, unless an error ended it: then it is
    kept, with a warning that names it. An interrupt (Ctrl-C) or an exit is not an error."""
    if ray.is_initialized():
        yield
        return
    common = {"logging_level": logging.WARNING, "log_to_driver": False}
    temp_dir = None
    if address:
        log.debug("joining the Ray cluster at %s", address)
        ray.init(address=address, **common)
    else:
        # Ray's socket paths must stay short: a temp dir directly under the system temp.
        temp_dir = tempfile.mkdtemp(prefix="inkpaint-ray-")
        # A new local Ray enables token authentication when RAY_AUTH_MODE is unset, and warns on every start that it
        # did (advice for a cluster that others may reach): the default is kept, and the warning dropped.
        logging.getLogger(RAY_AUTH_LOGGER).setLevel(logging.ERROR)
        log.debug("starting a local Ray (%d CPUs, temp dir %s)", os.cpu_count(), temp_dir)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _temp_dir=temp_dir, **common)
    failed = False
    try:
        yield
    except Exception:
        failed = True
        raise
    finally:
        ray.shutdown()
        if temp_dir is not None and failed:
            log.warning("the local Ray's logs are kept in %s", temp_dir)
        elif temp_dir is not None:  # a nightly run must not leave its Ray's logs and sockets behind every night
            shutil.rmtree(temp_dir, ignore_errors=True)


class ShotWorker:
    """Holds a loaded colorizer on one GPU (or the CPU) and colors shots sent to it.

    Args:
        weights: colorizer weights to load once.
        cpu_threads: torch threads when running on the CPU.
        precision: the model's arithmetic for every shot (`ShotOptions.precision`).
        compile: whether the model runs compiled for every shot (`ShotOptions.compile`).
    """

    def __init__(self, weights: str, cpu_threads: int = 1, precision: str = "auto", compile: bool = False) -> None:
        import torch

        from pipeline.colorize import ShotColorizer

        self.gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        use_cuda = bool(self.gpu_ids) and torch.cuda.is_available()
        if not use_cuda:
            torch.set_num_threads(cpu_threads)
        self.colorizer = ShotColorizer.from_weights(weights, "cuda" if use_cuda else "cpu", precision, compile)
        self.node = ray.get_runtime_context().get_node_id()
        # What a person reads in the report: the machine's name (the node id kept after it) and the GPU's model.
        self.worker = f"{socket.gethostname()} (node {self.node})"
        self.gpu = ",".join(self.gpu_ids) + (f" {torch.cuda.get_device_name()}" if use_cuda else "")

    def describe(self) -> dict[str, str]:
        return {"node": self.node, "gpu": ",".join(self.gpu_ids), "device": str(self.colorizer.device)}

    def colorize(self, shot: Shot, options: ShotOptions) -> Iterator[tuple[str, object]]:
        """Stream ("progress", frames done) events, then ("result", ShotResult)."""
        events: queue.Queue[tuple[str, object]] = queue.Queue()

        def work() -> None:
            try:
                result = self.colorizer.run(shot, options, progress=lambda done: events.put(("progress", done)))
                result.worker, result.gpu = self.worker, self.gpu
                events.put(("result", result))
            except Exception as error:  # a programming error: report it as the shot's failure
                events.put(("result", ShotResult(shot=shot.name, output=shot.output, error=repr(error))))

        threading.Thread(target=work, name=f"shot-{shot.name}", daemon=True).start()
        yield "progress", 0  # the shot has started: the driver's rate and ETA count from here
        last_sent = 0.0
        while True:
            kind, value = events.get()
            if kind == "progress":
                # Each yield is a Ray object: send progress at most a few times a second, not once per frame.
                if time.monotonic() - last_sent < PROGRESS_INTERVAL:
                    continue
                last_sent = time.monotonic()
                yield kind, value
                continue
            result = value
            yield "progress", result.frames
            yield kind, result
            return


def worker_resources(cpu_workers: int = 1) -> tuple[int, dict[str, float]]:
    """How many workers to start and what each asks for, decided from the cluster as it is now.

    An actor that asks for a GPU the cluster lacks waits forever, so GPUs are only requested when present. CPU
    workers together leave half the CPUs (in Ray's accounting) as headroom for Ray's own tasks.
    """
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus > 0:
        return gpus, {"num_gpus": 1, "num_cpus": 1}
    share = resources.get("CPU", 1) / 2 / cpu_workers
    return cpu_workers, {"num_gpus": 0, "num_cpus": min(1.0, max(share, 0.25))}


Progress = Callable[[str, int], None]


def run_shots(
    shots: list[Shot],
    options: ShotOptions,
    settings: RunSettings,
    progress: Progress | None = None,
    on_result: Callable[[ShotResult], None] | None = None,
) -> list[ShotResult]:
    """Color shots on the workers, handed out in the given order as workers become free; one ShotResult per shot,
    in input order. `on_result` sees each shot's final result as soon as it is known (to record it at once).

    A shot whose worker dies is retried on the restarted worker up to `settings.retries` times.
    """
    with ray_session(settings.address):
        count, resources = worker_resources(settings.cpu_workers)
        count = max(1, min(count, len(shots)))
        threads = settings.cpu_threads or max(1, (os.cpu_count() or 1) // settings.cpu_workers)
        actor_class = ray.remote(ShotWorker).options(max_restarts=settings.retries + 1, **resources)
        # Every shot of a run has the same options: the workers' colorizers are set up for their precision and compile.
        workers = [actor_class.remote(settings.weights, threads, options.precision, options.compile)
                   for _ in range(count)]  # fmt: skip
        log.debug("%d workers (%s each) for %d shots", count, resources, len(shots))
        results: dict[str, ShotResult] = {}
        attempts = dict.fromkeys((s.name for s in shots), 0)
        waiting = list(shots)
        running: dict[ObjectRefGenerator, tuple[Shot, object]] = {}  # generator -> (shot, worker)
        restarting: dict[ray.ObjectRef, object] = {}  # readiness probe -> a worker Ray is restarting
        idle = list(workers)
        alive = len(workers)

        def finish(shot: Shot, result: ShotResult) -> None:
            results[shot.name] = result
            if on_result is not None:
                on_result(result)

        while running or (waiting and alive):
            while waiting and idle:
                shot, worker = waiting.pop(0), idle.pop(0)
                attempts[shot.name] += 1
                log.debug("shot %s: started on worker %d (attempt %d)", shot.name, workers.index(worker) + 1,
                          attempts[shot.name])  # fmt: skip
                running[worker.colorize.remote(shot, options)] = (shot, worker)
            ready, _ = ray.wait([*running, *restarting], num_returns=1, timeout=1.0)
            for ref in ready:
                if ref in restarting:
                    worker = restarting.pop(ref)
                    state = probe(ref)
                    if state == "ready":
                        idle.append(worker)
                    elif state == "restarting":
                        time.sleep(0.5)
                        restarting[worker.describe.remote()] = worker
                    else:
                        alive -= 1
                    continue
                shot, worker = running.pop(ref)
                finished = drain(ref, shot, results, progress)
                if finished is None:
                    running[ref] = (shot, worker)
                    continue
                if finished == "done":
                    idle.append(worker)
                    log.debug("shot %s: ended, %s", shot.name, results[shot.name].status)
                    finish(shot, results[shot.name])
                    continue
                # The worker died: Ray restarts it (reloading the weights); it takes work again once it answers.
                restarting[worker.describe.remote()] = worker
                if attempts[shot.name] <= settings.retries:
                    log.warning("worker died during shot %s; retrying (attempt %d)", shot.name,
                                attempts[shot.name] + 1)  # fmt: skip
                    waiting.insert(0, shot)
                else:
                    error = f"worker died {attempts[shot.name]} times while coloring this shot"
                    finish(shot, ShotResult(shot=shot.name, output=shot.output, video=shot.video, error=error))
        for shot in waiting:  # every worker is gone for good
            error = "no worker left: every worker died more often than it may be restarted"
            finish(shot, ShotResult(shot=shot.name, output=shot.output, video=shot.video, error=error))
        for worker in workers:
            ray.kill(worker)
        return [results[s.name] for s in shots]


def probe(ref: ray.ObjectRef) -> str:
    """A restarted worker's readiness: "ready", "restarting" (ask again soon) or "gone" (out of restarts)."""
    try:
        ray.get(ref)
        return "ready"
    except ActorUnavailableError:
        return "restarting"
    except RayActorError as error:
        log.warning("a worker is gone for good: %s", error)
        return "gone"


def drain(
    generator: ObjectRefGenerator, shot: Shot, results: dict[str, ShotResult], progress: Progress | None
) -> str | None:
    """Consume what a worker's stream has ready: None while running, "done" with a result, "died" if it was lost."""
    try:
        while generator.next_ready():
            kind, value = ray.get(next(generator))
            if kind == "progress":
                if progress is not None:
                    progress(shot.name, int(value))
            else:
                results[shot.name] = value
                return "done"
        if generator.is_finished():
            next(generator)  # raises the stream's end or the error that ended it
        return None
    except StopIteration:
        return "done" if shot.name in results else "died"
    except (RayActorError, RayTaskError) as error:
        log.warning("shot %s: %s", shot.name, error)
        return "died"
