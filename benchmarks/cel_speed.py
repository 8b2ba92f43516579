"""What each way of writing a frame costs: the files a finished 1080p frame becomes (`cel_images`) and their
encoding, per frame, on one thread.

    python benchmarks/cel_speed.py [--rounds 7]        # about half a minute on 2 CPU cores

The frame is the bundled sample's frame 7, colored at 1440x1080 with the default options (carried colors, flat
fill). Each row times `cel_images` for a `CelFormat` and then `encode_frame` of every image it gives (the frame, and
the two layers with `--layers`): the work a writer thread does beyond the default white-paper PNG. Printed: the
median over rounds, each row's time as a multiple of the default's, and the bytes a frame's cel takes in memory
while a shot over a `--background`, colored out of frame order, waits to encode its video (`HeldVideoCels`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_speed import header_lines

from pipeline.cel import Background, Cel, CelFormat, cel_images
from pipeline.colorize import ShotColorizer
from pipeline.finishing import FrameEmitter, HeldVideoCels, PendingFrame
from pipeline.outputs import encode_frame
from pipeline.shot import Shot, ShotOptions

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "wave"
FORMS = {
    "white PNG, 8 bits (default)": CelFormat(),
    "transparent PNG": CelFormat(paper="transparent"),
    "transparent PNG + layers": CelFormat(paper="transparent", layers=True),
    "transparent PNG, 16 bits": CelFormat(paper="transparent", depth="16"),
    "transparent TIFF, 16 bits": CelFormat(paper="transparent", depth="16", file_format="tiff"),
    "transparent EXR": CelFormat(paper="transparent", file_format="exr"),
}


def sample_cel(size: tuple[int, int]) -> Cel:
    """The sample's frame 7 at `size`, colored with the default options: the cel the shot's emitter hands on."""
    folder = Path(tempfile.mkdtemp())
    (folder / "frames").mkdir()
    for path in sorted((SAMPLE / "frames").glob("*.png")):
        Image.open(path).convert("L").resize(size, Image.LANCZOS).save(folder / "frames" / path.name)
    Image.open(SAMPLE / "key.png").convert("RGB").resize(size, Image.LANCZOS).save(folder / "key.png")
    cels: dict[int, Cel] = {}
    emit = FrameEmitter.emit

    def keep(emitter: FrameEmitter, pending: PendingFrame) -> None:
        if pending.cel is not None:
            cels[pending.index] = pending.cel
        emit(emitter, pending)

    FrameEmitter.emit = keep
    try:
        shot = Shot("sample", str(folder / "frames"), str(folder / "key.png"), str(folder / "out"))
        ShotColorizer.from_weights().run(shot, ShotOptions())
    finally:
        FrameEmitter.emit = emit
    return cels[6]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cel = sample_cel((1440, 1080))
    times: dict[str, list[float]] = {label: [] for label in FORMS}
    sizes: dict[str, int] = {}
    for _ in range(args.rounds):
        for label, form in FORMS.items():
            started = time.perf_counter()
            images = cel_images(cel, form)
            data = [encode_frame(image, f"frame{form.extension}") for image in images.values()]
            times[label].append(time.perf_counter() - started)
            sizes[label] = sum(len(item) for item in data)
    print("\n".join(header_lines()))
    print(f"\n1440x1080 frame, medians of {args.rounds} rounds, one thread\n")
    print("| files written | ms per frame | x default | bytes |\n|---|---:|---:|---:|")
    base = statistics.median(times[next(iter(FORMS))])
    for label in FORMS:
        median = statistics.median(times[label])
        print(f"| {label} | {median * 1000:.1f} | {median / base:.2f} | {sizes[label]} |")
    held = HeldVideoCels(Background(cel.finished))
    held.keep(0, cel)
    print(f"\na frame's video cel held in memory for a shot over a background colored out of order: "
          f"{held.held_bytes} bytes")  # fmt: skip


if __name__ == "__main__":
    main()
