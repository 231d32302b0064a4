"""Every command the docs and the results' JSON show still runs as written.

docs/results.md promises that each number regenerates from the command beside it. These tests read
each ``disentangle ...`` command (also as ``python -m`` or under ``torchrun``) and each
``python benchmarks/*.py ...`` in the README, docs/ (fenced shell blocks and inline code) and the
``command`` fields of benchmarks/results/**/*.json, and check it against the code without running
it:

- the subcommands and options exist (the CLI as built with the installed plug-ins; a benchmark
  script's options are the ones its source names);
- its ``--set`` overrides apply to each recipe the command names, together, and each variant the
  results write as ``[label: --set ...]`` on top of them (a command that names no recipe file,
  such as ``evaluate RUN``, has its ``train.*`` and ``eval.*`` overrides tried on the quickstart
  recipe);
- each override survives the shell: unquoted, a TOML string would lose its quotes, a table be
  brace-expanded, an array be read as a file pattern (zsh stops at one that matches nothing).

Placeholders are skipped: values with ``$``, ``…`` or ``...``, and upper-case stand-ins such as
``train.seed=S``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")  # may wrap onto the next line of its paragraph
OPTION = re.compile(r"^-{1,2}[A-Za-z][\w-]*")
COMMAND_NAME = re.compile(r"^[a-z][a-z-]*$")
PLACEHOLDER = re.compile(r"\$|…|\.\.\.|=[A-Z][A-Z_]*$")
SEPARATORS = {";", "&&", "||", "|", "&"}
PREFIX = re.compile(r"^([A-Za-z_]\w*=.*|\d+s?)$")  # VAR=value, or timeout's seconds
PYTHON = r"(\S*/)?python[\d.]*"
PREFIX_WORDS = {"do", "then", "time", "timeout", "nohup", "exec"}  # may come before a command


class Token(str):
    """A shell word with its quotes removed; ``raw`` is the text as written, ``bare`` the part of
    it outside quotes, which the shell expands."""

    raw: str
    bare: str
    variant: int = 0  # 0: the command itself; k: inside its k-th ``[label: ...]`` group

    @property
    def quoted(self) -> bool:
        return self.raw != self.bare


def _word(chars: list[str], raw: list[str], bare: list[str]) -> Token:
    token = Token("".join(chars))
    token.raw, token.bare = "".join(raw), "".join(bare)
    return token


def tokenize(line: str) -> list[Token]:
    """Split like a shell, but forgivingly: a quote opens only at the start of a word or after
    ``=`` / ``$`` (so prose such as ``z_f's`` stays one word), an unquoted ``#`` at the start of a
    word starts a comment, and ``;`` ends a command."""
    tokens: list[Token] = []
    chars: list[str] = []
    raw: list[str] = []
    bare: list[str] = []

    def end_word() -> None:
        if raw:
            tokens.append(_word(chars, raw, bare))
        chars.clear(), raw.clear(), bare.clear()

    i = 0
    while i < len(line):
        c = line[i]
        if c.isspace() or c == ";":
            end_word()
            if c == ";":
                tokens.append(_word([";"], [";"], [";"]))
        elif c == "#" and not raw:
            break
        elif c in "'\"" and (not raw or raw[-1] in "=$"):
            close = i + 1
            while close < len(line) and line[close] != c:
                close += 2 if c == '"' and line[close] == "\\" else 1  # \" inside "..."
            close = min(close, len(line))
            if raw and raw[-1] == "$":  # $'...': bash's ANSI-C quoting
                chars.pop(), raw.pop(), bare.pop()
            inside = line[i + 1:close]
            chars.extend(re.sub(r'\\([\\"$`])', r"\1", inside) if c == '"' else inside)
            raw.extend(line[i:close + 1])
            i = close
        else:
            chars.append(c), raw.append(c), bare.append(c)
        i += 1
    end_word()
    return tokens


def _unbracket(token: Token) -> Token:
    """Drop the ``[`` / ``]`` of the docs' ``[--set ...]`` and ``[label: --set ...]`` notation,
    not the brackets of a TOML array (those balance)."""
    text, raw, bare = str(token), token.raw, token.bare
    if raw.startswith("[") and raw.count("[") > raw.count("]"):
        text, raw, bare = text[1:], raw[1:], bare[1:]
    while raw.endswith("]") and raw.count("]") > raw.count("["):
        text, raw, bare = text[:-1], raw[:-1], bare[:-1]
    return _word(list(text), list(raw), list(bare))


def commands(line: str) -> list[list[Token]]:
    """The ``disentangle`` and ``python benchmarks/*.py`` commands in one line of shell (or of a
    result's ``command`` text), each from its program name on."""
    found: list[list[Token]] = []
    segment: list[Token] = []
    variant, inside = 0, False
    for token in [*tokenize(line), _word([";"], [";"], [";"])]:
        if token.bare in SEPARATORS:
            found.extend(_programs(segment))
            segment, variant, inside = [], 0, False
            continue
        opens = token.raw.startswith("[") and token.raw.count("[") > token.raw.count("]")
        closes = token.raw.endswith("]") and token.raw.count("]") > token.raw.count("[")
        if opens and not inside:
            variant, inside = variant + 1, True
        word = _unbracket(token)
        word.variant = variant if inside else 0
        segment.append(word)
        inside = inside and not closes
    return found


def _programs(segment: list[Token]) -> list[list[Token]]:
    """The command a segment runs, from ``disentangle`` (or the benchmark script) on; none if it
    runs something else. ``python -m disentangle`` and ``torchrun ... -m disentangle`` count."""
    for i, token in enumerate(segment):
        if i and not (PREFIX.match(segment[i - 1]) or segment[i - 1] in PREFIX_WORDS):
            return []
        rest = segment[i + 1:]
        launcher = token == "torchrun" or rest[:2] == ["-m", "torch.distributed.run"]
        if launcher or (re.fullmatch(PYTHON, token) and rest[:1] == ["-m"]):
            for j in range(len(rest) - 2):  # the launcher's own options, then -m disentangle COMMAND
                if rest[j] == "-m" and rest[j + 1] == "disentangle" and COMMAND_NAME.match(rest[j + 2]):
                    return [rest[j + 1:]]
            return []
        if token == "disentangle" or token.endswith("/disentangle"):
            return [segment[i:]] if rest and COMMAND_NAME.match(rest[0]) else []
        if re.fullmatch(PYTHON, token):
            return [rest] if rest and re.fullmatch(r"benchmarks/\w+\.py", rest[0]) else []
    return []


def _options(command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        if param.param_type_name == "option":
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def _cli():
    from disentangle.cli import build_app

    return typer.main.get_command(build_app())


def problems(command: list[Token], cli) -> list[str]:
    """What is wrong with one command; empty if it would run as written."""
    if command[0].startswith("benchmarks/"):
        return _script_problems(command)
    group, i, where = cli, 1, "disentangle"
    while getattr(group, "commands", None) is not None and i < len(command):
        token = command[i]
        if OPTION.match(token):
            i += 1
            continue
        if token not in group.commands:
            return [f"`{where}` has no command {token!r}"]
        group, where, i = group.commands[token], f"{where} {token}", i + 1
    known = _options(group)
    found = [f"`{where}` has no option {m.group(0)}" for token in command[i:]
             if (m := OPTION.match(token)) and m.group(0) not in known]
    return found + _override_problems(command[i:], where)


def _script_problems(command: list[Token]) -> list[str]:
    script = ROOT / command[0]
    if not script.is_file():
        return [f"no script {command[0]}"]
    known = set(re.findall(r"""["'](--?[A-Za-z][\w-]*)["']""", script.read_text())) | {"--help"}
    return [f"{command[0]} has no option {m.group(0)}" for token in command[1:]
            if (m := OPTION.match(token)) and m.group(0) not in known] + _override_problems(command[1:], command[0])


def _overrides(args: list[Token]) -> list[Token]:
    """The values of ``--set VALUE``, ``-s VALUE`` and ``--set=VALUE``, in order."""
    found = []
    for flag, value in zip(args, [*args[1:], None]):
        if flag in ("--set", "-s") and value is not None:
            found.append(value)
        elif flag.startswith("--set="):
            value = _word(list(flag[6:]), list(flag.raw[6:]), list(flag.bare[6:]))
            value.variant = flag.variant
            found.append(value)
    return found


def _override_problems(args: list[Token], where: str) -> list[str]:
    """Shell-safety of every override, and the overrides applied to the recipes the command names
    (to the quickstart recipe, for the train and eval keys of a command that names none): the
    command's own together, and each ``[label: ...]`` variant on top of them."""
    from disentangle.errors import DisentangleError
    from disentangle.recipe import RecipeError, load_recipe

    overrides = _overrides(args)
    found = [f"`{where}`: quote --set {value.raw}: a shell would strip its quotes, expand its braces "
             "or read its brackets as a file pattern"
             for value in overrides if re.search(r'["{}\[\]*?]', value.bare)]
    usable = [v for v in overrides if not PLACEHOLDER.search(v)]
    recipes = [ROOT / a for a in args if a.endswith(".toml") and (ROOT / a).is_file()]
    if not recipes:
        recipes = [ROOT / "recipes" / "quickstart.toml"]
        usable = [v for v in usable if v.split(".")[0] in ("train", "eval")]
    own = [str(v) for v in usable if v.variant == 0]
    variants = sorted({v.variant for v in usable} - {0})
    trials = [own] + [own + [str(v) for v in usable if v.variant == k] for k in variants]
    for recipe in recipes:
        for sets in trials if usable else []:
            try:
                load_recipe(recipe, sets)
            except DisentangleError as exc:
                lines = exc.message.splitlines()
                reason = " ".join(lines[1:] if isinstance(exc, RecipeError) and len(lines) > 1 else lines)
                found.append(f"`{where} {recipe.relative_to(ROOT)}` with --set {' --set '.join(sets)}: {reason}")
    return found


def _json_commands(obj, key: str = ""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_commands(v, key if key.startswith("command") else k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _json_commands(v, key)
    elif isinstance(obj, str) and key.startswith("command"):
        yield from obj.replace("\\\n", " ").splitlines()


def _page_lines(text: str):
    for lang, body in FENCE.findall(text):
        if lang in ("", "bash", "console", "sh", "shell"):
            for line in re.sub(r"\\\n", " ", body).splitlines():
                line = line.strip()
                if line.startswith("$ "):
                    yield line[2:]
                elif lang != "console":  # a console block's other lines are output
                    yield line
    yield from (" ".join(span.split()) for span in INLINE.findall(FENCE.sub("", text)) if "\n\n" not in span)


def source_lines(path: Path):
    if path.suffix == ".json":
        return list(_json_commands(json.loads(path.read_text())))
    return list(_page_lines(path.read_text()))


SOURCES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "benchmarks").glob("*.md"),
                  *(ROOT / "benchmarks" / "results").rglob("*.json")])
WITH_COMMANDS = [p for p in SOURCES if any(commands(line) for line in source_lines(p))]


@pytest.fixture(scope="module")
def cli():
    return _cli()


def test_the_docs_and_results_show_commands():
    names = {p.relative_to(ROOT).as_posix() for p in WITH_COMMANDS}
    assert {"README.md", "docs/results.md", "docs/recipes.md"} <= names
    assert sum(p.suffix == ".json" for p in WITH_COMMANDS) >= 10


@pytest.mark.parametrize("path", WITH_COMMANDS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_runs_as_written(path: Path, cli):
    found = [f"{problem}\n    in: {' '.join(t.raw for t in command)[:160]}"
             for line in source_lines(path) for command in commands(line)
             for problem in problems(command, cli)]
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


@pytest.mark.parametrize("line, expected", [
    ("disentangle evalute RUN", "has no command 'evalute'"),
    ("disentangle judge train recipes/quickstart.toml --epoch 3", "has no option --epoch"),
    ("OMP_NUM_THREADS=1 python benchmarks/speech_eer.py runs/a --outt x.json", "has no option --outt"),
    ("python benchmarks/nothing_here.py", "no script"),
    ("torchrun --nproc_per_node=2 -m disentangle run recipes/quickstart.toml --devise cpu",
     "no option --devise"),
    ("python -m disentangle sampel RUN", "has no command 'sampel'"),
    ("disentangle run recipes/quickstart.toml --set model.z_f_dimm=8", "z_f_dimm"),
    ("disentangle run recipes/quickstart.toml --set train.seed=0 "
     "[no-mi: --set 'regularizers=[{use=\"nope\"}]']", "nope"),
    ("disentangle run recipes/timit.toml --set regularizers=[{use=\"triplet-scc\",weight=1.0}]",
     "quote --set"),
    ("cd x && disentangle run recipes/quickstart.toml --set train.max_steps=ten; echo done", "max_steps"),
    ("disentangle run recipes/quickstart.toml --set 'tasks=[]' --set tasks.0.weight=2", "tasks.0"),
    ("disentangle run recipes/quickstart.toml --set model.encoder.channels=[16,32]", "quote --set"),
    ("disentangle evaluate RUN --set eval.images=false,", "eval.images"),
    ("disentangle run recipes/quickstart.toml --set=train.lr=abc", "train.lr"),
    ("disentangle validate recipes/quickstart.toml recipes/fsdd.toml --set tasks.0.grid=2", "fsdd.toml"),
    ("python benchmarks/throughput.py recipes/quickstart.toml --set train.lrr=1", "lrr"),
])
def test_a_broken_command_is_caught(line: str, expected: str, cli):
    found = [p for command in commands(line) for p in problems(command, cli)]
    assert any(expected in p for p in found), found


@pytest.mark.parametrize("line", [
    "disentangle run recipes/quickstart.toml --set 'eval.metrics=[{use=\"reconstruction\"}]' --run-dir x",
    "disentangle run recipes/quickstart.toml --set train.seed=S [baseline's: --set 'tasks=[]']",
    "disentangle run recipes/quickstart.toml --set \"train.seed=$S\" --set 'model.encoder.channels=[16,32]'",
    "disentangle validate recipes/*.toml [--set KEY.PATH=VALUE ...]",
    "then disentangle run, same settings",
    "disentangle run recipes/quickstart.toml --set 'tasks=[{use=\"flow-grid\"}]' --set tasks.0.grid=2",
    "disentangle run recipes/quickstart.toml [baseline: --set 'tasks=[]'] [fg: --set tasks.0.weight=1000]",
    "disentangle validate recipes/quickstart.toml --set \"eval.metrics=[{use=\\\"reconstruction\\\"}]\"",
])
def test_a_good_command_passes(line: str, cli):
    assert [p for command in commands(line) for p in problems(command, cli)] == []


def test_tokenize_keeps_prose_apostrophes_and_shell_quotes():
    words = tokenize("""X=1 disentangle run r.toml --set 'a=[{b="c"}]' --set z_f's $'p|q\\n' # note""")
    assert [str(w) for w in words] == ["X=1", "disentangle", "run", "r.toml", "--set", 'a=[{b="c"}]',
                                       "--set", "z_f's", "p|q\\n"]
    assert [w.quoted for w in words][5:] == [True, False, False, True]
    assert words[5].bare == "" and words[7].bare == "z_f's"
