"""Generate the allowed-option trees of Loki and Tempo from their documented config reference.

Loki, Tempo and Grafana are AGPL: this project never fetches, builds or runs them outside their
images, so their configs cannot be checked with `loki -verify-config` / `tempo -config.verify`.
Instead `tools.config_check` checks loki/loki.yaml and tempo/tempo.yaml against the option names
of the pinned release's documented configuration reference, kept as data in
tests/config/data/<component>-<version>.keys.yaml. This script writes that data; it reads the
upstream documentation (never code) from a checkout or a bare git directory, and keeps only
option names, their value kinds and documented value lists, never the documentation's text.

Re-run it when a pin in versions.env changes, e.g.:

    python -m tools.config_keys loki --version 3.7.8 --git-dir <loki clone>/.git --rev v3.7.8
    python -m tools.config_keys tempo --version 2.9.0 --git-dir <tempo clone>/.git --rev v2.9.0 \\
        --otel-git-dir <opentelemetry-collector clone>/.git

(--docs DIR instead of --git-dir/--rev reads a checkout as it is.) For Tempo, the OpenTelemetry
Collector reference is read at the otlpreceiver version Tempo's go.mod requires, unless --otel-rev
says otherwise. --note adds a line to the header (say why, if the tag read is not the pin's).

Data format (YAML, under `keys:`):
- a mapping is a block of options;
- a one-element list holds the block that each list item is (e.g. schema_config.configs[]);
- a mapping with the single key `<name>` is a map from any name to that block;
- a string is a leaf's kind: boolean, int, number, float, duration, string, list, map, any,
  `enum(a|b)` (one of the documented values; an empty value is allowed if listed),
  `enum-list(a|b)` (a comma-separated string of such values) or `enum-items(a|b)` (a list of them).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import yaml

from tools.upstream import REPO

Node: TypeAlias = "str | dict[str, Node] | list[Node]"
Tree: TypeAlias = "dict[str, Node]"

DATA_DIR = REPO / "tests" / "config" / "data"
WILDCARD = "<name>"
# Leaf kinds that say nothing about the value's shape: a documented block replaces them on merge.
WEAK = frozenset({"any", "map", "list"})

LOKI_REPO = "grafana/loki"
LOKI_REFERENCE = "docs/sources/shared/configuration.md"
TEMPO_REPO = "grafana/tempo"
TEMPO_MANIFEST = "docs/sources/tempo/configuration/manifest.md"
TEMPO_INDEX = "docs/sources/tempo/configuration/_index.md"
# stream_over_http_enabled is documented (as a YAML snippet) only in the API reference.
TEMPO_API_DOCS = "docs/sources/tempo/api_docs/_index.md"
OTEL_REPO = "open-telemetry/opentelemetry-collector"
OTLP_RECEIVER_MODULE = "go.opentelemetry.io/collector/receiver/otlpreceiver"
OTLP_RECEIVER_REFERENCE = "receiver/otlpreceiver/config.md"
OTEL_GRPC_README = "config/configgrpc/README.md"
OTEL_HTTP_README = "config/confighttp/README.md"
OTEL_NET_README = "config/confignet/README.md"


# ---------------------------------------------------------------------------------------------
# Reading upstream documentation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DocSource:
    """Upstream documentation files: from a bare git directory at a revision, or a checkout."""

    repo: str  # owner/name, for the data header
    rev: str  # the tag (or branch) read
    git_dir: Path | None = None
    docs_dir: Path | None = None

    def read(self, path: str) -> str:
        if self.git_dir is not None:
            return _git(self.git_dir, "show", f"{self.rev}:{path}")
        assert self.docs_dir is not None
        return (self.docs_dir / path).read_text()

    def commit(self) -> str:
        if self.git_dir is not None:
            return _git(self.git_dir, "rev-parse", f"{self.rev}^{{commit}}").strip()
        return "unknown (read from a checkout)"

    def describe(self, path: str) -> dict[str, str]:
        return {"repo": self.repo, "path": path, "rev": self.rev, "commit": self.commit()}


def _git(git_dir: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} in {git_dir} failed: {proc.stderr.strip()}")
    return proc.stdout


def fenced_blocks(markdown: str) -> Iterator[tuple[int, str, str]]:
    """(offset, heading, text) of every ```yaml block: where it starts, the nearest heading
    above it, and its text."""
    heading, block, lang, start, offset = "", list[str](), None, 0, 0
    for line in markdown.splitlines(keepends=True):
        if lang is None:
            if line.startswith("#"):
                heading = line.strip().strip("#").strip()
            elif line.startswith("```"):
                lang, block, start = line[3:].strip(), [], offset
        elif line.startswith("```"):
            if lang == "yaml":
                yield start, heading, "".join(block)
            lang = None
        else:
            block.append(line)
        offset += len(line)


