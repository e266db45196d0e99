"""YAML to Python data straight from the parser's events, without PyYAML's node graph.

`yaml.load` composes the whole document into nodes before it builds a single value: for a
watchlist of 100,000 events that graph costs over 100 MB at start-up, and a process keeps
the memory it once used. Built event by event, only the values exist. The result is what
`yaml.safe_load` gives: the same tags and resolvers, anchors and aliases (shared, as
PyYAML shares them), and merge keys (`<<`). One difference: an alias inside its own anchor
is refused, where PyYAML builds a value that contains itself and every walk over it recurses
without end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import yaml
from yaml.constructor import ConstructorError

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"
_OPEN = object()
"""An anchor whose collection is still being read: an alias to it would make a cycle."""


class _Parser(Protocol):
    """The parts of a PyYAML loader used here, typed (PyYAML's stubs leave them untyped)."""

    yaml_constructors: dict[str | None, Callable[[Any, yaml.Node], Any]]

    def get_event(self) -> Any: ...

    def peek_event(self) -> Any: ...

    def check_event(self, *choices: type[yaml.Event]) -> bool: ...

    def resolve(self, kind: type[yaml.Node], value: str, implicit: Any) -> str: ...

    def dispose(self) -> None: ...


def load(text: str) -> Any:
    """The single document in `text`, or None for an empty stream; raises yaml.YAMLError."""
    loader = cast(_Parser, _Loader(text))
    try:
        loader.get_event()  # the stream's start
        if loader.check_event(yaml.StreamEndEvent):
            return None
        loader.get_event()  # the document's start
        value = _value(loader, {})
        loader.get_event()  # the document's end
        if not loader.check_event(yaml.StreamEndEvent):
            event = loader.get_event()
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                None,
                "but found another document",
                event.start_mark,
            )
        return value
    finally:
        loader.dispose()


def _value(loader: _Parser, anchors: dict[str, Any]) -> Any:
    event = loader.get_event()
    if isinstance(event, yaml.AliasEvent):
        if event.anchor not in anchors:
            raise yaml.composer.ComposerError(
                None, None, f"found undefined alias {event.anchor!r}", _mark(event)
            )
        if anchors[event.anchor] is _OPEN:
            raise yaml.composer.ComposerError(
                None, None, f"the alias *{event.anchor} refers to its own anchor", _mark(event)
            )
        return anchors[event.anchor]
    value: Any
    if isinstance(event, yaml.ScalarEvent):
        value = _scalar(loader, event)
    elif isinstance(event, yaml.SequenceStartEvent):
        value = []
        _anchor(anchors, event, _OPEN)
        while not loader.check_event(yaml.SequenceEndEvent):
            value.append(_value(loader, anchors))
        loader.get_event()
    elif isinstance(event, yaml.MappingStartEvent):
        value = {}
        _anchor(anchors, event, _OPEN)
        _fill(loader, anchors, value, event)
    else:  # pragma: no cover - the parser never emits anything else here
        raise ConstructorError(None, None, f"unexpected {event}", event.start_mark)
    _anchor(anchors, event, value)
    return value


def _fill(
    loader: _Parser,
    anchors: dict[str, Any],
    mapping: dict[Any, Any],
    start: Any,
) -> None:
    """The mapping's pairs; keys merged in with `<<` never override its own."""
    merged: list[dict[Any, Any]] = []
    while not loader.check_event(yaml.MappingEndEvent):
        key_event = loader.peek_event()
        key = _value(loader, anchors)
        item = _value(loader, anchors)
        if isinstance(key_event, yaml.ScalarEvent) and _tag(loader, key_event) == _MERGE:
            sources = item if isinstance(item, list) else [item]
            if not all(isinstance(source, dict) for source in sources):
                raise ConstructorError(
                    "while constructing a mapping",
                    start.start_mark,
                    "expected a mapping or list of mappings for merging",
                    _mark(key_event),
                )
            merged.extend(sources)
            continue
        try:
            if key in mapping:
                # PyYAML keeps the last; a doubled `events:` would drop the first list unseen.
                raise ConstructorError(
                    "while constructing a mapping",
                    start.start_mark,
                    f"the key {key!r} is given twice",
                    key_event.start_mark,
                )
            mapping[key] = item
        except TypeError:
            raise ConstructorError(
                "while constructing a mapping",
                start.start_mark,
                "found unhashable key",
                key_event.start_mark,
            ) from None
    loader.get_event()
    for source in merged:  # the first source named wins, as in PyYAML
        for key, item in source.items():
            mapping.setdefault(key, item)


def _scalar(loader: _Parser, event: Any) -> Any:
    tag = _tag(loader, event)
    if tag == _MERGE:
        return "<<"
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    construct = loader.yaml_constructors.get(tag) or loader.yaml_constructors[None]
    return construct(loader, node)


def _tag(loader: _Parser, event: Any) -> str:
    if event.tag is None or event.tag == "!":
        return str(loader.resolve(yaml.ScalarNode, event.value, event.implicit))
    return str(event.tag)


def _mark(event: Any) -> Any:
    """Where `event` starts (PyYAML's C and Python parsers have marks of their own types)."""
    return event.start_mark


def _anchor(anchors: dict[str, Any], event: Any, value: Any) -> None:
    if event.anchor is not None:
        anchors[event.anchor] = value
