"""Contract checks for plug-in authors: call these from your own tests.

    from disentangle import testing

    def test_my_task(tmp_path):
        ctx = testing.tiny_context(tmp_path)
        task = MyTask(MyTask.Config(), ctx)
        testing.check_objective(task, ctx)

Each ``check_*`` raises ``AssertionError`` with a message naming what broke.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from disentangle.config import converter
from disentangle.interfaces import (
    Batch,
    BuildContext,
    DataSpec,
    Decoder,
    Encoder,
    ModelSpec,
    Objective,
    SequenceData,
)
from disentangle.model import S3VAE
from disentangle.sounds import as_audio

__all__ = [
    "ToyData",
    "TinyDecoder",
    "TinyEncoder",
    "check_config_roundtrip",
    "check_dataset",
    "check_decoder",
    "check_encoder",
    "check_objective",
    "check_registered",
    "check_stays_on_device",
    "host_tensor_ops",
    "meta_batch",
    "random_batch",
    "tiny_context",
    "tiny_model",
]


def tiny_context(cache_dir: str | Path, feature_shape: tuple[int, ...] = (3, 16, 16), seq_len: int = 4,
                 z_f_dim: int = 8, z_t_dim: int = 4, hidden_dim: int = 16, dataset_size: int = 16,
                 batch_size: int = 4, seed: int = 0) -> BuildContext:
    """A fully populated :class:`BuildContext` for small tests."""
    return BuildContext(
        cache_dir=Path(cache_dir), seed=seed,
        data=DataSpec(feature_shape=tuple(feature_shape), seq_len=seq_len),
        model=ModelSpec(z_f_dim=z_f_dim, z_t_dim=z_t_dim, hidden_dim=hidden_dim),
        dataset_size=dataset_size, batch_size=batch_size,
    )


def random_batch(ctx: BuildContext, batch_size: int | None = None, seed: int = 0) -> Batch:
    """A batch of uniform noise in [0, 1] with the context's shapes."""
    assert ctx.data is not None
    b = batch_size or ctx.batch_size or 4
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, ctx.data.seq_len, *ctx.data.feature_shape, generator=g)
    return {"x": x, "index": torch.arange(b), "labels": {}}


