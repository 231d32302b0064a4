"""Judge classifiers: what scores generated sequences in the paper's protocol (Acc, IS, H(y|x), H(y)).

A judge is a small sequence classifier trained by the project on a dataset's *real* training
sequences and their ground-truth labels, one head per labelled factor (static and dynamic). It is
saved with its held-out accuracy on the real test split (the ceiling any generated sequence can
reach), the dataset's fingerprint and a fingerprint of that test split (its sequences, labels and
factors). Evaluation takes a judge whose data fingerprint matches, or, failing that, whose test
split is the very one of the data evaluated (a judge trained on more generated training sequences
of the same data, e.g. ``--set data.num_train=20000`` for SMMNIST); it refuses any other. Build one
with::

    disentangle judge train recipes/quickstart.toml --out judges/moving-shapes.pt

Files hold only tensors, numbers and strings and are loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import numpy as np
import torch
import typer
from torch import nn

import disentangle

#: Bump when the network or the file layout changes (older files are refused with a hint).
FORMAT = 2


class JudgeNet(nn.Module):
    """Frame encoder (a small conv net for ``(C, H, W)`` frames, an MLP otherwise) over each frame and
    its step to the next -> bidirectional GRU over time -> one linear head per factor.

    The conv net has ``pools`` blocks ``conv 3x3 -> [batch norm] -> ReLU -> max-pool 2`` (widths
    ``width``, then ``2 * width``), a last ``conv 3x3 -> [batch norm] -> ReLU`` (``2 * width``, doubled
    for each block past two), and a max-pool to 4x4. More blocks see larger objects whole (a 28-pixel
    digit needs three); ``norm = "batch"`` trains faster."""

    def __init__(self, feature_shape: Sequence[int], factors: dict[str, int], width: int = 32, hidden: int = 128,
                 norm: str = "none", pools: int = 2):
        super().__init__()
        self.feature_shape, self.factors = tuple(feature_shape), dict(factors)
        # Each frame is seen together with its difference to the next one (zero for the last), so the
        # motion between frames reaches the recurrent layer at full resolution.
        if len(self.feature_shape) == 3:
            def block(c_in: int, c_out: int) -> list[nn.Module]:
                bn = [nn.BatchNorm2d(c_out)] if norm == "batch" else []
                return [nn.Conv2d(c_in, c_out, 3, 1, 1), *bn, nn.ReLU()]

            # Full-resolution first layer and max pooling: small shapes keep their outline.
            layers: list[nn.Module] = []
            c_in = 2 * self.feature_shape[0]
            for i in range(pools):
                c_out = width * min(2 ** i, 2)
                layers += [*block(c_in, c_out), nn.MaxPool2d(2)]
                c_in = c_out
            last = 2 * width * 2 ** max(pools - 2, 0)
            self.frame = nn.Sequential(*layers, *block(c_in, last), nn.AdaptiveMaxPool2d(4), nn.Flatten(),
                                       nn.Linear(last * 16, hidden), nn.ReLU())
        else:
            size = 2 * int(np.prod(self.feature_shape))
            self.frame = nn.Sequential(nn.Flatten(), nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.rnn = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.heads = nn.ModuleDict({name: nn.Linear(5 * hidden, n) for name, n in self.factors.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits ``{factor: (B, classes)}`` for sequences ``(B, T, *feature_shape)``."""
        b, t = x.shape[:2]
        step = torch.cat([x[:, 1:] - x[:, :-1], torch.zeros_like(x[:, :1])], dim=1)
        x = torch.cat([x, step], dim=2)
        h = self.frame(x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1)
        seq, last = self.rnn(h)
        # The frames' mean feature is a direct path for the factors every frame shows (shape, colour).
        feats = torch.cat([h.mean(1), seq.mean(1), last.transpose(0, 1).reshape(b, -1)], dim=1)
        return {name: head(feats) for name, head in self.heads.items()}


