"""Every relative link in the README and docs/ points at a file that exists, and every #anchor at a
heading of that file (GitHub's heading ids), so moving a file or renaming a heading breaks a test,
not a reader's click; a page's "## Contents" lists its headings."""

import functools
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


@functools.cache
def headings(page: Path) -> tuple[tuple[int, str, str], ...]:
    """(level, title, GitHub's id) of each heading of a page, in order (read once per page): the id is
    the title in lower case, punctuation dropped, spaces to hyphens, repeats numbered -1, -2, ..."""
    seen: Counter[str] = Counter()
    found = []
    for line in FENCE.sub("", page.read_text()).splitlines():
        m = re.match(r"(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        title = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", lambda g: g.group(1) or "", m.group(2))
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        found.append((len(m.group(1)), title, f"{slug}-{seen[slug]}" if seen[slug] else slug))
        seen[slug] += 1
    return tuple(found)


@functools.cache
def heading_ids(page: Path) -> frozenset[str]:
    """The ids of a page's headings, for the links that point at them."""
    return frozenset(anchor for _, _, anchor in headings(page))


def links():
    for page in PAGES:
        for target in LINK.findall(prose(page.read_text())):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked
                yield pytest.param(page, target, id=f"{page.relative_to(ROOT)}->{target}")


@pytest.mark.parametrize("page, target", list(links()))
def test_link_resolves(page: Path, target: str):
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
    if anchor and dest.suffix == ".md":
        assert anchor in heading_ids(dest), \
            f"{page.relative_to(ROOT)} links to {target}: {dest.name} has no heading with that id"


def test_pages_have_links():
    assert len(list(links())) > 20  # the link pattern still matches what the docs write


CONTENTS_ENTRY = re.compile(r"^( *)- \[(.+)\]\(#([^)]+)\)$")


@pytest.mark.parametrize("page", [p for p in PAGES if "\n## Contents\n" in p.read_text()], ids=lambda p: p.name)
def test_contents_lists_every_heading(page: Path):
    """A page's "## Contents" lists each heading after it down to ####, in order, nested by level, so
    that a section added without its entry (or an entry left behind) fails."""
    text = page.read_text()
    listed = text.split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
    entries = []
    for line in listed.strip().splitlines():
        m = CONTENTS_ENTRY.match(line)
        assert m, f"{page.name}: not a contents entry: {line!r}"
        entries.append((2 + len(m.group(1)) // 2, m.group(2), m.group(3)))
    after = list(headings(page))
    after = after[[title for _, title, _ in after].index("Contents") + 1:]
    want = [(level, title, anchor) for level, title, anchor in after if level <= 4]
    assert entries == want, f"{page.name}: its contents and its headings differ"
