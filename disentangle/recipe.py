"""TOML recipes: load, override (``--set``), validate against the registry, save resolved.

A recipe composes components by name::

    [data]                     # a dataset:   use = "name" + its parameters
    use = "moving-shapes"
    [model]                    # backbone sizes
    z_f_dim = 64
    [model.encoder]            # an encoder / decoder: use + parameters
    use = "conv"
    [[tasks]]                  # auxiliary tasks and regularizers: use + weight (λ) + parameters
    use = "flow-grid"
    weight = 1.0
    [train]                    # TrainConfig
    [eval]                     # EvalConfig, with [[eval.metrics]] components
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Sequence

import attrs
import tomli_w
from attrs import validators as v

from disentangle.config import structure, unstructure
from disentangle.errors import DisentangleError, did_you_mean
from disentangle.kinds import KINDS, Kind
from disentangle.registry import Registry


@attrs.frozen
class ComponentSpec:
    """A component chosen in a recipe: its public ``use`` name, structured config and weight."""

    kind: str
    use: str
    config: Any
    weight: float = 1.0
    weight_warmup: int = 0
    """Steps over which the weight grows linearly from 0 to ``weight`` (0: constant)."""


@attrs.frozen
class ModelConfig:
    """``[model]``: sizes of the S3VAE backbone (the paper's video sizes: z_f 256, z_t 32)."""

    z_f_dim: int = attrs.field(default=256, validator=v.gt(0))
    z_t_dim: int = attrs.field(default=32, validator=v.gt(0))
    hidden_dim: int = attrs.field(default=256, validator=v.gt(0))
    beta_f: float = attrs.field(default=1.0, validator=[v.ge(0), v.lt(math.inf)])
    """Weight of KL(q(z_f | x) || p(z_f)) in the loss (1: the ELBO)."""
    beta_z: float = attrs.field(default=1.0, validator=[v.ge(0), v.lt(math.inf)])
    """Weight of the summed KL(q(z_t | x_<=t) || p(z_t | z_<t)) in the loss (1: the ELBO)."""
    kl_warmup: int = attrs.field(default=0, validator=v.ge(0))
    """Steps over which both KL weights grow linearly from 0 to beta_f / beta_z (0: constant)."""


@attrs.frozen
class TrainConfig:
    """``[train]``: optimisation and run bookkeeping."""

    epochs: int = attrs.field(default=10, validator=v.gt(0))
    max_steps: int | None = attrs.field(default=None, validator=v.optional(v.gt(0)))
    batch_size: int = attrs.field(default=64, validator=v.ge(2))
    lr: float = attrs.field(default=1e-3, validator=[v.gt(0), v.lt(math.inf)])
    weight_decay: float = attrs.field(default=0.0, validator=[v.ge(0), v.lt(math.inf)])
    grad_clip: float | None = attrs.field(default=None, validator=v.optional([v.gt(0), v.lt(math.inf)]))
    seed: int = attrs.field(default=0, validator=[v.ge(0), v.lt(2**31)])
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    checkpoint_every: int = attrs.field(default=500, validator=v.gt(0))
    log_every: int = attrs.field(default=10, validator=v.gt(0))
    num_workers: int = attrs.field(default=0, validator=v.ge(0))
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """auto: bf16 autocast for the encoder and decoder on CUDA, float32 elsewhere."""
    channels_last: Literal["auto", "on", "off"] = "auto"
    """Store the encoder's and decoder's 4-d weights channels-last (NHWC) (auto: on CUDA)."""
    compile: Literal["auto", "on", "off"] = "off"
    """Compile the encoder and decoder with torch.compile (auto: on CUDA)."""
    cuda_graph: Literal["on", "off"] = "off"
    """Capture the whole training step in one CUDA graph and replay it (CUDA, one process)."""
    deterministic: Literal["on", "off"] = "off"
    """On CUDA, choose kernels that repeat bit for bit (no timed cuDNN choice, PyTorch's
    deterministic algorithms), so that a run and its resume repeat exactly; off: the fastest."""
    data_on_device: Literal["auto", "device", "loader"] = "auto"
    """auto: hold the training split on the GPU when the dataset allows it and it fits."""
    tensorboard: bool = False
    """Also write the logged scalars as TensorBoard event files into ``<run>/tensorboard/`` (the
    ``tensorboard`` extra); metrics.jsonl stays the record."""


@attrs.frozen
class EvalConfig:
    """``[eval]``: what runs on the test split at the end of training."""

    batch_size: int = attrs.field(default=128, validator=v.gt(0))
    images: bool = True
    num_images: int = attrs.field(default=8, validator=v.gt(0))


@attrs.frozen
class Recipe:
    data: ComponentSpec
    encoder: ComponentSpec
    decoder: ComponentSpec
    model: ModelConfig
    tasks: tuple[ComponentSpec, ...]
    regularizers: tuple[ComponentSpec, ...]
    metrics: tuple[ComponentSpec, ...]
    train: TrainConfig
    eval: EvalConfig
    description: str = ""
    source: str = "<recipe>"

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved recipe (every default filled in) as TOML-ready data, in recipe order."""
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        for name in _TOP[1:]:
            if name in _SECTIONS:
                out[name] = unstructure(getattr(self, name))
        for k in KINDS:
            chosen = getattr(self, k.field)
            value = [_component_dict(c, k.weighted) for c in chosen] if k.many else _component_dict(chosen)
            *parents, key = k.path
            node = out
            for part in parents:
                node = node.setdefault(part, {})
            node[key] = value
        return {name: out[name] for name in _TOP if name in out}

    def to_toml(self) -> str:
        """TOML text with arrays of tables written as ``[[tasks]]`` headers, as recipes are written."""
        return "".join(_toml_chunks(self.to_dict(), ""))

    @property
    def objectives(self) -> tuple[ComponentSpec, ...]:
        return self.tasks + self.regularizers


def _toml_chunks(table: dict[str, Any], name: str) -> Any:
    """Plain values first (via tomli_w), then ``[sub.tables]``, then each ``[[array.of.tables]]``."""
    literals = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_aot(v)}
    if name:
        yield f"{name}\n"
    if literals:
        yield tomli_w.dumps(literals, multiline_strings=True)
    for key, value in table.items():
        path = f"{name.strip('[]')}.{key}" if name else key
        if isinstance(value, dict):
            yield "\n"
            yield from _toml_chunks(value, f"[{path}]")
        elif _is_aot(value):
            for item in value:
                yield "\n"
                yield from _toml_chunks(item, f"[[{path}]]")


def _is_aot(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _component_dict(spec: ComponentSpec, weighted: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"use": spec.use}
    if weighted:
        out["weight"] = spec.weight
        out["weight_warmup"] = spec.weight_warmup
    out.update(unstructure(spec.config))
    return out


class RecipeError(DisentangleError):
    """Every problem found in a recipe, each with its TOML path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} error{'s' if len(problems) != 1 else ''}"]
        lines += [f"  {path}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines), hint="fix these keys (or override with --set key.path=value), "
                                                "then run `disentangle validate` again")


