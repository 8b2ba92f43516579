"""Soak: a long episode through 2 CPU workers while workers are killed, then count what was lost or doubled.

    python benchmarks/soak.py                      # 50 shots x 40 frames, about 6-10 minutes on 2 CPU cores
    python benchmarks/soak.py --shots 10 --frames 20 --kill-every 3

The bundled sample's 12 line-art frames, scaled to --size, make --shots shots of --frames frames each (one episode
spec, one keyframe). `run_episode` colors them on `--workers` CPU ShotWorker actors (a local Ray); a killer thread
SIGKILLs one ShotWorker process each time --kill-every more shots have finished, so workers die mid-shot all night
long and Ray restarts them. Reported afterwards: frames planned, present once, missing ("lost"), extra files or
repeated table rows ("doubled"), shots retried (worker deaths the runner saw), kills, and each worker's resident
memory when first and last seen (VmRSS from /proc, sampled twice a second; a restarted worker is a new process).
Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.episode import run_episode  # noqa: E402
from jobs.manifest import FRAME_TABLE_NAME, read_records, results_table  # noqa: E402
from jobs.plan import plan_episode  # noqa: E402
from jobs.spec import load_spec  # noqa: E402
from pipeline.shot import FrameRecord  # noqa: E402

SAMPLE = ROOT / "samples" / "wave"


def shot_workers() -> dict[int, int]:
    """pid -> resident memory (kB) of every process Ray titled as a ShotWorker actor."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "cmdline").read_bytes().startswith(b"ray::ShotWorker"):
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        found[int(entry.name)] = rss
    return found


def make_episode(root: Path, shots: int, frames: int, size: tuple[int, int]) -> Path:
    sources = [Image.open(SAMPLE / "frames" / f"frame{i}.png").convert("L").resize(size) for i in range(1, 13)]
    for shot in range(shots):
        folder = root / "lines" / f"s{shot:03d}"
        folder.mkdir(parents=True)
        for index in range(frames):
            sources[(index + shot) % 12].save(folder / f"s{shot:03d}_{index + 1:04d}.png", compress_level=1)
    Image.open(SAMPLE / "key.png").convert("RGB").resize(size).save(root / "key.png")
    spec = {
        "episode": "soak",
        "output": str(root / "out"),
        "shots": [{"name": f"s{shot:03d}", "frames": str(root / "lines" / f"s{shot:03d}")} for shot in range(shots)],
        "keyframes": [{"name": "key", "image": str(root / "key.png")}],
        "video": None,
        "resolution": 128,
    }
    path = root / "soak.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


class Killer(threading.Thread):
    """SIGKILLs one ShotWorker each time `every` more shots have finished (counted from the results folder)."""

    def __init__(self, output: Path, every: int) -> None:
        super().__init__(daemon=True)
        self.output, self.every = output, every
        self.kills = 0
        self.first_seen: dict[int, int] = {}  # pid -> RSS (kB) when first seen
        self.last_seen: dict[int, int] = {}  # pid -> RSS (kB) when last seen alive
        self.by_shots: dict[int, dict[int, int]] = {}  # shots finished (every 10) -> pid -> RSS (kB)
        self.stop = threading.Event()

    def run(self) -> None:
        next_at = self.every
        while not self.stop.wait(0.5):
            live = shot_workers()
            for pid, rss in live.items():
                self.first_seen.setdefault(pid, rss)
                self.last_seen[pid] = rss
            results = self.output / "inkpaint-results"
            done = len(list(results.glob("*.parquet"))) if results.exists() else 0
            milestone = done - done % 10
            if milestone and milestone not in self.by_shots and live:
                self.by_shots[milestone] = live
            if done >= next_at:
                workers = sorted(shot_workers())
                if workers:
                    os.kill(workers[self.kills % len(workers)], signal.SIGKILL)
                    self.kills += 1
                next_at += self.every


class DeathCounter(logging.Handler):
    """Counts the runner's 'worker died during shot' warnings: shots retried."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retried = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "worker died during shot" in record.getMessage():
            self.retried += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="128x96", help="frame size WxH")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=int, default=5, help="kill a worker after this many more shots finish")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    root = Path(tempfile.mkdtemp(prefix="inkpaint-soak-"))
    spec = make_episode(root, args.shots, args.frames, size)
    output = root / "out"
    deaths = DeathCounter()
    logging.getLogger("jobs.runner").addHandler(deaths)
    killer = Killer(output, args.kill_every)
    plan = plan_episode(load_spec(str(spec)))
    started = time.perf_counter()
    killer.start()
    # Enough restarts for a whole night of kills: Ray restarts an actor at most retries + 1 times.
    episode = run_episode(plan, cpu_workers=args.workers, retries=args.shots)
    killer.stop.set()
    killer.join()
    wall = time.perf_counter() - started
    planned = args.shots * args.frames
    present = lost = doubled = 0
    for shot in plan.shots:
        folder = output / shot.name
        files = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        pngs = [name for name in files if name.endswith(".png") and not name.startswith(".")]
        doubled += len([name for name in files if name.startswith(".")])  # temporary leftovers
        table = folder / FRAME_TABLE_NAME
        records = read_records(str(table), FrameRecord) if table.exists() else []
        doubled += len(records) - len({record.frame for record in records})
        expected = {f"{shot.name}_{i + 1:04d}.png" for i in range(args.frames)}
        present += len(expected & set(pngs))
        lost += len(expected - set(pngs))
        doubled += len(set(pngs) - expected)
    statuses = results_table(str(output)).column("status").to_pylist()
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {os.cpu_count()} CPUs; {args.workers} CPU workers; frames {args.size} at 128")
    print(f"wall {wall:.0f} s; shots ok {statuses.count('ok')} of {args.shots}; {len(episode.failed)} failed")
    print(f"frames planned {planned}, present once {present}, lost {lost}, doubled {doubled}")
    print(f"workers killed {killer.kills}; shots retried {deaths.retried}")
    for done, seen in sorted(killer.by_shots.items()):
        print(f"after {done} shots, RSS of the live workers (MB): {[round(rss / 1024) for rss in seen.values()]}")
    print("worker processes (a restarted worker is a new one), RSS in MB when first and last seen:")
    for pid, rss in sorted(killer.first_seen.items()):
        print(f"  pid {pid}: {rss / 1024:.0f} -> {killer.last_seen[pid] / 1024:.0f}")


if __name__ == "__main__":
    main()