# ---------------------------------------------------------------------------------------------
# Leaf kinds and documented value lists
# ---------------------------------------------------------------------------------------------
_SCALAR_KINDS = {
    "boolean": "boolean",
    "bool": "boolean",
    "int": "int",
    "uint": "int",
    "uint32": "int",
    "uint64": "int",
    "float": "float",
    "float64": "float",
    "duration": "duration",
    "string": "string",
    "secret string": "string",
    "url": "string",
    "time": "string",
    "daytime": "string",
    "regexp": "string",
    "comma separated strings": "string",
    "any": "any",
}

_VALUE_LISTS = (
    re.compile(r"(?:Supported|Allowed|Valid) values(?: are)?:\s*(?P<values>.+?)(?:\.(?:\s|$)|$)"),
    re.compile(r"\bCan be one of:?\s*(?P<values>.+?)(?:\.(?:\s|$)|$)"),
    re.compile(r"\b[Oo]ptions:\s*(?P<values>.+?)(?:\.(?:\s|$)|$)"),
    re.compile(r"\ballows one of \[(?P<values>[^\]]+)\]"),
    # a bullet list in the comment: "The following processors are supported: - a - b"
    re.compile(r"\bare supported:\s*(?P<bullets>(?:-\s+[\w.-]+\s*)+)"),
)
_ALSO_ALLOWED = re.compile(r"\badditionally allows (?P<value>[\w.-]+)")
_VALUE = re.compile(r"^[\w.-]*$")


def documented_values(doc: str) -> list[str] | None:
    """The value list a comment documents for an option, if it gives a complete one.

    Only lists of plain tokens count; a comment that points to a fuller list elsewhere
    ("A full list of ... can be printed") documents examples, not the allowed values.
    """
    if "full list" in doc.lower():
        return None
    for pattern in _VALUE_LISTS:
        match = pattern.search(doc)
        if not match:
            continue
        if "bullets" in pattern.groupindex:
            items = re.findall(r"-\s+([\w.-]+)", match["bullets"])
        else:
            items = re.split(r",\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+", match["values"].strip())
        values = [item.strip().strip("'\"`").rstrip(".") for item in items]
        if not values or not all(_VALUE.match(v) for v in values):
            return None
        values += [m["value"] for m in _ALSO_ALLOWED.finditer(doc)]
        return sorted(set(values))
    return None


def enum_kind(values: list[str], form: str = "enum") -> str:
    """`enum(a|b)`: one value; `enum-list(a|b)`: a comma-separated string of them;
    `enum-items(a|b)`: a YAML list of them."""
    return f"{form}({'|'.join(values)})"


def list_kind(doc: str) -> str:
    """A list of strings, restricted to the values its comment documents if it lists them."""
    values = documented_values(doc)
    return enum_kind(values, "enum-items") if values else "list"


# ---------------------------------------------------------------------------------------------
# A lenient parser for the reference notation both projects use in their docs:
#   [name: <type> | default = ...]   an option
#   name:                            an inline block (its options indented below)
#   name: <type>                     a block or option given by type, maybe with options below
#   [<block_name>]                   the options of a named block, inlined here (Loki)
#   [: <type>]                       the enclosing key itself has this type (Loki)
#   - [name: <type>]                 the enclosing key is a list of blocks (Tempo)
# ---------------------------------------------------------------------------------------------
@dataclass
class Raw:
    """One documented key before named blocks are resolved."""

    type: str | None = None  # the type as written (`<...>` stripped), None for a bare `name:`
    doc: str = ""  # the comment above it
    children: dict[str, Raw] = field(default_factory=dict)
    embeds: list[str] = field(default_factory=list)  # [<block_name>] lines
    is_list: bool = False  # items are blocks (`- ...` lines below it)
    scalar_items: bool = False  # `- <value>` lines below it: a list of scalars

    def child(self, name: str, raw: Raw) -> Raw:
        if name in self.children:
            merged = self.children[name]
            merged.children.update(raw.children)
            merged.type = merged.type or raw.type
            return merged
        self.children[name] = raw
        return raw


