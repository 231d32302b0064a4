"""The ``sprites`` dataset: the DSVAE/S3VAE Sprites benchmark, regenerated from the LPC layers.

The benchmark (Li & Mandt 2018, used by S3VAE) is rebuilt from the layer sheets in a folder such as
``shared/data/lpc-sprites`` (``body/ bottomwear/ topwear/ hair/ shoes/``), following that folder's
``PROTOCOL.md`` exactly:

- 1296 characters s = 216*body + 36*bottom + 6*top + hair (6 variants per static factor);
- each character is composited onto an opaque black canvas with Pillow's ``Image.alpha_composite``
  in the order body, bottomwear, topwear, hair, ``shoes/1.png``;
- 3 actions (0 walk, 1 spellcast, 2 slash) x 3 directions (0 front, 1 left, 2 right), 8 frames of
  64x64 RGB each, cut from fixed sheet cells (see :data:`ROWS` and :data:`COLUMNS`);
- the split is by character: ``np.random.RandomState(423).permutation(1296)``, first 1000 train,
  last 296 test (cross-checked against ``split_seed423.json`` when present);
- the rows are the 9 (action, direction) arrays concatenated action-major, then direction, with
  the characters in permutation order, then shuffled as the original loader does:
  ``rs = np.random.RandomState(0)``; train rows permuted by ``rs.permutation(9000)``, then test
  rows by ``rs.permutation(2664)`` with the same ``rs``.

This gives 9000 train and 2664 test sequences. ``resolution = 32`` downsamples every frame by an
exact 2x2 mean, rounded half up (``(a + b + c + d + 2) // 4``), for CPU tests and fast runs.

**Pixel scaling.** Items are float32 ``uint8 / 255`` in [0, 1] (``scale = "255"``, the default).
The original DSVAE pipeline divided by 256 (values in [0, 255/256]); ``scale = "256"`` reproduces
that. Reconstruction errors differ slightly between the two, so report the choice.

The composited set is built once into ``<cache_dir>/sprites-<key>/`` as uint8 ``.npy`` arrays (key:
the SHA-256 of the 25 layer PNGs, the resolution and :data:`PROTOCOL_VERSION`) and then memory-mapped,
so later runs start instantly. A ``manifest.json`` written last marks a finished build (a build that
was killed before it is redone) and records each file's shape, dtype, size and content digests; every
open checks them (header, size and a strided sample of the bytes) and rebuilds a damaged cache.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import torch
from PIL import Image

import disentangle
from disentangle_plugins.video import common

#: Bump when the composited content or the cache layout changes (invalidates cached builds).
PROTOCOL_VERSION = 1

ACTIONS = ("walk", "spellcast", "slash")
DIRECTIONS = ("front", "left", "right")
STATIC_FACTORS = ("body", "bottom", "top", "hair")
#: Sheet row of each action for the directions (front, left, right) (PROTOCOL §3).
ROWS = {"walk": (10, 9, 11), "spellcast": (2, 1, 3), "slash": (14, 13, 15)}
#: Sheet column of each action at t = 0..7 (PROTOCOL §3).
COLUMNS = {
    "walk": (8, 1, 2, 3, 4, 5, 6, 7),
    "spellcast": (0, 1, 2, 3, 4, 5, 4, 6),
    "slash": (0, 1, 2, 3, 4, 5, 4, 0),
}
#: Layer folders in compositing order, with the factor each one encodes; shoes come last.
LAYERS = (("body", "body"), ("bottomwear", "bottom"), ("topwear", "top"), ("hair", "hair"))
SHOES = "shoes/1.png"
N_VARIANTS = 6
N_CHARACTERS = N_VARIANTS ** 4  # 1296
N_TRAIN_CHARACTERS = 1000
SEQ_LEN = 8
CELL = 64
SHEET_SIZE = (832, 1344)  # (width, height): 13 x 21 cells of 64 x 64
SPLIT_SEED = 423
SHUFFLE_SEED = 0
SPLIT_FILE = "split_seed423.json"
#: Columns of the cached label arrays; every column but ``character`` is an item label.
LABEL_COLUMNS = ("action", "direction", "dynamic", "body", "bottom", "top", "hair", "character")
ITEM_LABELS = LABEL_COLUMNS[:-1]
_SPLITS = ("train", "test")

_HINT_ROOT = ("set data.root to the lpc-sprites folder that holds body/, bottomwear/, topwear/, hair/ "
              "and shoes/ (e.g. shared/data/lpc-sprites)")


# ----- the protocol, piece by piece --------------------------------------------------------------

def character_factors(character: int) -> tuple[int, int, int, int]:
    """``(body, bottom, top, hair)`` of character ``s``: its base-6 digits, most significant first."""
    s = int(character)
    if not 0 <= s < N_CHARACTERS:
        raise ValueError(f"character index must be in 0..{N_CHARACTERS - 1}, got {s}")
    return s // 216, (s // 36) % 6, (s // 6) % 6, s % 6


def character_index(body: int, bottom: int, top: int, hair: int) -> int:
    """The inverse of :func:`character_factors`."""
    for v in (body, bottom, top, hair):
        if not 0 <= v < N_VARIANTS:
            raise ValueError(f"factor variants must be in 0..{N_VARIANTS - 1}, got {(body, bottom, top, hair)}")
    return 216 * body + 36 * bottom + 6 * top + hair


def character_split() -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` character indices in permutation order (1000 and 296 of them)."""
    perm = np.random.RandomState(SPLIT_SEED).permutation(N_CHARACTERS)
    return perm[:N_TRAIN_CHARACTERS], perm[N_TRAIN_CHARACTERS:]


