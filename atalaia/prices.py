"""The model price table: USD per million input, output, cache-read, cache-write and reasoning
tokens.

Defaults ship in ``atalaia/data/prices.yaml``, converted from a maintained source by
``python -m tools.prices refresh`` (docs/cost.md); a user file (``PriceTable.load(path)`` or the
``ATALAIA_PRICES_FILE`` environment variable) is merged over them, model by model and field by
field. The library prices its own calls here; the stack prices every emitter's tokens with
Prometheus rules generated from the same table (``atalaia_ops.cost``). No price is hard-coded in a
query.
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

ENV_PRICES_FILE = "ATALAIA_PRICES_FILE"
_PER = 1_000_000
# A dated or suffixed id ("gpt-4o-2024-08-06", "llama3.1:8b") uses its family's entry when the
# family name is followed by one of these.
SEPARATORS = ("-", ":", "@")
_PRICE_FIELDS = ("input", "output", "cached_input", "cache_write", "reasoning")
_FIELDS = (*_PRICE_FIELDS, "provider", "aliases")
_TOP_LEVEL = ("source", "source_package", "source_version", "as_of", "currency", "models")
# How many trailing `-`/`:`/`@` segments of a sent id the Prometheus rules drop at most to find
# its model (atalaia_ops.cost); the lookup here has no such bound. 4 covers a date after a suffix:
# gpt-4o-realtime-preview-2024-12-17 is gpt-4o-realtime-preview's.
MATCH_DEPTH = 4
# The token types of atalaia.genai.tokens (docs/telemetry.md), in the order rules list them.
TOKEN_TYPES = ("input", "output", "cache_read", "cache_creation", "reasoning")

_log = logging.getLogger("atalaia.prices")


class PriceFileError(ValueError):
    """A price file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens for one model.

    ``cached_input`` is the price of an input token read from the provider's prompt cache,
    ``cache_write`` of one written to it (cache creation), ``reasoning`` of a reasoning output
    token; each defaults to the plain input or output price when the table gives none.
    """

    model: str
    input: float
    output: float
    cached_input: float
    provider: str | None = None
    aliases: tuple[str, ...] = ()
    cache_write: float | None = None  # None: the input price
    reasoning: float | None = None  # None: the output price

    @property
    def cache_write_price(self) -> float:
        return self.input if self.cache_write is None else self.cache_write

    @property
    def reasoning_price(self) -> float:
        return self.output if self.reasoning is None else self.reasoning

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> float:
        """USD for one call. As in the GenAI semantic conventions, ``input_tokens`` includes the
        cached ones (``cached_tokens`` read from the cache, ``cache_creation_tokens`` written to
        it) and ``output_tokens`` includes ``reasoning_tokens``."""
        total_in = max(input_tokens, 0)
        cached = min(max(cached_tokens, 0), total_in)
        created = min(max(cache_creation_tokens, 0), total_in - cached)
        total_out = max(output_tokens, 0)
        reasoning = min(max(reasoning_tokens, 0), total_out)
        return (
            (total_in - cached - created) * self.input
            + cached * self.cached_input
            + created * self.cache_write_price
            + (total_out - reasoning) * self.output
            + reasoning * self.reasoning_price
        ) / _PER

    def per_token(self) -> dict[str, float]:
        """USD per token of each ``atalaia_genai_tokens_total`` type, such that the sum over the
        types of tokens x this is the cost of the call, without counting a token twice.

        ``input`` and ``output`` count every token at its plain price; ``cache_read`` and
        ``cache_creation`` tokens are already in ``input``, ``reasoning`` tokens in ``output``,
        so these carry only the difference to the plain price (negative when cheaper).
        """
        per_million = {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cached_input - self.input,
            "cache_creation": self.cache_write_price - self.input,
            "reasoning": self.reasoning_price - self.output,
        }
        # 12 significant digits: 0.05 / 1e6 is 5e-08, not 5.0000000000000004e-08.
        return {t: float(f"{v / _PER:.12g}") for t, v in per_million.items()}

    @property
    def names(self) -> tuple[str, ...]:
        """The id and its aliases: the names a sent model id is matched against."""
        return (self.model, *self.aliases)


class PriceTable:
    """Model prices, with lookup by exact id, alias, or family prefix of a dated id."""

    def __init__(
        self,
        prices: Mapping[str, ModelPrice],
        *,
        source: str = "",
        as_of: str = "",
        files: tuple[str, ...] = (),
        source_package: str = "",
        source_version: str = "",
    ) -> None:
        self.prices: Mapping[str, ModelPrice] = dict(prices)
        self.source = source
        self.as_of = as_of
        self.files = files  # where the table came from, defaults first
        self.source_package = source_package  # e.g. genai-prices, when converted from a package
        self.source_version = source_version
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
                if name.startswith(known) and name[len(known)] in SEPARATORS:
                    found = self._index[known]
                    break
        if len(self._resolved) < 4096:  # bounded, whatever ids callers invent
            self._resolved[model] = found
        return found

    def cost(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_creation_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> float:
        """USD for one call (see :meth:`ModelPrice.cost`); 0 for an unknown model, with a
        single warning per model."""
        price = self.lookup(model)
        if price is None:
            self._warn_unknown(model)
            return 0.0
        return price.cost(
            input_tokens, output_tokens, cached_tokens, cache_creation_tokens, reasoning_tokens
        )

    def __iter__(self) -> Iterator[ModelPrice]:
        return iter(self.prices.values())

    def __len__(self) -> int:
        return len(self.prices)

    def _warn_unknown(self, model: str) -> None:
        """One warning for the first unknown model, debug lines for the others: a process that
        invents model ids (3000 fine-tunes) must not print 3000 warnings."""
        with self._lock:
            first = not self._warned
            if model in self._warned or len(self._warned) >= 1000:
                return
            self._warned.add(model)
        if first:
            _log.warning(
                "no price for model %r: its cost is recorded as 0; add it to a price file "
                "(%s, see docs/library.md); further unknown models are logged at DEBUG",
                model[:200],
                ENV_PRICES_FILE,
            )
        else:
            _log.debug("no price for model %r either", model[:200])

    @property
    def unknown_models(self) -> tuple[str, ...]:
        """The unknown model ids asked for so far (the first 1000)."""
        with self._lock:
            return tuple(self._warned)

    def to_dict(self) -> dict[str, Any]:
        """The table in the file format (what ``atalaia prices`` prints)."""
        models: dict[str, Any] = {}
        for p in self.prices.values():
            entry: dict[str, Any] = {}
            if p.provider:
                entry["provider"] = p.provider
            entry.update(input=p.input, output=p.output, cached_input=p.cached_input)
            if p.cache_write is not None:
                entry["cache_write"] = p.cache_write
            if p.reasoning is not None:
                entry["reasoning"] = p.reasoning
            if p.aliases:
                entry["aliases"] = list(p.aliases)
            models[p.model] = entry
        doc: dict[str, Any] = {"source": self.source}
        if self.source_package:
            doc.update(source_package=self.source_package, source_version=self.source_version)
        doc.update(as_of=self.as_of, currency="USD", models=models)
        return doc


def normalise(model: str) -> str:
    """The form ids are matched in: lower case, without a ``vendor/`` prefix."""
    return _normalise(model)


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
    import yaml  # only when a table is read: `import atalaia` stays light

    # libyaml's safe loader when PyYAML has it: the shipped table has hundreds of models.
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)  # a safe loader
    except yaml.YAMLError as exc:
        raise PriceFileError(f"price file {name}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise PriceFileError(f"price file {name}: expected a mapping with a `models:` key")
    unknown = set(doc) - set(_TOP_LEVEL)
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
    claimed: dict[str, str] = {}  # normalised name -> the model of this file that claims it
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
        price = _entry(model, entry, previous, where)
        for n in price.names:
            other = claimed.setdefault(_normalise(n), model)
            if other != model:
                raise PriceFileError(
                    f"{where}: {n!r} is also a name of models.{other}; a name prices one model"
                )
        prices[model] = price
        known[_normalise(model)] = model

    # A name this file gives a model is taken from the models of the files below it, so that
    # every name matches one model (the Prometheus rules have one price series per name).
    if base:
        for key, price in list(prices.items()):
            if key in models:
                continue
            if _normalise(key) in claimed:
                other = claimed[_normalise(key)]
                raise PriceFileError(
                    f"price file {name}: models.{other}: {key!r} is the id of a model of "
                    f"{', '.join(base.files)}; override that model instead"
                )
            kept = tuple(a for a in price.aliases if _normalise(a) not in claimed)
            if kept != price.aliases:
                prices[key] = replace(price, aliases=kept)

    def meta(key: str, inherited: str) -> str:
        return str(doc.get(key, inherited if base else ""))

    return PriceTable(
        prices=prices,
        source=meta("source", base.source if base else ""),
        as_of=meta("as_of", base.as_of if base else ""),
        files=(*(base.files if base else ()), name),
        source_package=meta("source_package", base.source_package if base else ""),
        source_version=meta("source_version", base.source_version if base else ""),
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
    for a in aliases:
        if not a.strip() or a.strip()[-1] in SEPARATORS:
            raise PriceFileError(f"{where}.aliases: {a!r} is not a model id")
    optional = {
        f: _number(entry[f], f"{where}.{f}")
        for f in ("cache_write", "reasoning")
        if f in entry and entry[f] is not None
    }
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
            cache_write=optional.get("cache_write"),
            reasoning=optional.get("reasoning"),
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
    # cache_write and reasoning left unset follow input and output (the properties above).
    if "cache_write" in optional:
        updated = replace(updated, cache_write=optional["cache_write"])
    if "reasoning" in optional:
        updated = replace(updated, reasoning=optional["reasoning"])
    return updated