_OPTION = re.compile(r"^\[\s*(?P<name>[\w.-]*)\s*:\s*(?P<rest>.*?)\]*:?$")
_EMBED = re.compile(r"^\[<(?P<name>[\w.-]+)>\]$")
_KEY = re.compile(r"^(?P<name>[\w./-]+):(?:\s+(?P<rest>.*))?$")
_SCALAR_ITEM = re.compile(r"^-\s*(?:<.*>|\(.*\))\s*$")
_LIST_OF = re.compile(r"^\[-\s*<(?P<type>.+)>\s*\]$")


def _type_of(rest: str | None) -> str | None:
    """`<duration> | default = 5s` -> `duration`; `10s` -> `any`; empty -> None."""
    if not rest:
        return None
    rest = rest.strip()
    if rest.startswith("<"):
        return rest[1 : rest.index(">")] if ">" in rest else rest[1:]
    if rest.startswith("["):  # `ingestion: [rate_strategy: ...]`, handled by the caller
        return None
    return "any"


def parse_reference(text: str, root: Raw | None = None) -> Raw:
    """Parse a block of reference notation into a Raw tree (leniently: skips what it can't read)."""
    root = root or Raw()
    # stack of (indent of the key, the Raw whose children the next deeper lines are)
    stack: list[tuple[int, Raw]] = [(-1, root)]
    last: tuple[int, Raw] | None = None  # the most recent key, which deeper lines belong to
    doc: list[str] = []
    for raw_line in text.splitlines():
        if raw_line.strip() == "---":  # a second document describes another file
            break
        stripped = raw_line.strip()
        if not stripped:
            doc = []
            continue
        if stripped.startswith("#"):
            doc.append(stripped.lstrip("#").strip())
            continue
        line = re.sub(r"\s+#.*$", "", raw_line.rstrip())
        indent = len(line) - len(line.lstrip())
        content = line.strip().rstrip(",")
        if content == "]":
            continue
        is_item = content == "[" or content.startswith("- ") or content == "-"
        if last is not None and (indent > last[0] or (is_item and indent >= last[0])):
            stack.append(last)
        while stack[-1][0] > indent or (stack[-1][0] == indent and not is_item):
            stack.pop()
        parent = stack[-1][1]
        last = None
        if _SCALAR_ITEM.match(content):
            parent.scalar_items = True
            continue
        if m := _LIST_OF.match(content):
            parent.is_list, parent.type = True, m["type"]
            continue
        if is_item:
            parent.is_list = True
            content = content[1:].strip()
            item_indent = indent + (len(line.strip()) - len(line.strip()[1:].lstrip()))
            if not content:
                continue
            indent = item_indent
        entry_doc, doc = " ".join(doc), []
        if m := _EMBED.match(content):
            parent.embeds.append(m["name"])
            continue
        m = _OPTION.match(content) or _KEY.match(content)
        if m is None:
            continue
        name, rest = m["name"], m["rest"]
        if name == "":  # `[: <map of string to Header>]`: the enclosing key's own type
            parent.type = _type_of(rest)
            continue
        # `include/exclude:` documents two keys with the same options.
        node = Raw(type=_type_of(rest), doc=entry_doc)
        for alternative in name.split("/"):
            node = parent.child(alternative, node)
        if rest and rest.strip().startswith("[") and (inner := _OPTION.match(rest.strip())):
            node.child(inner["name"], Raw(type=_type_of(inner["rest"]), doc=entry_doc))
        last = (indent, node)
    return root


