"""Loading a configuration file: YAML or JSON, `${VAR}` interpolation, validation, and
errors that name the file, the line and the key path."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from monitor.config import streaming
from monitor.config.checks import Problem, cross_checks
from monitor.config.model import Config
from monitor.config.notifiers import NOTIFIER_TYPES
from monitor.errors import ConfigError

# libyaml's loader when PyYAML was built with it: several times faster on large watchlists.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate the file at `path`; raise ConfigError naming every problem."""
    source = str(path)
    env = os.environ if environ is None else environ
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, [f" cannot read the file: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(source, [f"{line}: the file is not UTF-8 text"]) from None
    return parse_config(text, source, env)


def _load_tree(text: str) -> Any:
    """The document as Python data: JSON (which is YAML) by orjson, YAML built from the
    parser's events (see `streaming`), never through a node graph of the whole file."""
    if text.lstrip().startswith("{"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # YAML in flow style, or broken JSON: PyYAML says which, with a line
    return streaming.load(text)


def parse_config(text: str, source: str, environ: Mapping[str, str]) -> Config:
    raw = _tree(text, source)
    problems: list[Problem] = []
    expanded: dict[str, str] = {}
    data = _interpolate(raw, (), _Expansion(environ, problems, expanded))
    config: Config | None = None
    if not problems:
        try:
            config = Config.model_validate(data)
        except ValidationError as exc:
            problems = [(_clean_loc(err["loc"]), _message(err)) for err in exc.errors()]
        else:
            problems = cross_checks(config)
    if problems or config is None:
        hide = _hider(expanded)
        raise ConfigError(source, [_problem(_nodes(text), loc, hide(msg)) for loc, msg in problems])
    return config


def _hider(expanded: Mapping[str, str]) -> Callable[[str], str]:
    """A function that writes `${VAR}` wherever a message would show VAR's value: a value
    from the environment is often a secret, and config errors reach terminals and logs."""
    # Short values are hidden only where quoted whole: as substrings they would mangle words.
    quoted = {repr(value): f"'${{{name}}}'" for value, name in expanded.items()}
    inner = {value: f"${{{name}}}" for value, name in expanded.items() if len(value) >= 4}
    table = {**quoted, **inner}
    if not table:
        return lambda message: message
    pattern = re.compile("|".join(re.escape(v) for v in sorted(table, key=len, reverse=True)))
    return lambda message: pattern.sub(lambda match: table[match.group(0)], message)


MAX_NODES = 10_000_000
"""Values in a document once its aliases are expanded: a watchlist of 100,000 events holds
about two million; an alias bomb holds billions."""


def _tree(text: str, source: str) -> dict[str, Any]:
    """The document as a mapping of sections, or a ConfigError saying why it is not one."""
    try:
        raw = _load_tree(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{line} invalid YAML: {problem}"]) from None
    except ValueError as exc:  # integers beyond Python's 4,300-digit limit, among others
        raise ConfigError(source, [f" unreadable value: {str(exc).split(';')[0]}"]) from None
    except RecursionError:
        raise ConfigError(source, [" the document is nested too deeply"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [" expected a mapping of sections at the top of the file"])
    # Only YAML anchors (`&name`) let a small document stand for a huge one.
    if "&" in text and _expanded_size(raw, {}) > MAX_NODES:
        raise ConfigError(
            source, [f" the document expands to over {MAX_NODES:,} values (an alias bomb?)"]
        )
    return raw


def _expanded_size(node: Any, seen: dict[int, int]) -> int:
    """How many values `node` stands for with every alias expanded; shared nodes are counted
    once per use but visited once, so this costs what the document costs to load."""
    if not isinstance(node, dict | list):
        return 1
    known = seen.get(id(node))
    if known is not None:
        return known
    children = node.values() if isinstance(node, dict) else node
    size = 1
    for child in children:
        size += _expanded_size(child, seen)
        if size > MAX_NODES:
            break
    seen[id(node)] = size
    return size


def _nodes(text: str) -> yaml.Node | None:
    """The document's node tree, for line numbers; None when PyYAML cannot build one (a JSON
    document with a key PyYAML finds too long, say)."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None


def config_warnings(config: Config) -> list[str]:
    """Settings that work but are probably not what the user wants: above all, a notifier
    that can never hear anything (`check --strict` refuses them)."""
    warnings = []
    if config.events and not config.notifiers:
        warnings.append("no notifiers are configured: changes are stored but nobody is told")
    for name in config.notifiers:
        warnings.extend(_deaf(config, name))
    for index, event in enumerate(config.events):
        if event.when and all(rule.never_matches for rule in event.when):
            warnings.append(
                f"events[{index}].when: no rule can match (from and to name the same state), "
                "so nobody hears of this event"
            )
    return warnings


def _deaf(config: Config, name: str) -> list[str]:
    """Why the notifier `name` may never hear anything: its rules, or no event for it."""
    notifier, where = config.notifiers[name], f"notifiers.{name}"
    found = []
    if notifier.when and all(rule.never_matches for rule in notifier.when):
        found.append(
            f"{where}.when: no rule can match (from and to name the same state), so "
            "this notifier hears nothing"
        )
    if config.events and not any(name in config.targets_of(e) for e in config.events):
        tags = f" (tags {list(notifier.tags)} are on no event)" if notifier.tags else ""
        found.append(f"{where}: no watched event reaches this notifier{tags}")
    return found


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class _Expansion:
    environ: Mapping[str, str]
    problems: list[Problem]
    expanded: dict[str, str]
    """Each value put in from the environment, and the variable it came from."""


def _interpolate(node: Any, loc: tuple[str | int, ...], expansion: _Expansion) -> Any:
    """Replace `${VAR}` in every string of the freshly loaded tree, in place.

    In place, because a watchlist of 100,000 events would otherwise exist twice at once.
    Text that is shown or stored (an event's name, its tags, message templates) takes no
    variables: a secret there would reach every notification and the database.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _interpolate(value, (*loc, key), expansion)
        return node
    if isinstance(node, list):
        for index, value in enumerate(node):
            node[index] = _interpolate(value, (*loc, index), expansion)
        return node
    if not isinstance(node, str) or "$" not in node:
        return node
    shown = _is_shown_text(loc)
    return _VAR.sub(lambda match: _substitute(match, loc, shown, expansion), node)


def _substitute(
    match: re.Match[str], loc: tuple[str | int, ...], shown: bool, expansion: _Expansion
) -> str:
    problems = expansion.problems
    if match.group(0) == "$$":
        return "$"
    name, default = match.group(1), match.group(2)
    if shown:
        problems.append(
            (
                loc,
                f"${{{name}}}: environment variables are replaced only in settings, never "
                "in text that is shown or stored (write $${...} for a literal)",
            )
        )
        return ""
    value = expansion.environ.get(name)
    if value is None or (value == "" and default is not None):
        if default is None:
            problems.append(
                (loc, f"environment variable ${{{name}}} is not set (and has no default)")
            )
            return ""
        return default
    if value:
        expansion.expanded[value] = name
    return value


def _is_shown_text(loc: tuple[str | int, ...]) -> bool:
    match loc:
        case ("events", int(), "id" | "name") | ("events", int(), "tags", int()):
            return True
        case ("notifiers", str(), "subject" | "body" | "html"):
            return True
    return False


def _clean_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    # A tagged union puts the tag ("webhook") into the location; the user never wrote it.
    if len(loc) > 2 and loc[0] == "notifiers" and loc[2] in NOTIFIER_TYPES:
        return (*loc[:2], *loc[3:])
    return loc


_FIXED_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "union_tag_not_found": f"the notifier needs a 'type' ({' or '.join(NOTIFIER_TYPES)})",
}
_TYPED_KINDS = (
    "int_",
    "float_",
    "string_",
    "bool",
    "dict_",
    "list_",
    "tuple_",
    "literal_",
    "greater",
    "less",
    "too_",
)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind in _FIXED_MESSAGES:
        return _FIXED_MESSAGES[kind]
    if kind == "union_tag_invalid":
        known = ", ".join(NOTIFIER_TYPES)
        return f"unknown notifier type {error['input'].get('type')!r} (known: {known})"
    if kind.startswith(("datetime_", "date_")):
        return f"expected a date-time such as 2026-12-01T19:30:00+01:00, got {error['input']!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.startswith(_TYPED_KINDS):
        return f"{message[0].lower()}{message[1:]}, got {error['input']!r}"
    return message


def _problem(root: yaml.Node | None, loc: tuple[str | int, ...], message: str) -> str:
    line = _line_of(root, loc)
    where = f"{line}:" if line is not None else ""
    return f"{where} {_format_loc(loc)}: {message}" if loc else f"{where} {message}"


def _format_loc(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    line = key.start_mark.line + 1
                    child = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            return line
        node = child
    return line