# ----- reading ----------------------------------------------------------------------------------

def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DisentangleError(f"recipe file not found: {path}", hint="pass the path of a .toml recipe, "
                               "e.g. recipes/quickstart.toml")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(str(path), [("(syntax)", f"not valid TOML: {exc}")]) from None
    except UnicodeDecodeError as exc:
        raise DisentangleError(f"cannot read recipe {path}: not UTF-8 text ({exc.reason})",
                               hint="recipes are TOML files in UTF-8") from None
    except OSError as exc:
        raise DisentangleError(f"cannot read recipe {path}: {exc.strerror}") from None


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """``"train.lr=3e-4"`` -> ``(["train", "lr"], 0.0003)``; the value is read as a TOML value,
    falling back to a plain string (``data.root=/data/x``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise DisentangleError(f"--set {text!r}: expected KEY.PATH=VALUE", hint="e.g. --set train.lr=3e-4")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError as exc:
        if raw.strip()[:1] in ("[", "{"):  # meant as an array or table: never read it as a string
            unquoted = re.sub(r'"[^"]*"', '""', raw)
            bare_word = any(w not in ("true", "false", "inf", "nan") for w in
                            re.findall(r"[=\[,]\s*([A-Za-z_][\w.-]*)\s*(?=[,\]}]|$)", unquoted))
            raise DisentangleError(
                f"override {text!r}: the value is not valid TOML ({re.sub(r' [(]at line .*', '', str(exc))})",
                hint="strings inside it need double quotes, which a shell drops unless the whole argument "
                     "is in single quotes: --set 'eval.metrics=[{use=\"latent-probe\"}]'" if bare_word else
                     "write the value as TOML, e.g. [16, 32, 64] or {use=\"conv\"}") from None
        value = raw.strip()
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            where = ".".join(map(str, parts[: i + 1]))
            if isinstance(node, list):
                if not isinstance(part, int) or part >= len(node):
                    raise DisentangleError(f"--set {text}: '{where}' is not an index of a list of {len(node)}")
                node = node[part]
            else:
                node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise DisentangleError(f"--set {text}: '{where}' is a value, not a table")
        last = parts[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or last >= len(node):
                raise DisentangleError(f"--set {text}: index {last} is out of range")
        node[last] = value
    return raw


def load_recipe(path: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None) -> Recipe:
    """Read, override and validate a recipe file; raises :class:`RecipeError` with every problem."""
    raw = apply_overrides(read_toml(path), overrides)
    return parse_recipe(raw, source=str(path), registry=registry)


# ----- validation -------------------------------------------------------------------------------

#: Plain sections (not components) and their config classes.
_SECTIONS: dict[str, type] = {"model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}
_TOP = ("description", "data", "model", "tasks", "regularizers", "train", "eval")
assert {k.path[0] for k in KINDS} | set(_SECTIONS) | {"description"} == set(_TOP)


def parse_recipe(raw: dict[str, Any], source: str = "<recipe>", registry: Registry | None = None) -> Recipe:
    """Structure a recipe dict, collecting every error before raising."""
    if registry is None:
        from disentangle.registry import get_registry

        registry = get_registry()
    problems: list[tuple[str, str]] = []

    for key in raw:
        if key not in _TOP:
            problems.append((key, f"unknown section '{key}'{did_you_mean(key, _TOP)}; "
                                  f"valid sections: {', '.join(_TOP)}"))

    def component(kind: Kind, table: Any, path: str) -> ComponentSpec | None:
        if not isinstance(table, dict):
            problems.append((path, f"expected a table with use = \"<{kind.name} name>\""))
            return None
        table = dict(table)
        use = table.pop("use", None)
        if use is None:
            problems.append((f"{path}.use", f"missing: which {kind.name} to use; available: "
                                            f"{', '.join(registry.names(kind.name)) or 'none'}"))
            return None
        if not isinstance(use, str):
            problems.append((f"{path}.use", f"expected a {kind.name} name (string), got {use!r}"))
            return None
        weight, warmup = 1.0, 0
        if kind.weighted:
            weight = table.pop("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < math.inf:
                problems.append((f"{path}.weight", f"expected a finite number >= 0 (the loss weight λ), got {weight!r}"))
                weight = 1.0
            warmup = table.pop("weight_warmup", 0)
            if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
                problems.append((f"{path}.weight_warmup", "expected a whole number of steps >= 0 over which the "
                                                          f"weight grows linearly from 0, got {warmup!r}"))
                warmup = 0
        try:
            comp = registry.get(kind.name, use)
        except DisentangleError as exc:
            problems.append((f"{path}.use", exc.message))
            return None
        config, errs = structure(table, comp.config, path)
        problems.extend(errs)
        return None if errs else ComponentSpec(kind=kind.name, use=use, config=config, weight=float(weight),
                                                     weight_warmup=int(warmup))

    def component_list(kind: Kind, items: Any) -> tuple[ComponentSpec, ...]:
        if not isinstance(items, list):
            problems.append((kind.key, f"expected an array of tables {kind.section}"))
            return ()
        specs = [component(kind, item, f"{kind.key}.{i}") for i, item in enumerate(items)]
        return tuple(s for s in specs if s is not None)

    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append(("description", "expected a string"))
        description = ""

    # Copy the sections that hold components, so popping them leaves the caller's dict alone.
    work = {key: dict(value) if isinstance(value, dict) else value for key, value in raw.items()}
    chosen: dict[str, Any] = {}
    for kind in KINDS:
        *parents, key = kind.path
        node: Any = work
        for part in parents:
            node = node.get(part, {})
        if not isinstance(node, dict):  # the parent section is not a table; reported below
            chosen[kind.field] = () if kind.many else None
            continue
        value = node.pop(key, None)
        if kind.many:
            chosen[kind.field] = () if value is None else component_list(kind, value)
        elif value is None:
            problems.append((kind.key, f"missing {kind.section} with use = \"<name>\"; "
                                       f"available: {', '.join(registry.names(kind.name)) or 'none'}"))
            chosen[kind.field] = None
        else:
            chosen[kind.field] = component(kind, value, kind.key)

    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = work.get(name, {})
        if not isinstance(table, dict):
            problems.append((name, f"expected a table [{name}]"))
            sections[name] = None
            continue
        sections[name], errs = structure(table, cls, name)
        problems.extend(errs)

    if problems:
        raise RecipeError(source, problems)
    return Recipe(**chosen, **sections, description=description, source=source)


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    from disentangle.io import atomic_write_text

    atomic_write_text(f"# resolved from {recipe.source}\n" + recipe.to_toml(), path)


__all__ = ["ComponentSpec", "EvalConfig", "ModelConfig", "Recipe", "RecipeError", "TrainConfig",
           "load_recipe", "parse_recipe", "save_recipe"]