# ---------------------------------------------------------------------------------------------
# Merging trees
# ---------------------------------------------------------------------------------------------
def merge(a: Node, b: Node) -> Node:
    """Union of two documented trees. Structure beats an opaque leaf; `a` wins between leaves,
    except that a documented value list refines a plain string."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = merge(out[key], value) if key in out else value
        return out
    if isinstance(a, list) and isinstance(b, list):
        return [merge(a[0], b[0])]
    if isinstance(a, str) and isinstance(b, str):
        if a in WEAK | {"string"} and b.startswith("enum"):
            return b
        if a == "any" or (a in WEAK and b not in WEAK):
            return b
        return a
    if isinstance(a, str) and a in WEAK:
        return b
    if isinstance(b, str) and b in WEAK:
        return a
    return a if isinstance(a, dict | list) else b


def count_keys(node: Node) -> int:
    """Number of documented option names in a tree (every key at every depth)."""
    if isinstance(node, dict):
        return sum(1 + count_keys(v) for v in node.values())
    if isinstance(node, list):
        return count_keys(node[0])
    return 0


# ---------------------------------------------------------------------------------------------
# Loki: docs/sources/shared/configuration.md (generated by Loki from its config structs)
# ---------------------------------------------------------------------------------------------
class LokiReference:
    """The root block and the named blocks (`### name` sections) of Loki's reference."""

    ROOT = "Supported contents and default values of `loki.yaml`"

    def __init__(self, markdown: str) -> None:
        start = markdown.index("## Configuration file reference")
        end = markdown.find("\n## ", start + 1)
        self.blocks: dict[str, Raw] = {}
        for _, heading, text in fenced_blocks(markdown[start : end if end > 0 else None]):
            # Sections may open with an example; the reference block is the one in [..] notation.
            if not re.search(r"^\s*\[", text, re.MULTILINE):
                continue
            name = "" if heading == self.ROOT else heading
            self.blocks[name] = parse_reference(text, self.blocks.get(name))
        if "" not in self.blocks:
            raise SystemExit("no root block found: has the reference's layout changed?")

    def tree(self) -> Tree:
        tree = self._resolve_block(self.blocks[""], ())
        assert isinstance(tree, dict)
        return tree

    def _resolve_block(self, raw: Raw, seen: tuple[str, ...]) -> Node:
        tree: Tree = {}
        for name in raw.embeds:
            embedded = self._named(name, seen)
            if isinstance(embedded, dict):
                tree = _as_tree(merge(tree, embedded))
        for key, child in raw.children.items():
            tree[key] = self._resolve(child, seen)
        return tree

    def _resolve(self, raw: Raw, seen: tuple[str, ...]) -> Node:
        if raw.children or raw.embeds:
            block = self._resolve_block(raw, seen)
            return [block] if raw.is_list else block
        return self._kind(raw.type or "any", raw.doc, seen)

    def _named(self, name: str, seen: tuple[str, ...]) -> Node:
        if name in seen:
            raise SystemExit(f"named block {name} refers to itself: {' -> '.join(seen)}")
        return self._resolve_block(self.blocks[name], (*seen, name))

    def _kind(self, type_: str, doc: str, seen: tuple[str, ...]) -> Node:
        t = type_.strip()
        if t in self.blocks:
            return self._named(t, seen)
        if (m := re.fullmatch(r"list of (\w+?)s", t)) and m[1] in self.blocks:
            return [self._named(m[1], seen)]
        if (m := re.fullmatch(r"map of string to (\w+)", t)) and m[1] in self.blocks:
            return {WILDCARD: self._named(m[1], seen)}
        if t == "list of strings":
            return list_kind(doc)
        if t.startswith("list of") or t.endswith("..."):
            return "list"
        if t.startswith("map of") or t in {"headers", "RemoteWriteConfig"}:
            return "map"
        kind = _SCALAR_KINDS.get(t.lower(), "any")
        if kind == "string" and (values := documented_values(doc)):
            return enum_kind(values, "enum-list" if "comma-separated list" in doc else "enum")
        return kind


def _as_tree(node: Node) -> Tree:
    assert isinstance(node, dict)
    return node


