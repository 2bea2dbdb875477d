"""The model price table: USD per million input, output and cached-input tokens.

Defaults ship in ``atalaia/data/prices.yaml``; a user file (``PriceTable.load(path)`` or the
``ATALAIA_PRICES_FILE`` environment variable) is merged over them, model by model and field by
field. Costs are computed here and never hard-coded in queries.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

ENV_PRICES_FILE = "ATALAIA_PRICES_FILE"
_PER = 1_000_000
# A dated or suffixed id ("gpt-4o-2024-08-06", "llama3.1:8b") uses its family's entry when the
# family name is followed by one of these.
_SEPARATORS = ("-", ":", "@")
_FIELDS = ("input", "output", "cached_input", "provider", "aliases")

_log = logging.getLogger("atalaia.prices")


class PriceFileError(ValueError):
    """A price file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens for one model."""

    model: str
    input: float
    output: float
    cached_input: float
    provider: str | None = None
    aliases: tuple[str, ...] = ()

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """USD for one call. ``input_tokens`` includes ``cached_tokens`` (as OpenAI reports
        ``prompt_tokens`` and the GenAI semconv defines ``gen_ai.usage.input_tokens``)."""
        cached = min(max(cached_tokens, 0), max(input_tokens, 0))
        uncached = max(input_tokens, 0) - cached
        return (
            uncached * self.input + cached * self.cached_input + max(output_tokens, 0) * self.output
        ) / _PER


class PriceTable:
    """Model prices, with lookup by exact id, alias, or family prefix of a dated id."""

    def __init__(
        self,
        prices: Mapping[str, ModelPrice],
        *,
        source: str = "",
        as_of: str = "",
        files: tuple[str, ...] = (),
    ) -> None:
        self.prices: Mapping[str, ModelPrice] = dict(prices)
        self.source = source
        self.as_of = as_of
        self.files = files  # where the table came from, defaults first
        self._index: dict[str, ModelPrice] = {}
        for price in self.prices.values():
            for name in (price.model, *price.aliases):
                self._index[_normalise(name)] = price
        # Longest names first, so "gpt-4o-mini-2024-07-18" finds gpt-4o-mini before gpt-4o.
        self._by_length = sorted(self._index, key=len, reverse=True)
        self._resolved: dict[str, ModelPrice | None] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    # --- loading ----------------------------------------------------------------------------
    @classmethod
    def defaults(cls) -> PriceTable:
        """The table shipped with the library."""
        ref = resources.files("atalaia") / "data" / "prices.yaml"
        return _parse(ref.read_text(encoding="utf-8"), "atalaia/data/prices.yaml", base=None)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> PriceTable:
        """The defaults with ``path`` (or ``$ATALAIA_PRICES_FILE``) merged over them.

        Raises :class:`PriceFileError` naming the file and the problem when it cannot be used.
        """
        table = cls.defaults()
        if path is None:
            path = os.environ.get(ENV_PRICES_FILE) or None
        if path is None:
            return table
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or exc
            raise PriceFileError(f"price file {file}: cannot read it: {reason}") from exc
        return _parse(text, str(file), base=table)

    # --- lookup -----------------------------------------------------------------------------
    def lookup(self, model: str) -> ModelPrice | None:
        """The price of ``model``: exact id or alias, else the longest family name that the id
        starts with followed by a separator (``-``, ``:``, ``@``); None if unknown."""
        if model in self._resolved:  # every LLM call looks its model up: remember answers
            return self._resolved[model]
        name = _normalise(model)
        found = self._index.get(name)
        if found is None:
            for known in self._by_length:
                if name.startswith(known) and name[len(known)] in _SEPARATORS:
                    found = self._index[known]
                    break
        if len(self._resolved) < 4096:  # bounded, whatever ids callers invent
            self._resolved[model] = found
        return found

    def cost(
        self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0
    ) -> float:
        """USD for one call; 0 for an unknown model, with a single warning per model."""
        price = self.lookup(model)
        if price is None:
            self._warn_unknown(model)
            return 0.0
        return price.cost(input_tokens, output_tokens, cached_tokens)

    def __iter__(self) -> Iterator[ModelPrice]:
        return iter(self.prices.values())

    def __len__(self) -> int:
        return len(self.prices)

    def _warn_unknown(self, model: str) -> None:
        with self._lock:
            if model in self._warned:
                return
            self._warned.add(model)
        _log.warning(
            "no price for model %r: its cost is recorded as 0; add it to a price file "
            "(%s, see docs/library.md)",
            model,
            ENV_PRICES_FILE,
        )

    def to_dict(self) -> dict[str, Any]:
        """The table in the file format (what ``atalaia prices`` prints)."""
        models: dict[str, Any] = {}
        for p in self.prices.values():
            entry: dict[str, Any] = {}
            if p.provider:
                entry["provider"] = p.provider
            entry.update(input=p.input, output=p.output, cached_input=p.cached_input)
            if p.aliases:
                entry["aliases"] = list(p.aliases)
            models[p.model] = entry
        return {"source": self.source, "as_of": self.as_of, "currency": "USD", "models": models}


def _normalise(model: str) -> str:
    # "openai/gpt-4o", "models/gemini-2.5-pro", "meta-llama/Llama-3.3-70B" -> the last part.
    return model.strip().lower().rsplit("/", 1)[-1]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PriceFileError(f"{where}: expected a number (USD per million tokens), got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise PriceFileError(f"{where}: expected a finite number >= 0, got {value!r}")
    return float(value)


def _parse(text: str, name: str, base: PriceTable | None) -> PriceTable:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PriceFileError(f"price file {name}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise PriceFileError(f"price file {name}: expected a mapping with a `models:` key")
    unknown = set(doc) - {"source", "as_of", "currency", "models"}
    if unknown:
        raise PriceFileError(f"price file {name}: unknown top-level keys {sorted(unknown)}")
    currency = doc.get("currency", "USD")
    if currency != "USD":
        raise PriceFileError(f"price file {name}: currency must be USD, got {currency!r}")
    models = doc.get("models")
    if not isinstance(models, dict) or not models:
        raise PriceFileError(f"price file {name}: `models:` must map model ids to prices")

    prices: dict[str, ModelPrice] = dict(base.prices) if base else {}
    known = {_normalise(k): k for k in prices}
    for model, entry in models.items():
        where = f"price file {name}: models.{model}"
        if not isinstance(model, str) or not model.strip():
            raise PriceFileError(f"price file {name}: model ids must be strings, got {model!r}")
        if not isinstance(entry, dict):
            raise PriceFileError(f"{where}: expected a mapping with input/output, got {entry!r}")
        extra = set(entry) - set(_FIELDS)
        if extra:
            raise PriceFileError(f"{where}: unknown keys {sorted(extra)} (allowed: {_FIELDS})")
        previous = prices.get(known.get(_normalise(model), ""))
        prices.pop(known.get(_normalise(model), ""), None)
        prices[model] = _entry(model, entry, previous, where)
        known[_normalise(model)] = model

    return PriceTable(
        prices=prices,
        source=str(doc.get("source", base.source if base else "")),
        as_of=str(doc.get("as_of", base.as_of if base else "")),
        files=(*(base.files if base else ()), name),
    )


def _entry(
    model: str, entry: dict[str, Any], previous: ModelPrice | None, where: str
) -> ModelPrice:
    aliases = entry.get("aliases", list(previous.aliases) if previous else [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise PriceFileError(f"{where}.aliases: expected a list of model ids, got {aliases!r}")
    provider = entry.get("provider", previous.provider if previous else None)
    if provider is not None and not isinstance(provider, str):
        raise PriceFileError(f"{where}.provider: expected a string, got {provider!r}")
    if previous is None:
        for field in ("input", "output"):
            if field not in entry:
                raise PriceFileError(f"{where}: a new model needs `{field}` (USD per 1M tokens)")
        input_price = _number(entry["input"], f"{where}.input")
        return ModelPrice(
            model=model,
            input=input_price,
            output=_number(entry["output"], f"{where}.output"),
            cached_input=_number(entry.get("cached_input", input_price), f"{where}.cached_input"),
            provider=provider,
            aliases=tuple(aliases),
        )
    # Overriding a known model: fields not given keep their previous values.
    updated = replace(previous, model=model, provider=provider, aliases=tuple(aliases))
    if "input" in entry:
        updated = replace(updated, input=_number(entry["input"], f"{where}.input"))
    if "output" in entry:
        updated = replace(updated, output=_number(entry["output"], f"{where}.output"))
    if "cached_input" in entry:
        cached = _number(entry["cached_input"], f"{where}.cached_input")
        updated = replace(updated, cached_input=cached)
    if "input" in entry and "cached_input" not in entry and previous.cached_input == previous.input:
        updated = replace(updated, cached_input=updated.input)
    return updated
