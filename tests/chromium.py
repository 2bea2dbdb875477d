"""A real headless browser for tests: Debian's Chromium (`make chromium` installs it).

`dom(url)` is the document as Chromium built it after loading `url` (`--dump-dom`), parsed into a
small tree to query. What a test finds there is what a person's browser shows: markup that was
escaped is text, not elements, and nothing a script might have changed is hidden.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in CI containers, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


def binary() -> str:
    """Chromium's path ($CHROMIUM, else `chromium` on PATH); fails (never skips) without it."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed: run `make chromium` (apt-get install chromium)")
    return path


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None) -> Iterator[Element]:
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter(tag)

    def find_all(self, tag: str, cls: str | None = None, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.iter(tag)
            if (cls is None or cls in e.attrs.get("class", "").split())
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str, cls: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag}> with class={cls!r} {attrs} in the page"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def dom(url: str, timeout: float = 60) -> Element:
    """Load `url` in a fresh headless Chromium profile and return the resulting document."""
    with tempfile.TemporaryDirectory(prefix="atalaia-chromium-") as profile:
        result = subprocess.run(
            [binary(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip(), f"Chromium rendered nothing for {url}: {result.stderr[-2000:]}"
    builder = _TreeBuilder()
    builder.feed(result.stdout)
    builder.close()
    return builder.root
