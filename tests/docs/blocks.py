"""Fenced code blocks of the README and docs/*.md, with the marker comment before each.

A marker is an HTML comment on the line right before a fence (invisible in the rendered
page, visible in the source):

* ``<!-- not run: REASON -->``: the block needs what the test machine lacks (a GPU, a
  remote server, a package); the reason is required.
* ``<!-- continues the block above -->``: a Python block run after the page's previous
  Python block, in the same program (the page reads as one session).
* ``<!-- file: NAME -->``: the block is the content of a file the page's later commands
  read; it is written under NAME in the page's working directory.
* ``<!-- run: ... -->``: run elsewhere, by the test the comment names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")
MARKER = re.compile(
    r"^\s*<!--\s*(?P<kind>not run|continues|file|run)\b:?\s*(?P<text>.*?)\s*-->\s*$"
)


@dataclass(frozen=True)
class Block:
    """One fenced block: its page, first line (1-based), language, text and marker."""

    page: Path
    line: int
    lang: str
    text: str
    marker: str | None = None
    marker_text: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        indent = len(opening["indent"])
        text = "\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n"
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        found.append(
            Block(
                page=page,
                line=i + 1,
                lang=opening["lang"] or "text",
                text=text,
                marker=marker["kind"] if marker else None,
                marker_text=marker["text"] if marker else "",
            )
        )
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]