class TinyEncoder(Encoder):
    """Flatten + linear, frame by frame (for testing objectives without a real encoder)."""

    framewise = True

    def __init__(self, ctx: BuildContext, out_dim: int = 16):
        super().__init__()
        assert ctx.data is not None
        n = int(torch.tensor(ctx.data.feature_shape).prod())
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Flatten(2), nn.Linear(n, out_dim), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinyDecoder(Decoder):
    """Linear, unit-variance Gaussian likelihood."""

    def __init__(self, ctx: BuildContext):
        super().__init__()
        assert ctx.data is not None and ctx.model is not None
        self.shape = tuple(ctx.data.feature_shape)
        n = int(torch.tensor(self.shape).prod())
        self.net = nn.Linear(ctx.model.latent_dim, n)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).unflatten(-1, self.shape)

    def nll(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((output - x) ** 2).flatten(1).sum(-1)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return output


def tiny_model(ctx: BuildContext, encoder: Encoder | None = None, decoder: Decoder | None = None) -> S3VAE:
    """An S3VAE with the context's sizes (tiny encoder/decoder unless given)."""
    assert ctx.model is not None
    return S3VAE(encoder or TinyEncoder(ctx), decoder or TinyDecoder(ctx), ctx.model)


class ToyData(SequenceData):
    """Random sequences with one static and one dynamic label (a stand-in dataset for tests)."""

    def __init__(self, ctx: BuildContext, n_train: int = 16, n_test: int = 8, seed: int = 0):
        assert ctx.data is not None
        self.spec = DataSpec(ctx.data.feature_shape, ctx.data.seq_len,
                             static_factors={"identity": 2}, dynamic_factors={"motion": 2})
        g = torch.Generator().manual_seed(seed)
        self._splits = {}
        for name, n in (("train", n_train), ("test", n_test)):
            x = torch.rand(n, ctx.data.seq_len, *ctx.data.feature_shape, generator=g)
            items = [{"x": x[i], "labels": {"identity": i % 2, "motion": (i // 2) % 2}} for i in range(n)]
            self._splits[name] = items
        self._key = f"toy-{seed}-{n_train}-{n_test}-{ctx.data.seq_len}-{'x'.join(map(str, ctx.data.feature_shape))}"

    def split(self, name: str) -> Any:
        return self._splits[name]

    @property
    def fingerprint(self) -> str:
        return self._key


# ----- checks ------------------------------------------------------------------------------------

def check_config_roundtrip(config: Any) -> None:
    """The config survives recipe structuring: unstructure -> structure gives an equal object."""
    cls = type(config)
    assert attrs.has(cls), f"{cls.__name__} is not an attrs class"
    raw = converter.unstructure(config)
    again = converter.structure(raw, cls)
    assert again == config, f"{cls.__name__} does not round-trip: {config!r} -> {raw!r} -> {again!r}"


def _grad_reaches(tensor: torch.Tensor, what: str) -> None:
    assert tensor.grad is not None, f"no gradient reaches {what}"
    assert torch.isfinite(tensor.grad).all(), f"non-finite gradient at {what}"
    assert tensor.grad.abs().sum() > 0, f"gradient at {what} is all zero"


def check_encoder(encoder: Encoder, ctx: BuildContext, batch_size: int = 2) -> None:
    """Shape ``(B, T, out_dim)``, finite output, gradients reach the input."""
    assert isinstance(encoder, Encoder), "encoders subclass disentangle.Encoder"
    assert isinstance(getattr(encoder, "out_dim", None), int), "encoder.out_dim must be an int"
    x = random_batch(ctx, batch_size)["x"].requires_grad_(True)
    h = encoder(x)
    assert ctx.data is not None
    want = (batch_size, ctx.data.seq_len, encoder.out_dim)
    assert tuple(h.shape) == want, f"encoder output shape {tuple(h.shape)}, expected {want}"
    assert torch.isfinite(h).all(), "encoder output is not finite"
    h.square().sum().backward()
    _grad_reaches(x, "the encoder input")
    if encoder.framewise:
        perm = torch.randperm(ctx.data.seq_len)
        with torch.no_grad():
            a, b = encoder(x[:, perm]), encoder(x)[:, perm]
        assert torch.allclose(a, b, atol=1e-5), "encoder says framewise=True but frames interact"


def check_decoder(decoder: Decoder, ctx: BuildContext, batch_size: int = 2) -> None:
    """Output, ``nll`` ``(B,)`` finite, ``mean`` ``(B, T, *F)``, gradients reach the latents."""
    assert isinstance(decoder, Decoder), "decoders subclass disentangle.Decoder"
    assert ctx.data is not None and ctx.model is not None
    z = torch.randn(batch_size, ctx.data.seq_len, ctx.model.latent_dim, requires_grad=True)
    out = decoder(z)
    x = random_batch(ctx, batch_size)["x"]
    nll = decoder.nll(out, x)
    assert tuple(nll.shape) == (batch_size,), f"decoder.nll shape {tuple(nll.shape)}, expected ({batch_size},)"
    assert torch.isfinite(nll).all(), "decoder.nll is not finite"
    mean = decoder.mean(out)
    want = (batch_size, ctx.data.seq_len, *ctx.data.feature_shape)
    assert tuple(mean.shape) == want, f"decoder.mean shape {tuple(mean.shape)}, expected {want}"
    nll.sum().backward()
    _grad_reaches(z, "the decoder input")


def check_objective(objective: Objective, ctx: BuildContext, data: SequenceData | None = None,
                    model: S3VAE | None = None, batch: Batch | None = None) -> torch.Tensor:
    """``prepare`` runs, the loss is a finite scalar, and its gradient reaches the model or the
    objective's own parameters. Returns the loss."""
    assert isinstance(objective, Objective), "tasks/regularizers subclass disentangle.Task/Regularizer"
    data = data or ToyData(ctx, n_train=ctx.dataset_size or 16)
    objective.prepare(data, ctx)
    model = model or tiny_model(ctx)
    if batch is None:
        items = [data.split("train")[i] for i in range(ctx.batch_size or 4)]
        batch = {"x": torch.stack([it["x"] for it in items]),
                 "index": torch.arange(len(items)),
                 "labels": {}}
    out = model(batch["x"])
    loss = objective.loss(batch, out, model)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0, "loss must be a scalar tensor"
    assert torch.isfinite(loss), f"loss is not finite: {loss}"
    params = [p for p in list(model.parameters()) + list(objective.parameters()) if p.requires_grad]
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), \
        "the loss sends no gradient to the model or the objective"
    return loss.detach()


_META = torch.device("meta")


class _HostTensorOps(TorchDispatchMode):
    """Records each operation that takes a non-scalar host tensor next to ``meta`` tensors (indexing
    with a host index, a host tensor copied to the device, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        host = [t for t in tensors if t.device.type == "cpu" and t.ndim > 0]
        if host and (kwargs.get("device") == _META or any(t.device == _META for t in tensors)):
            self.found.append(f"{func} with host tensor(s) of shape {', '.join(str(tuple(t.shape)) for t in host)}")
        return func(*args, **kwargs)


def host_tensor_ops() -> _HostTensorOps:
    """A context manager whose ``found`` lists the operations, run inside it on ``meta`` tensors, that
    also took a host tensor: on a GPU each is a copy from the host, which waits for the GPU."""
    return _HostTensorOps()


def meta_batch(data: SequenceData, batch_size: int) -> Batch:
    """A training batch of ``data``'s shapes on PyTorch's ``meta`` device (shapes without values)."""
    item = data.split("train")[0]
    return {"x": torch.empty(batch_size, *item["x"].shape, device=_META),
            "index": torch.arange(batch_size, device=_META),
            "labels": {k: torch.zeros(batch_size, dtype=torch.long, device=_META) for k in item.get("labels", {})}}


def check_stays_on_device(objective: Objective, ctx: BuildContext, data: SequenceData | None = None,
                          model: S3VAE | None = None) -> None:
    """``loss`` and its backward pass stay on the batch's device: no tensor made on the host (an
    index from ``torch.randperm(n)``, a ``torch.tensor([...])``) and no value read back (``.item()``,
    ``int(t)``, ``float(t)``, ``bool(t)``), either of which makes a GPU step wait for the GPU.

    Runs ``prepare`` on the host, then moves the model and the objective to PyTorch's ``meta`` device
    (shapes without values) and calls ``loss`` twice: the first call may move state the objective
    keeps (pseudo-labels) to the device once; the second must take nothing from the host. The
    objective is left on ``meta``."""
    data = data or ToyData(ctx, n_train=ctx.dataset_size or 16)
    objective.prepare(data, ctx)
    model = (model or tiny_model(ctx)).to(_META)
    objective.to(_META)
    batch = meta_batch(data, ctx.batch_size or 4)
    for call in ("first", "second"):
        probe = host_tensor_ops()
        try:
            with probe:
                out = model(batch["x"])
                loss = objective.loss(batch, out, model)
                loss.backward()
        except (RuntimeError, NotImplementedError) as exc:
            if "meta" not in str(exc):
                raise
            raise AssertionError(f"the loss reads a value back from the device (.item(), int(t), float(t), "
                                 f"bool(t), .tolist(), .numpy()): {exc}") from None
        assert call == "first" or not probe.found, \
            "the loss uses tensors made on the host at every step (make them with device=out.z.device): " \
            + "; ".join(probe.found)


def check_registered(plugin: object, kind: str, name: str, factory: Any = None) -> Any:
    """The plug-in object/module registers ``kind`` ``name`` (with ``factory`` if given) without
    errors, and, when the plug-in is installed, its entry point loads it too. Returns the component."""
    from disentangle.registry import load_registry

    reg = load_registry(entry_points=False, extra=[("under-test", plugin)])
    info = reg.plugins[0]
    assert info.status == "ok", f"the plug-in failed to register: {info.error}"
    comp = reg.get(kind, name)
    if factory is not None:
        assert comp.factory is factory, f"{kind} '{name}' is made by {comp.factory!r}, not {factory!r}"
    installed = [p for p in load_registry().plugins if name in p.components.get(kind, [])]
    for p in installed:
        assert p.status == "ok", f"installed plug-in '{p.name}' failed: {p.error}"
    return comp


def check_dataset(data: SequenceData, max_items: int = 4) -> None:
    """Splits exist, items match ``spec``, labels are declared, fingerprint is a string; ``to_images``,
    ``export`` and ``to_audio`` (when it gives sound) return what the core expects."""
    assert isinstance(data, SequenceData), "datasets subclass disentangle.SequenceData"
    assert isinstance(data.fingerprint, str) and data.fingerprint, "fingerprint must be a non-empty str"
    spec = data.spec
    declared = set(spec.static_factors) | set(spec.dynamic_factors)
    for name in ("train", "test"):
        split = data.split(name)
        assert len(split) > 0, f"split '{name}' is empty"
        for i in range(min(max_items, len(split))):
            item = split[i]
            x = item["x"]
            want = (spec.seq_len, *spec.feature_shape)
            assert isinstance(x, torch.Tensor) and x.dtype == torch.float32, f"{name}[{i}]['x'] must be float32"
            assert tuple(x.shape) == want, f"{name}[{i}]['x'] shape {tuple(x.shape)}, expected {want}"
            labels = item.get("labels", {})
            assert set(labels) <= declared, f"undeclared labels {set(labels) - declared} in {name}[{i}]"
            for k, v in labels.items():
                n = {**spec.static_factors, **spec.dynamic_factors}[k]
                assert 0 <= int(v) < n, f"label {k}={v} out of range 0..{n - 1}"
    x = torch.stack([data.split("test")[i]["x"] for i in range(min(2, len(data.split("test"))))])
    images = data.to_images(x)
    if images is not None:
        assert images.dim() == 5 and images.shape[2] == 3, "to_images must return (B, T, 3, H, W)"
        assert float(images.min()) >= 0 and float(images.max()) <= 1, "to_images must be in [0, 1]"
    exported = data.export(x)
    assert exported.shape[0] == x.shape[0], "export must keep the batch dimension first"
    audio = as_audio(data.to_audio(x), len(x), "to_audio")  # checks the form; None when the data is silent
    if audio is not None:
        assert all(bool(torch.isfinite(w).all()) for w in audio.waves), "to_audio must give finite samples"