# ---------------------------------------------------------------------------------------------
# Tempo: the manifest (every option with its default, generated by Tempo) and the hand-written
# reference (_index.md), which documents options the manifest omits because they are empty.
# ---------------------------------------------------------------------------------------------
_GO_DURATION = re.compile(r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_IDENT = re.compile(r"^[A-Za-z_][\w.-]*$")


def manifest_tree(value: Any) -> Node:
    """Kinds from a complete default configuration: structure from mappings, kinds from values."""
    if isinstance(value, dict):
        if not value or not all(isinstance(k, str) and _IDENT.match(k) for k in value):
            return "map"  # empty, or keyed by data rather than option names
        return {k: manifest_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"  # the manifest prints 0 for a float option too
    if isinstance(value, str):
        return "duration" if _GO_DURATION.match(value) else "string"
    return "any"  # null: an optional block or value


class TempoReference:
    """Named blocks from `## Configuration blocks` and the option blocks of Tempo's reference."""

    # The reference names some blocks differently where it uses them and where it defines them.
    ALIASES: ClassVar[dict[str, str]] = {"filter policies config": "filter policy"}

    def __init__(self, markdown: str) -> None:
        self.named: dict[str, Raw] = {}
        self.root = Raw()
        named_start = markdown.index("\n## Configuration blocks")
        named_end = markdown.find("\n## ", named_start + 1)
        named_end = named_end if named_end > 0 else len(markdown)
        for offset, heading, text in fenced_blocks(markdown):
            # Only the reference notation counts: plain YAML blocks are examples, and some of
            # them use names the reference does not document.
            if not re.search(r"^\s*-?\s*\[\s*[\w.-]*\s*:|:\s+<[^>]+>", text, re.MULTILINE):
                continue
            if named_start < offset < named_end:
                self.named[heading.lower()] = parse_reference(text)
            else:
                parse_reference(text, self.root)

    def tree(self) -> Tree:
        return _as_tree(self._resolve_block(self.root, ()))

    def _resolve_block(self, raw: Raw, seen: tuple[str, ...]) -> Node:
        tree: Tree = {}
        for key, child in raw.children.items():
            tree[key] = self._resolve(child, seen)
        return tree

    def _resolve(self, raw: Raw, seen: tuple[str, ...]) -> Node:
        typed = self._kind(raw.type, raw.doc, seen) if raw.type else "any"
        if raw.children:
            own = self._resolve_block(raw, seen)
            if isinstance(typed, list):
                return [merge(own, typed[0])]
            node = merge(own, typed) if isinstance(typed, dict) else own
            return [node] if raw.is_list else node
        if raw.scalar_items or (raw.is_list and not isinstance(typed, list)):
            return "list"
        return typed

    def _block_name(self, type_: str) -> str | None:
        t = type_.lower().removeprefix("list of ").strip()
        t = self.ALIASES.get(t, t)
        return t if t in self.named else None

    def _kind(self, type_: str, doc: str, seen: tuple[str, ...]) -> Node:
        t = type_.strip()
        if name := self._block_name(t):
            if name in seen:
                raise SystemExit(f"named block {name} refers to itself")
            block = self._resolve_block(self.named[name], (*seen, name))
            return [block] if t.lower().startswith("list of") else block
        if "|" in t and re.fullmatch(r"[\w.-]+(\|[\w.-]+)+", t):  # <global|local>
            return enum_kind(sorted(t.split("|")))
        if re.fullmatch(r"list of strings?", t.lower()):
            return list_kind(doc)
        if t.lower().startswith("list of"):
            return "list"
        if t.lower().startswith("map"):
            return "map"
        kind = _SCALAR_KINDS.get(t.lower(), "any")
        if kind == "string" and (values := documented_values(doc)):
            return enum_kind(values)
        return kind


def yaml_examples(markdown: str) -> Node:
    """Option names from plain YAML snippets (each key's kind from its example value)."""
    tree: Node = {}
    for _, _, text in fenced_blocks(markdown):
        data = yaml.safe_load(text)
        if isinstance(data, dict):
            tree = merge(tree, manifest_tree(data))
    return tree


# ---------------------------------------------------------------------------------------------
# The OpenTelemetry Collector's OTLP receiver, which Tempo embeds as distributor.receivers.otlp
# ---------------------------------------------------------------------------------------------
_TABLE_ROW = re.compile(r"^\|\s*(?P<name>[\w.-]+)\s*\|\s*(?P<type>[^|]*?)\s*\|")
_LINK = re.compile(r"\[[^\]]*\]\(#(?P<anchor>[\w-]+)\)")


def otel_config_tables(markdown: str) -> Tree:
    """The receiver's `config.md`: one table per struct (`### name`), rows name | type | ..."""
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in markdown.splitlines():
        if line.startswith("### "):
            current = tables.setdefault(line[4:].strip().lower(), {})
        elif current is not None and (m := _TABLE_ROW.match(line)):
            header = m["name"] == "Name" or not m["name"].strip("-")
            current.update({} if header else {m["name"]: m["type"]})

    def resolve(table: str, seen: tuple[str, ...]) -> Tree:
        out: Tree = {}
        for name, type_ in tables[table].items():
            if m := _LINK.search(type_):
                anchor = m["anchor"]
                if anchor in tables and tables[anchor] and anchor not in seen:
                    out[name] = resolve(anchor, (*seen, anchor))
                else:
                    out[name] = "duration" if "duration" in anchor else "any"
            elif type_.startswith("[]"):
                out[name] = "list"
            elif type_.startswith("map"):
                out[name] = "map"
            else:
                out[name] = _SCALAR_KINDS.get(type_.lower(), "number" if "int" in type_ else "any")
        return out

    return resolve("config", ("config",))


def otel_readme_settings(markdown: str, section: str | None) -> Tree:
    """Top-level `- `name`` bullets of a README (or of one `## section` of it)."""
    if section is not None:
        start = markdown.index(f"## {section}")
        end = markdown.find("\n## ", start + 1)
        markdown = markdown[start : end if end > 0 else None]
    names = re.findall(r"^- \[?`([\w.-]+)`", markdown, re.MULTILINE)
    return dict.fromkeys(names, "any")


# ---------------------------------------------------------------------------------------------
# Writing the data file
# ---------------------------------------------------------------------------------------------
TEMPO_NOTES = (
    "The manifest lists every option with its default but leaves out empty ones and can lag"
    " behind _index.md, so the tree is the union of both. Only the reference notation of"
    " _index.md is read, not its plain YAML examples.",
    "distributor.receivers.otlp is the OpenTelemetry Collector's OTLP receiver at the version"
    " Tempo's go.mod requires: the tables of its config.md plus the top-level settings of the"
    " gRPC, HTTP and net server READMEs. The settings of the other receivers and the items of"
    " metrics_generator.storage.remote_write (Prometheus remote-write configs) are not checked.",
)


def write(
    out: Path,
    component: str,
    version: str,
    tree: Tree,
    sources: list[dict[str, str]],
    notes: list[str],
    command: str,
) -> None:
    title = component.capitalize()
    lines = [
        f"# The configuration options of {title} {version}, as its documented configuration",
        "# reference lists them (option names, value kinds and documented value lists only).",
        "# Generated (do not edit by hand; regenerate when the pin in versions.env changes) by",
        f"#   {command}",
        "# Sources:",
        *(f"#   {s['repo']} {s['path']} at {s['rev']} (commit {s['commit']})" for s in sources),
        *(
            f"# {line}"
            for note in notes
            for line in textwrap.wrap(f"Note: {note}", 94, subsequent_indent="  ")
        ),
        "# Format: see tools/config_keys.py. Checked by tools/config_check.py.",
    ]
    data = {"component": title, "version": version, "sources": sources, "keys": tree}
    body = yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)
    out.write_text("\n".join(lines) + "\n" + body)


def source_from(args: argparse.Namespace, repo: str, prefix: str = "") -> DocSource:
    git_dir, rev, docs = (getattr(args, f"{prefix}{n}") for n in ("git_dir", "rev", "docs"))
    if git_dir:
        if not rev:
            raise SystemExit(f"--{prefix.replace('_', '-')}git-dir needs --{prefix}rev")
        return DocSource(repo, rev, git_dir=Path(git_dir))
    if docs:
        return DocSource(repo, rev or "unknown", docs_dir=Path(docs))
    raise SystemExit(f"give --{prefix.replace('_', '-')}git-dir and --rev, or --docs")


def loki(args: argparse.Namespace) -> tuple[Tree, list[dict[str, str]]]:
    src = source_from(args, LOKI_REPO)
    return LokiReference(src.read(LOKI_REFERENCE)).tree(), [src.describe(LOKI_REFERENCE)]


def tempo(args: argparse.Namespace) -> tuple[Tree, list[dict[str, str]]]:
    src = source_from(args, TEMPO_REPO)
    manifest_md = src.read(TEMPO_MANIFEST)
    manifest_yaml = next(text for _, _, text in fenced_blocks(manifest_md))
    tree: Node = manifest_tree(yaml.safe_load(manifest_yaml))
    tree = merge(tree, TempoReference(src.read(TEMPO_INDEX)).tree())
    tree = merge(tree, yaml_examples(src.read(TEMPO_API_DOCS)))
    sources = [src.describe(p) for p in (TEMPO_MANIFEST, TEMPO_INDEX, TEMPO_API_DOCS)]

    if not args.otel_rev:  # the OTLP receiver Tempo embeds
        found = re.search(
            rf"^\s*{re.escape(OTLP_RECEIVER_MODULE)} (v\S+)", src.read("go.mod"), re.M
        )
        if not found:
            raise SystemExit(f"{OTLP_RECEIVER_MODULE} is not in Tempo's go.mod: give --otel-rev")
        args.otel_rev = found[1]
    otel = source_from(args, OTEL_REPO, "otel_")
    otlp = otel_config_tables(otel.read(OTLP_RECEIVER_REFERENCE))
    grpc = otel_readme_settings(otel.read(OTEL_GRPC_README), "Server Configuration")
    grpc = _as_tree(merge(grpc, otel_readme_settings(otel.read(OTEL_NET_README), None)))
    http = otel_readme_settings(otel.read(OTEL_HTTP_README), "Server Configuration")
    otlp = _as_tree(merge(otlp, {"protocols": {"grpc": grpc, "http": http}}))
    tree = merge(tree, {"distributor": {"receivers": {"otlp": otlp}}})
    sources += [
        otel.describe(p)
        for p in (OTLP_RECEIVER_REFERENCE, OTEL_GRPC_README, OTEL_HTTP_README, OTEL_NET_README)
    ]
    return _as_tree(tree), sources


def command_line(args: argparse.Namespace) -> str:
    """The command that regenerates the file, with placeholders for local paths."""
    repo = LOKI_REPO if args.component == "loki" else TEMPO_REPO
    where = f"--git-dir <{repo}.git> --rev {args.rev}" if args.git_dir else f"--docs <{repo}>"
    cmd = f"python -m tools.config_keys {args.component} --version {args.version} {where}"
    if args.component == "tempo":
        cmd += (
            f" --otel-git-dir <{OTEL_REPO}.git>"
            if args.otel_git_dir
            else f" --otel-docs <{OTEL_REPO}>"
        )
    return cmd + "".join(" --note ..." for _ in args.note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("component", choices=["loki", "tempo"])
    parser.add_argument("--version", required=True, help="the pinned release, e.g. 3.7.8")
    parser.add_argument("--git-dir", help="a (bare) git directory of the upstream repository")
    parser.add_argument("--rev", help="the tag to read, e.g. v3.7.8")
    parser.add_argument("--docs", help="a checkout of the upstream repository instead")
    parser.add_argument("--otel-git-dir", help="tempo: an opentelemetry-collector git directory")
    parser.add_argument("--otel-rev", help="tempo: default: the otlpreceiver in Tempo's go.mod")
    parser.add_argument("--otel-docs", help="tempo: a checkout of opentelemetry-collector")
    parser.add_argument("--note", action="append", default=[], help="a line for the header")
    parser.add_argument("--out", type=Path, help="default: tests/config/data/<c>-<v>.keys.yaml")
    args = parser.parse_args(argv)

    tree, sources = loki(args) if args.component == "loki" else tempo(args)
    notes = list(args.note)
    if args.rev and args.rev != f"v{args.version}":
        notes.insert(0, f"the reference was read at {args.rev}, not at v{args.version}.")
    if args.component == "tempo":
        notes += TEMPO_NOTES
    out = args.out or DATA_DIR / f"{args.component}-{args.version}.keys.yaml"
    write(out, args.component, args.version, tree, sources, notes, command_line(args))
    print(f"{out}: {count_keys(tree)} option names", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