def check_split_file(root: str | os.PathLike) -> bool:
    """Compare :func:`character_split` with ``<root>/split_seed423.json``; raise
    :class:`disentangle.DisentangleError` if they disagree. Returns False when the file is absent."""
    path = Path(root) / SPLIT_FILE
    if not path.exists():
        return False
    try:
        listed = json.loads(path.read_text())
        want_train, want_test = [int(v) for v in listed["train"]], [int(v) for v in listed["test"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise disentangle.DisentangleError(
            f"sprites: cannot read the split file {path}: {exc}",
            hint="restore the file from the lpc-sprites folder (see its SHA256SUMS)") from exc
    train, test = character_split()
    if want_train != train.tolist() or want_test != test.tolist():
        raise disentangle.DisentangleError(
            f"sprites: the character split of np.random.RandomState({SPLIT_SEED}).permutation({N_CHARACTERS}) "
            f"disagrees with {path}",
            hint="numpy's legacy RandomState stream should never change; check the split file against "
                 "SHA256SUMS, or report the numpy version")
    return True


def frame_cells(action: int | str, direction: int | str) -> list[tuple[int, int]]:
    """The sheet cells ``(row, col)`` of frames t = 0..7 of one (action, direction)."""
    a = _index(action, ACTIONS, "action")
    d = _index(direction, DIRECTIONS, "direction")
    name = ACTIONS[a]
    return [(ROWS[name][d], col) for col in COLUMNS[name]]


def layer_paths(root: str | os.PathLike) -> list[Path]:
    """The 25 layer files in a fixed order: body/0..5, bottomwear/0..5, topwear/0..5, hair/0..5, shoes/1."""
    root = Path(root)
    paths = [root / folder / f"{v}.png" for folder, _ in LAYERS for v in range(N_VARIANTS)]
    return paths + [root / SHOES]


def downsample2(frames: np.ndarray) -> np.ndarray:
    """Exact 2x2 mean of uint8 ``(..., H, W, C)`` frames, rounded half up."""
    f = frames.astype(np.uint16)
    total = f[..., 0::2, 0::2, :] + f[..., 1::2, 0::2, :] + f[..., 0::2, 1::2, :] + f[..., 1::2, 1::2, :]
    return ((total + 2) >> 2).astype(np.uint8)


def _index(value: int | str, names: tuple[str, ...], what: str) -> int:
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"unknown {what} {value!r}; expected one of {names}")
        return names.index(value)
    if not 0 <= int(value) < len(names):
        raise ValueError(f"{what} must be in 0..{len(names) - 1}, got {value}")
    return int(value)


def _check_root(root: str | os.PathLike) -> Path:
    if not str(root):
        raise disentangle.DisentangleError("sprites: data.root is not set", hint=_HINT_ROOT)
    path = Path(root).expanduser()
    if not path.is_dir():
        raise disentangle.DisentangleError(f"sprites: data.root {path} does not exist or is not a folder",
                                           hint=_HINT_ROOT)
    return path


def _load_strip(path: Path) -> Image.Image:
    """One layer sheet as an RGBA strip 64 px wide holding the 72 used cells, top to bottom in the
    order (action, direction, t)."""
    if not path.is_file():
        raise disentangle.DisentangleError(f"sprites: layer file {path} is missing", hint=_HINT_ROOT)
    try:
        with Image.open(path) as im:
            if im.size != SHEET_SIZE:
                raise disentangle.DisentangleError(
                    f"sprites: layer sheet {path} is {im.size[0]}x{im.size[1]} px, expected "
                    f"{SHEET_SIZE[0]}x{SHEET_SIZE[1]} (13 x 21 cells of 64 px)",
                    hint="use the unmodified LPC sheets of the lpc-sprites folder (see its SHA256SUMS)")
            sheet = im.convert("RGBA")
    except disentangle.DisentangleError:
        raise
    except OSError as exc:
        raise disentangle.DisentangleError(f"sprites: cannot read layer sheet {path}: {exc}",
                                           hint="check the file against the folder's SHA256SUMS") from exc
    strip = Image.new("RGBA", (CELL, CELL * len(ACTIONS) * len(DIRECTIONS) * SEQ_LEN))
    k = 0
    for a in range(len(ACTIONS)):
        for d in range(len(DIRECTIONS)):
            for row, col in frame_cells(a, d):
                box = (CELL * col, CELL * row, CELL * col + CELL, CELL * row + CELL)
                strip.paste(sheet.crop(box), (0, CELL * k))
                k += 1
    return strip


class _Compositor:
    """Composites characters from the layer strips, reusing the partial composites shared by
    consecutive characters (body, then body+bottom, ...): the same ``alpha_composite`` calls, in the
    same order, as compositing each character from scratch, so the result is bit-identical."""

    def __init__(self, root: Path):
        self.root = root
        self._strips: dict[str, Image.Image] = {}
        height = CELL * len(ACTIONS) * len(DIRECTIONS) * SEQ_LEN
        self._canvas = Image.new("RGBA", (CELL, height), (0, 0, 0, 255))
        self._stack: list[tuple[tuple[int, ...], Image.Image]] = []

    def _strip(self, rel: str) -> Image.Image:
        if rel not in self._strips:
            self._strips[rel] = _load_strip(self.root / rel)
        return self._strips[rel]

    def load_all(self) -> None:
        """Load (and check) every layer up front."""
        for path in layer_paths(self.root):
            self._strip(path.relative_to(self.root).as_posix())

    def character(self, character: int) -> np.ndarray:
        """uint8 ``(3, 3, 8, 64, 64, 3)``: (action, direction, t, y, x, rgb) of one character."""
        digits = character_factors(character)
        image = self._canvas
        for level, (folder, _) in enumerate(LAYERS):
            prefix = digits[: level + 1]
            if level < len(self._stack) and self._stack[level][0] == prefix:
                image = self._stack[level][1]
                continue
            del self._stack[level:]
            image = Image.alpha_composite(image, self._strip(f"{folder}/{digits[level]}.png"))
            self._stack.append((prefix, image))
        image = Image.alpha_composite(image, self._strip(SHOES))
        rgb = np.asarray(image)[..., :3]
        return rgb.reshape(len(ACTIONS), len(DIRECTIONS), SEQ_LEN, CELL, CELL, 3)


def compose_character(root: str | os.PathLike, character: int) -> np.ndarray:
    """All 9 sequences of one character: uint8 ``(3, 3, 8, 64, 64, 3)`` indexed (action, direction)."""
    return _Compositor(_check_root(root)).character(character)


def compose_sequence(root: str | os.PathLike, character: int, action: int | str,
                     direction: int | str) -> np.ndarray:
    """One sequence at full resolution: uint8 ``(8, 64, 64, 3)`` (t, y, x, rgb)."""
    a = _index(action, ACTIONS, "action")
    d = _index(direction, DIRECTIONS, "direction")
    return compose_character(root, character)[a, d].copy()


def sequence_labels(character: int, action: int, direction: int) -> dict[str, int]:
    """The item labels of one sequence."""
    body, bottom, top, hair = character_factors(character)
    return {"action": action, "direction": direction, "dynamic": 3 * action + direction,
            "body": body, "bottom": bottom, "top": top, "hair": hair}


def row_layout() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each split: ``(character, action, direction)`` of every row, after the loader shuffle."""
    chars = dict(zip(_SPLITS, character_split()))
    rs = np.random.RandomState(SHUFFLE_SEED)
    out = {}
    for name in _SPLITS:  # train first, then test, with the same RandomState
        c = chars[name]
        n = len(c)
        # unshuffled: 9 blocks (action-major, then direction), characters in permutation order
        k = np.repeat(np.arange(len(ACTIONS) * len(DIRECTIONS)), n)
        character = np.tile(c, len(ACTIONS) * len(DIRECTIONS))
        perm = rs.permutation(len(k))
        out[name] = (character[perm], (k // 3)[perm], (k % 3)[perm])
    return out


# ----- building the cache ------------------------------------------------------------------------

def layer_digests(root: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of each layer file (relative path -> hex); raises a clear error for a missing one."""
    root = _check_root(root)
    digests = {}
    for path in layer_paths(root):
        if not path.is_file():
            raise disentangle.DisentangleError(f"sprites: layer file {path} is missing", hint=_HINT_ROOT)
        digests[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def build(root: str | os.PathLike, out_dir: str | os.PathLike, resolution: int = 64,
          key: str = "") -> dict[str, Any]:
    """Composite the whole set into ``out_dir``: ``{split}_x.npy`` uint8 ``(N, 8, R, R, 3)`` and
    ``{split}_labels.npy`` int16 ``(N, 8)`` (columns :data:`LABEL_COLUMNS`), then ``manifest.json``
    last. Returns the manifest."""
    if resolution not in (32, 64):
        raise ValueError(f"resolution must be 32 or 64, got {resolution}")
    root = _check_root(root)
    check_split_file(root)
    out_dir = Path(out_dir)
    compositor = _Compositor(root)
    compositor.load_all()

    layout = row_layout()
    # where each (character, action, direction) lands: split and row
    where = np.full((N_CHARACTERS, len(ACTIONS), len(DIRECTIONS)), -1, dtype=np.int64)
    in_split = np.zeros(N_CHARACTERS, dtype=np.int8)
    arrays, labels = {}, {}
    for i, name in enumerate(_SPLITS):
        character, action, direction = layout[name]
        n = len(character)
        where[character, action, direction] = np.arange(n)
        in_split[np.unique(character)] = i
        arrays[name] = np.empty((n, SEQ_LEN, resolution, resolution, 3), dtype=np.uint8)
        lab = np.empty((n, len(LABEL_COLUMNS)), dtype=np.int16)
        for j, col in enumerate(LABEL_COLUMNS):
            if col == "character":
                lab[:, j] = character
            elif col == "action":
                lab[:, j] = action
            elif col == "direction":
                lab[:, j] = direction
            elif col == "dynamic":
                lab[:, j] = 3 * action + direction
            else:
                lab[:, j] = (character // 6 ** (3 - STATIC_FACTORS.index(col))) % 6
        labels[name] = lab
    assert (where >= 0).all(), "every (character, action, direction) must land in a split"

    for s in disentangle.track(range(N_CHARACTERS), total=N_CHARACTERS,
                               description=f"sprites: compositing {resolution}px"):
        seqs = compositor.character(s)
        if resolution == 32:
            seqs = downsample2(seqs)
        arrays[_SPLITS[in_split[s]]][where[s].reshape(-1)] = seqs.reshape(-1, *seqs.shape[2:])

    out_dir.mkdir(parents=True, exist_ok=True)
    for name in _SPLITS:
        disentangle.atomic_save_npy(arrays[name], out_dir / f"{name}_x.npy")
        disentangle.atomic_save_npy(labels[name], out_dir / f"{name}_labels.npy")
    manifest = {
        "protocol_version": PROTOCOL_VERSION,
        "key": key,
        "resolution": resolution,
        "label_columns": list(LABEL_COLUMNS),
        "shapes": {f"{name}_x": list(arrays[name].shape) for name in _SPLITS},
        # what each file must be when read back (checked on every open, see Sprites._read_manifest)
        "files": {f"{name}_{suffix}.npy": disentangle.array_record(out_dir / f"{name}_{suffix}.npy", key)
                  for name in _SPLITS for suffix in ("x", "labels")},
    }
    with disentangle.atomic_path(out_dir / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ----- the plug-in -------------------------------------------------------------------------------

class SpritesSplit(disentangle.ArraySplit):
    """One split: items ``{"x": FloatTensor(8, 3, R, R), "labels": {name: int}}``.

    The arrays are memory-mapped lazily (also after pickling into DataLoader workers).
    ``x`` is the uint8 ``(N, 8, R, R, 3)`` array and ``labels`` a dict of int arrays ``(N,)``.
    """

    def __init__(self, x_path: Path, labels_path: Path, length: int, scale: float):
        self._x_path, self._labels_path = Path(x_path), Path(labels_path)
        self._length = int(length)
        self._scale = float(scale)
        self._x: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def _open(self) -> None:
        # Threads (flow-grid labels) may open a fresh split at once: the labels are set before the
        # frames, and the frames are what marks the split as open.
        if self._x is None:
            try:
                labels = np.load(self._labels_path)[: self._length]
                x = np.load(self._x_path, mmap_mode="r")[: self._length]
            except (OSError, ValueError, EOFError) as exc:
                raise disentangle.DisentangleError(
                    f"sprites: cannot read the cached {self._x_path.parent}: {exc or type(exc).__name__}",
                    hint=f"`disentangle cache clear {self._x_path.parent}`; the next run rebuilds it") from None
            self._labels = labels
            self._x = x

    @property
    def x(self) -> np.ndarray:
        self._open()
        return self._x  # type: ignore[return-value]

    @property
    def labels(self) -> dict[str, np.ndarray]:
        self._open()
        return {name: self._labels[:, j].astype(np.int64) for j, name in enumerate(LABEL_COLUMNS)}

    def stored_x(self) -> np.ndarray:
        return self.x

    def stored_labels(self) -> dict[str, np.ndarray]:
        return {name: v for name, v in self.labels.items() if name in ITEM_LABELS}

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, 8, R, R, 3)`` -> float ``(B, 8, 3, R, R)`` = x / scale."""
        return x.permute(0, 1, 4, 2, 3).float().div_(self._scale)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, Any]:
        self._open()
        if not -self._length <= index < self._length:
            raise IndexError(f"index {index} out of range for a split of {self._length}")
        x = common.frames_to_float(self._x[index], self._scale)  # (T, 3, R, R)
        row = self._labels[index]
        return {"x": x, "labels": {name: int(row[j]) for j, name in enumerate(ITEM_LABELS)}}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_x"] = state["_labels"] = None
        return state


class Sprites(disentangle.SequenceData):
    """The Sprites benchmark (see the module docstring for the exact protocol)."""

    @attrs.frozen(kw_only=True)
    class Config:
        root: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
        """Folder with body/ bottomwear/ topwear/ hair/ shoes/ (e.g. shared/data/lpc-sprites)."""
        resolution: int = attrs.field(default=64, validator=disentangle.validators.one_of(64, 32))
        """Frame size: 64 (the benchmark) or 32 (2x2 mean, for CPU tests and fast runs)."""
        max_train: int | None = attrs.field(
            default=None, validator=attrs.validators.optional(disentangle.validators.positive_int))
        """Keep only the first N train rows (after the shuffle); unset keeps all 9000."""
        max_test: int | None = attrs.field(
            default=None, validator=attrs.validators.optional(disentangle.validators.positive_int))
        """Keep only the first N test rows (after the shuffle); unset keeps all 2664."""
        scale: Literal["255", "256"] = attrs.field(
            default="255", validator=disentangle.validators.one_of("255", "256"))
        """x = uint8 / scale. "255" gives [0, 1]; "256" is the original DSVAE pipeline's choice."""

    def __init__(self, config: "Sprites.Config", ctx: disentangle.BuildContext):
        self.config = config
        root = _check_root(config.root)
        check_split_file(root)  # also when a cache exists: a damaged split file is never ignored
        digests = layer_digests(root)
        self.key = disentangle.fingerprint("sprites", PROTOCOL_VERSION, config.resolution, digests)
        self.cache_path = Path(ctx.cache_dir) / f"sprites-{self.key}"
        manifest = self._read_manifest()
        if manifest is None:
            manifest = build(root, self.cache_path, config.resolution, key=self.key)
        r = config.resolution
        self.spec = disentangle.DataSpec(
            feature_shape=(3, r, r), seq_len=SEQ_LEN,
            static_factors={name: N_VARIANTS for name in STATIC_FACTORS},
            dynamic_factors={"action": len(ACTIONS), "direction": len(DIRECTIONS),
                             "dynamic": len(ACTIONS) * len(DIRECTIONS)},
        )
        self._scale = float(config.scale)
        limits = {"train": config.max_train, "test": config.max_test}
        self._splits = {}
        for name in _SPLITS:
            n = manifest["shapes"][f"{name}_x"][0]
            if limits[name] is not None:
                n = min(n, limits[name])
            self._splits[name] = SpritesSplit(self.cache_path / f"{name}_x.npy",
                                              self.cache_path / f"{name}_labels.npy", n, self._scale)

    def _read_manifest(self) -> dict[str, Any] | None:
        """The manifest of a finished, matching build in ``cache_path``, else None."""
        path = self.cache_path / "manifest.json"
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("key") != self.key or manifest.get("protocol_version") != PROTOCOL_VERSION:
            return None
        records = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
        for name in _SPLITS:
            for suffix in ("x", "labels"):
                file = self.cache_path / f"{name}_{suffix}.npy"
                reason = disentangle.verify_array(file, records.get(file.name), self.key)
                if reason is not None:
                    disentangle.note(f"sprites: the cached {file} {reason}; rebuilding the cache")
                    return None
        return manifest

    def split(self, name: str) -> SpritesSplit:
        if name not in self._splits:
            raise KeyError(f"unknown split {name!r}; expected one of {_SPLITS}")
        return self._splits[name]

    @property
    def fingerprint(self) -> str:
        c = self.config
        return disentangle.fingerprint(self.key, c.max_train, c.max_test, c.scale)

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        return common.to_images(x)

    def export(self, x: torch.Tensor) -> np.ndarray:
        """uint8 ``(B, T, H, W, 3)``: round(clamp(x) * scale), the inverse of the item scaling."""
        return common.export(x, self._scale)


@disentangle.hookimpl
def register_datasets(register):
    register("sprites", Sprites)
