"""A run's ``report.html``: one self-contained page (no network, no scripts) to read a run offline.

It shows the loss curves per term (inline SVG drawn here from ``metrics.jsonl``), the metric table
(``eval.json``; a judge's ``ceiling`` beside its scores), the pictures in ``images/`` (embedded as
base64 PNG), the swap's sounds there (WAV players, with ``sounds.txt``), the resolved recipe and the
environment. ``evaluate`` writes it after the metrics;
``python -m disentangle.report RUN_DIR`` rewrites it from what the run directory holds.
"""

from __future__ import annotations

import base64
import html
import json
import math
import sys
from pathlib import Path
from typing import Any

from disentangle.io import atomic_write_text

#: How many points a curve keeps at most (evenly thinned; the last point is always kept).
MAX_POINTS = 600
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def read_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    """``{term: [(step, value), ...]}`` from a metrics.jsonl (unreadable lines are skipped)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    if not path.is_file():
        return curves
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = row.get("step")
        for key, value in row.items():
            if key in ("step", "epoch") or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            curves.setdefault(key, []).append((int(step), float(value)))
    return curves


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    return [points[int(i * stride)] for i in range(MAX_POINTS)] + [points[-1]]


def svg_curve(name: str, points: list[tuple[int, float]], width: int = 360, height: int = 200) -> str:
    """One loss term against the step as an inline SVG (axes with min/max labels)."""
    points = _thin(points)
    left, right, top, bottom = 56, 8, 22, 24
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys)
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    sx = lambda x: left + (x - x0) / (x1 - x0) * (width - left - right)  # noqa: E731
    sy = lambda y: top + (y1 - y) / (y1 - y0) * (height - top - bottom)  # noqa: E731
    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(points))
    color = COLORS[sum(map(ord, name)) % len(COLORS)]
    e = html.escape
    return (
        f'<svg class="curve" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(name)}">'
        f'<text x="{left}" y="14" class="title">{e(name)} (last {ys[-1]:.4g})</text>'
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" class="frame"/>'
        f'<text x="{left - 4}" y="{top + 10}" class="tick" text-anchor="end">{y1:.3g}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" class="tick" text-anchor="end">{y0:.3g}</text>'
        f'<text x="{left}" y="{height - 8}" class="tick">{x0}</text>'
        f'<text x="{width - right}" y="{height - 8}" class="tick" text-anchor="end">step {x1}</text>'
        f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5"/></svg>'
    )


def metric_rows(results: dict[str, dict[str, float]]) -> list[tuple[str, str, str, str]]:
    """Rows ``(metric, key, value, ceiling)``: ``…/mean`` and ``…/std`` join as ``mean ± std``; a
    judge's ``<keep>/<factor>/ceiling`` goes beside that factor's Acc."""
    rows = []
    for metric, values in results.items():
        done = set()
        for key, value in values.items():
            if key in done or key.endswith("/ceiling"):
                continue
            base, _, last = key.rpartition("/")
            ceiling = ""
            if last == "mean" and f"{base}/std" in values:
                text = f"{value:.4g} ± {values[base + '/std']:.2g}"
                done.add(f"{base}/std")
                shown = base
                group = base.rsplit("/", 1)[0]
                if base.endswith("/Acc") and f"{group}/ceiling" in values:
                    ceiling = f"{values[group + '/ceiling']:.4g}"
            else:
                text, shown = f"{value:.4g}", key
            rows.append((metric, shown, text, ceiling))
    return rows


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"/>'
            f'<figcaption>{html.escape(path.stem)}</figcaption></figure>')


def _sound(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'
            f'<figcaption>{html.escape(path.stem)}</figcaption></figure>')


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
.curves{display:flex;flex-wrap:wrap;gap:10px}
svg.curve .title{font-size:12px;font-weight:600}svg.curve .tick{font-size:10px;fill:#555}
svg.curve .frame{fill:#fafafa;stroke:#ccc}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:6px}img{image-rendering:pixelated;max-width:100%;border:1px solid #ddd}
figcaption{font-size:12px;color:#555}pre{background:#f6f6f6;padding:10px;font-size:12px;overflow:auto}
"""


def render(run_dir: str | Path) -> str:
    """The report of ``run_dir`` as one HTML string (nothing loaded from outside it)."""
    run_dir = Path(run_dir)
    e, name = html.escape, run_dir.resolve().name
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(name)} · disentangle</title>"
             f"<style>{STYLE}</style></head><body><h1>Run {e(name)}</h1>"]
    curves = read_log(run_dir / "metrics.jsonl")
    parts.append("<h2>Loss terms</h2>")
    parts.append("<div class='curves'>" + "".join(svg_curve(k, v) for k, v in curves.items()) + "</div>"
                 if curves else "<p>No metrics.jsonl yet.</p>")
    parts.append("<h2>Metrics</h2>")
    results = _read_json(run_dir / "eval.json")
    if results:
        rows = "".join(f"<tr><td>{e(m)}</td><td>{e(k)}</td><td class='num'>{e(v)}</td><td class='num'>{e(c)}</td></tr>"
                       for m, k, v, c in metric_rows(results))
        parts.append("<table><tr><th>metric</th><th>score</th><th>value</th><th>judge ceiling (real data)</th></tr>"
                     f"{rows}</table>")
    else:
        parts.append("<p>No eval.json.</p>")
    images = sorted((run_dir / "images").glob("*.png"))
    if images:
        parts.append("<h2>Pictures</h2>" + "".join(_image(p) for p in images))
    sounds = sorted((run_dir / "images").glob("*.wav"))
    if sounds:
        index = run_dir / "images" / "sounds.txt"
        about = f"<pre>{e(index.read_text())}</pre>" if index.is_file() else ""
        parts.append("<h2>Sounds</h2>" + about + "".join(_sound(p) for p in sounds))
    for title, name in (("Recipe (resolved)", "recipe.toml"), ("Environment", "environment.json")):
        path = run_dir / name
        if path.is_file():
            parts.append(f"<h2>{title}</h2><pre>{e(path.read_text())}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.html`` into ``run_dir`` (atomically) and return its path."""
    path = Path(run_dir) / "report.html"
    atomic_write_text(render(run_dir), path)
    return path


if __name__ == "__main__":  # pragma: no cover
    for arg in sys.argv[1:]:
        print(write_report(arg))