class Judge:
    """A trained judge: its network (in eval mode) and what it was trained on."""

    def __init__(self, net: JudgeNet, info: dict[str, Any]):
        self.net, self.info = net.eval(), info

    @property
    def test_accuracy(self) -> dict[str, float]:
        """Held-out accuracy per factor on the real test split (the ceiling for generated data)."""
        return dict(self.info["test_accuracy"])

    def to(self, device: torch.device | str) -> "Judge":
        self.net.to(device)
        return self

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Class probabilities ``{factor: (B, classes)}`` (float32)."""
        return {k: v.float().softmax(-1) for k, v in self.net(x.float()).items()}


def factors_of(spec: disentangle.DataSpec) -> dict[str, int]:
    factors = {**spec.static_factors, **spec.dynamic_factors}
    if not factors:
        raise disentangle.DisentangleError("this dataset has no labelled factors: no judge can be trained on it",
                                           hint="judges need a dataset whose items carry ground-truth labels")
    return factors


def test_fingerprint(data: disentangle.SequenceData) -> str:
    """A digest of what a judge's ceiling is measured on: the labelled factors and every real test
    sequence and its labels, as a judge sees them (decoded items)."""
    h = hashlib.sha256(json.dumps(factors_of(data.spec), sort_keys=True).encode())
    split = data.split("test")
    h.update(str(len(split)).encode())
    for i in range(len(split)):
        item = split[i]
        h.update(np.ascontiguousarray(item["x"]).tobytes())  # a CPU tensor or an array alike
        h.update(json.dumps({k: int(v) for k, v in item["labels"].items()}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _loader(split: Any, batch_size: int, shuffle: bool, seed: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(split, batch_size=batch_size, shuffle=shuffle,
                                       generator=torch.Generator().manual_seed(seed),
                                       collate_fn=lambda items: {
                                           "x": torch.stack([it["x"] for it in items]),
                                           "labels": {k: torch.tensor([int(it["labels"][k]) for it in items])
                                                      for k in items[0]["labels"]}})


@torch.no_grad()
def accuracy(judge_net: JudgeNet, split: Any, device: torch.device, batch_size: int = 256,
             limit: int | None = None) -> dict[str, float]:
    """Accuracy per factor of ``judge_net`` on the (first ``limit`` items of a) real split."""
    judge_net.eval()
    if limit is not None and limit < len(split):
        split = torch.utils.data.Subset(split, range(limit))
    right: dict[str, int] = {}
    n = 0
    for batch in _loader(split, batch_size, False, 0):
        logits = judge_net(batch["x"].to(device))
        for k, v in logits.items():
            right[k] = right.get(k, 0) + int((v.argmax(-1).cpu() == batch["labels"][k]).sum())
        n += len(batch["x"])
    return {k: r / max(n, 1) for k, r in right.items()}


def train_judge(data: disentangle.SequenceData, *, epochs: int = 5, batch_size: int = 64, lr: float = 2e-3,
                seed: int = 0, device: torch.device | str = "cpu", width: int = 32, hidden: int = 128,
                norm: str = "none", pools: int = 2, dataset: str = "", log: Any = None) -> Judge:
    """Train a judge on ``data``'s real training split with its ground-truth labels and measure it on
    the real test split."""
    if norm not in ("none", "batch"):
        raise disentangle.DisentangleError(f"judge norm {norm!r}: expected \"none\" or \"batch\"",
                                           hint="--norm none or --norm batch")
    device = torch.device(device)
    factors = factors_of(data.spec)
    torch.manual_seed(seed)
    net = JudgeNet(data.spec.feature_shape, factors, width, hidden, norm, pools).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    train = data.split("train")
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    start = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        total, count = torch.zeros((), device=device), 0  # summed on the device: no wait per step
        for batch in _loader(train, batch_size, True, seed + epoch):
            logits = net(batch["x"].to(device))
            loss = sum(nn.functional.cross_entropy(v, batch["labels"][k].to(device)) for k, v in logits.items())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + loss.detach(), count + 1
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {float(total) / max(count, 1):.4f} "
                f"({time.perf_counter() - start:.0f} s)")
    info = {
        "format": FORMAT, "dataset": dataset, "fingerprint": data.fingerprint,
        "feature_shape": list(data.spec.feature_shape), "seq_len": int(data.spec.seq_len),
        "factors": factors, "static": list(data.spec.static_factors), "dynamic": list(data.spec.dynamic_factors),
        "width": width, "hidden": hidden, "norm": norm, "pools": pools, "epochs": epochs, "seed": seed,
        "train_sequences": len(train), "test_sequences": len(data.split("test")),
        "test_accuracy": accuracy(net, data.split("test"), device),
        "test_fingerprint": test_fingerprint(data),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    return Judge(net.cpu(), info)


def save_judge(judge: Judge, path: str | Path) -> None:
    state = {k: v.detach().cpu() for k, v in judge.net.state_dict().items()}
    disentangle.atomic_torch_save({"info": judge.info, "state_dict": state}, Path(path))


BUILD_HINT = "build one with `disentangle judge train RECIPE --out {path}` (RECIPE: the recipe whose [data] you evaluate)"


def load_judge(path: str | Path, data: disentangle.SequenceData | None = None) -> Judge:
    """Load a judge file (``weights_only=True``); with ``data``, refuse a judge trained on another
    version of the data (one whose test split differs: another training split of the same data,
    e.g. more generated sequences, is fine)."""
    path = Path(path)
    hint = BUILD_HINT.format(path=path)
    if not path.is_file():
        raise disentangle.DisentangleError(f"judge file {path} does not exist", hint=hint)
    blob = disentangle.safe_torch_load(path, "judge file", hint=hint)
    if not (isinstance(blob, dict) and isinstance(blob.get("info"), dict) and isinstance(blob.get("state_dict"), dict)):
        raise disentangle.DisentangleError(f"{path} is not a judge file (no info and state_dict in it)", hint=hint)
    info, state = blob["info"], blob["state_dict"]
    if info.get("format") != FORMAT:
        raise disentangle.DisentangleError(f"{path} was written in judge format {info.get('format')}, "
                                           f"this version reads {FORMAT}", hint=hint)
    if data is not None and info["fingerprint"] != data.fingerprint \
            and info.get("test_fingerprint") != test_fingerprint(data):
        raise disentangle.DisentangleError(
            f"judge {path} was trained on data {info['fingerprint']!r} (dataset {info.get('dataset') or '?'}), "
            f"but this run's data is {data.fingerprint!r} and its test split differs: its scores would mean "
            "nothing", hint=hint)
    net = JudgeNet(info["feature_shape"], info["factors"], info["width"], info["hidden"],
                   info.get("norm", "none"), info.get("pools", 2))  # files from before these options: their defaults
    net.load_state_dict(state)
    return Judge(net, info)


# ----- command line --------------------------------------------------------------------------------

def _data_from_argument(source: str, overrides: Sequence[str]) -> tuple[str, disentangle.SequenceData]:
    """A recipe TOML (its ``[data]``; ``--set`` keys are recipe keys) or a dataset name (``--set`` keys
    are that dataset's parameters)."""
    registry = disentangle.get_registry()
    if source.endswith(".toml") or Path(source).is_file():
        recipe = disentangle.load_recipe(source, overrides, registry)
        spec, seed = recipe.data, recipe.train.seed
        config, name = spec.config, spec.use
    else:
        name, seed = source, 0
        comp = registry.get("dataset", name)
        params: dict[str, Any] = {}
        for text in overrides:
            key, sep, _ = text.partition("=")
            if not sep:
                raise disentangle.DisentangleError(f"--set {text!r}: expected key=value", hint="e.g. --set resolution=16")
            params[key.strip()] = disentangle.parse_override(text)[1]  # read as a recipe's --set value is
        try:
            config = comp.config(**params)
        except (TypeError, ValueError) as exc:
            raise disentangle.DisentangleError(f"dataset {name}: {exc}", hint=f"disentangle describe {name}") from None
    comp = registry.get("dataset", name)
    ctx = disentangle.BuildContext(cache_dir=disentangle.default_cache_dir(), seed=seed)
    return name, comp.build(config, ctx)


@disentangle.hookimpl
def register_commands(cli):
    from rich.console import Console

    judge_app = typer.Typer(help="Judge classifiers for the Acc / IS / H(y|x) / H(y) metrics.", no_args_is_help=True)
    console = Console(stderr=True)

    @judge_app.command("train")
    def train_command(
        source: Annotated[str, typer.Argument(help="A recipe TOML (its [data] section) or a dataset name.")],
        out: Annotated[Path, typer.Option("--out", help="Where to write the judge (.pt).")] = Path("judge.pt"),
        set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Recipe key (or, with a dataset "
                                                          "name, dataset parameter) override, repeatable.")] = None,
        epochs: Annotated[int, typer.Option(min=1, help="Passes over the training split.")] = 5,
        batch_size: Annotated[int, typer.Option(min=2, help="Sequences per step.")] = 64,
        lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (one-cycle).")] = 2e-3,
        seed: Annotated[int, typer.Option(help="Seed of the weights and the shuffling.")] = 0,
        norm: Annotated[str, typer.Option(help="none or batch: batch norm after each conv of the frame "
                                          "encoder (image frames).")] = "none",
        pools: Annotated[int, typer.Option(min=1, max=4, help="Conv blocks with max-pooling in the frame encoder "
                                           "(image frames): 2 for small shapes, 3 for objects of ~30 pixels.")] = 2,
        device: Annotated[str, typer.Option(help="cpu, cuda, mps or auto.")] = "cpu",
    ) -> None:
        """Train a judge on a dataset's real training sequences; save it with its test accuracy."""
        # errors (DisentangleError, OSError) are printed by the CLI, with their hint
        dev = disentangle.resolve_device(device)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):  # can the judge be written? ask before training it
            pass
        name, data = _data_from_argument(source, set_ or [])
        console.print(f"training a judge for {name} ({data.fingerprint}) on {len(data.split('train'))} sequences")
        judge = train_judge(data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=dev,
                            norm=norm, pools=pools, dataset=name, log=console.print)
        save_judge(judge, out)
        acc = ", ".join(f"{k} {v:.3f}" for k, v in judge.test_accuracy.items())
        print(f"wrote {out}: held-out accuracy on real test data: {acc}")

    @judge_app.command("show")
    def show_command(path: Annotated[Path, typer.Argument(help="A judge file.")]) -> None:
        """Print what a judge was trained on and its held-out accuracy."""
        judge = load_judge(path)
        for k, v in judge.info.items():
            print(f"{k}: {v}")

    cli.add_typer(judge_app, name="judge")
