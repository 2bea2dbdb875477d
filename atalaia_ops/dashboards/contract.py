"""The telemetry contract as the dashboards see it: names docs/telemetry.md catalogues, plus the
series the recording rules in prometheus/rules/*.yml write."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "docs" / "telemetry.md"
RULES_DIR = REPO / "prometheus" / "rules"

# Labels every Prometheus series may carry without being catalogued per metric: the histogram
# bucket bound, the scrape target, and the metric name.
IMPLICIT_LABELS = {"le", "job", "instance", "__name__"}
# TraceQL intrinsics (not attributes).
TRACEQL_INTRINSICS = {"name", "duration", "status", "kind", "rootName", "rootServiceName"}
_SERIES_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass(frozen=True)
class Contract:
    metrics: frozenset[str]
    labels: frozenset[str]  # Prometheus / Loki label names (underscored)
    attributes: frozenset[str]  # OTel attribute names (dotted), for TraceQL


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def expand_fragment(previous: str, fragment: str) -> str:
    """`x_bucket` then `_sum` -> x_sum; `a_spans_total` then `_log_records_total` ->
    a_log_records_total: drop the words the fragment shares at its end, plus one."""
    prev, frag = previous.split("_"), fragment[1:].split("_")
    common = 0
    while common < min(len(prev), len(frag)) and prev[-1 - common] == frag[-1 - common]:
        common += 1
    return "_".join(prev[: len(prev) - common - 1] + frag)


def catalogued(text: str) -> Contract:
    """Every backticked name in the catalogue's tables, classified.

    A metric is a name in a table cell that looks like a series; `_sum` / `_count` / `_rate1h`
    fragments after a full name expand against it (`x_bucket` / `_sum` -> x_sum).
    """
    metrics: set[str] = set()
    words: set[str] = set()
    for line in _table_lines(text):
        histogram = "| histogram |" in line
        for cell in line.strip("|").split("|"):
            previous = ""
            for token in re.findall(r"`([^`]+)`", cell):
                token = token.strip()
                bare = re.sub(r"\s*\{.*\}$", "", token)  # `invoke_agent {gen_ai.agent.name}`
                if re.fullmatch(r"_[\w]+", bare) and previous:
                    metrics.add(expand_fragment(previous, bare))
                    continue
                words.add(bare)
                words |= set(re.findall(r"\{([^}]+)\}", token))
                if re.fullmatch(r"[a-zA-Z_:][\w:]*", bare):
                    previous = bare
                    metrics.add(bare)
                    if histogram:  # a histogram row names the family: its series are these
                        metrics |= {bare + suffix for suffix in _SERIES_SUFFIXES}
    for m in list(metrics):
        for suffix in _SERIES_SUFFIXES:
            if m.endswith(suffix):
                metrics.add(m.removesuffix(suffix))
    # Label and attribute names may also be catalogued in prose (e.g. "label `slo`: ...").
    words |= {re.sub(r"\s*\{.*\}$", "", t.strip()) for t in re.findall(r"`([^`\n]+)`", text)}
    labels = {w.replace(".", "_") for w in words if re.fullmatch(r"[\w.]+", w)}
    attributes = {w for w in words if re.fullmatch(r"[\w.]+", w)}
    return Contract(frozenset(metrics), frozenset(labels | IMPLICIT_LABELS), frozenset(attributes))


def recorded(rules_dir: Path = RULES_DIR) -> set[str]:
    names: set[str] = set()
    for f in sorted(rules_dir.glob("*.yml")) + sorted(rules_dir.glob("*.yaml")):
        doc = yaml.safe_load(f.read_text()) or {}
        for group in doc.get("groups", []):
            names |= {r["record"] for r in group.get("rules", []) if "record" in r}
    return names


def load(catalogue: Path = CATALOGUE, rules_dir: Path = RULES_DIR) -> Contract:
    c = catalogued(catalogue.read_text())
    return Contract(c.metrics | recorded(rules_dir), c.labels, c.attributes)
