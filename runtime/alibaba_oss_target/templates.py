"""Key templates (`OSS_KEY_TEMPLATE`): object keys built from the event's attributes and time.

A template is literal text with two kinds of fields:

- `{name}`: the value of the context attribute `name` (`{id}`, `{type}`, `{source}`,
  `{subject}`, or any extension; names are CloudEvents attribute names, core 1.0.2: lowercase
  ASCII letters and digits). Integers and booleans give their canonical string (`true`, `42`).
  Every character outside `A-Za-z0-9._-` is percent-encoded (UTF-8, `%2F` for `/`), and a value
  made only of dots has them encoded too, so a value never adds a folder, a `.`/`..` segment or
  a control character. An attribute the event lacks (or sends empty) is a 400 naming it.
- `%X`: the event's `time` in UTC (the time of receipt when the event has none; a redelivery of
  such an event may then land under another key; a time whose UTC is outside years 0001-9999 is
  clamped to the first or last instant, see core.event_time). Directives (their strftime
  meaning; none that depends on the locale):
  `%Y %m %d %H %M %S %F (=%Y-%m-%d) %T (=%H:%M:%S) %j %y %G %V %u %w %s`, and `%%` for `%`.

Special case: the template `{id}` alone (the default) keeps the id as sent, exactly as before
templates existed (the seed's contract); the key rules of `keys.py` still apply to it.

Pure and standard-library only (the Pulumi component checks `keyTemplate` with `parse_template`).
Any template is checked at start-up: unknown directives, unbalanced braces, bad names, or literal
text that no event could make a valid key with (a control character, a leading `/`, a `..`
segment) raise InvalidTemplate, which the settings turn into exit code 2. Whatever an event makes
of it is checked again by the key rules (400 `invalid-key`: too long, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .key_rules import ROLLED_NAME_BYTES, key_problem

DEFAULT_TEMPLATE = "{id}"
# CloudEvents core 1.0.2, "Attribute Naming Convention": lowercase ASCII letters and digits.
_NAME = re.compile(r"[a-z0-9]+", re.ASCII)
# Names the event format uses for the payload, not context attributes (JSON event format 1.0.2,
# section 3.1): never an attribute, so a template naming them would refuse every event.
_NOT_ATTRIBUTES = frozenset({"data"})
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_FIELD = re.compile(r"\{([^{}]*)\}|%(.)|([{}])", re.DOTALL)

_DIRECTIVES: dict[str, Callable[[datetime], str]] = {
    "Y": lambda t: f"{t.year:04d}",
    "m": lambda t: f"{t.month:02d}",
    "d": lambda t: f"{t.day:02d}",
    "H": lambda t: f"{t.hour:02d}",
    "M": lambda t: f"{t.minute:02d}",
    "S": lambda t: f"{t.second:02d}",
    "F": lambda t: f"{t.year:04d}-{t.month:02d}-{t.day:02d}",
    "T": lambda t: f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}",
    "j": lambda t: f"{t.timetuple().tm_yday:03d}",
    "y": lambda t: f"{t.year % 100:02d}",
    "G": lambda t: f"{t.isocalendar()[0]:04d}",
    "V": lambda t: f"{t.isocalendar()[1]:02d}",
    "u": lambda t: str(t.isoweekday()),
    "w": lambda t: str(t.isoweekday() % 7),
    "s": lambda t: str(int(t.timestamp())),
    "%": lambda t: "%",
}


class InvalidTemplate(ValueError):
    """OSS_KEY_TEMPLATE cannot form a valid key for any event (start-up error, exit 2)."""


class MissingAttribute(ValueError):
    """The event lacks an attribute the key template names (core.py answers 400)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"the event has no '{name}' attribute, which the object key template "
            "(OSS_KEY_TEMPLATE) needs"
        )
        self.name = name


@dataclass(frozen=True)
class _Literal:
    text: str


@dataclass(frozen=True)
class _Attribute:
    name: str


@dataclass(frozen=True)
class _Time:
    directive: str


_Part = _Literal | _Attribute | _Time


@dataclass(frozen=True)
class KeyTemplate:
    """A parsed template; `render(attributes, time)` gives the key part after OSS_KEY_PREFIX."""

    text: str
    parts: tuple[_Part, ...]

    @property
    def is_plain_id(self) -> bool:
        """The default `{id}`: the id as sent, not encoded (the behaviour before templates)."""
        return self.parts == (_Attribute("id"),)

    @property
    def uses_time(self) -> bool:
        return any(isinstance(part, _Time) for part in self.parts)

    def without_id(self) -> KeyTemplate:
        """The template with its `{id}` fields removed: the group key of rolled objects."""
        return KeyTemplate(self.text, tuple(p for p in self.parts if p != _Attribute("id")))

    def render(self, attributes: Mapping[str, Any], time: Callable[[], datetime]) -> str:
        """The rendered key part from an event's attributes (str, int or bool values) and
        `time()`, its time in UTC (called only when the template has time fields); raises
        MissingAttribute naming an absent (or empty) attribute."""
        if self.is_plain_id:
            return str(attributes["id"])
        pieces = []
        when: datetime | None = None
        for part in self.parts:
            if isinstance(part, _Literal):
                pieces.append(part.text)
            elif isinstance(part, _Attribute):
                pieces.append(encode_segment(_value(attributes, part.name)))
            else:
                if when is None:
                    when = time()
                pieces.append(_DIRECTIVES[part.directive](when))
        return "".join(pieces)


def _value(attributes: Mapping[str, Any], name: str) -> str:
    value = attributes.get(name)
    if value is None or value == "":
        raise MissingAttribute(name)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode_segment(value: str) -> str:
    """`value` with every character outside `A-Za-z0-9._-` percent-encoded as UTF-8 (`%` too),
    and a value of only dots fully encoded: never a `/`, control character or dot segment."""
    if value.strip(".") == "":
        return "%2E" * len(value)
    if all(c in _SAFE for c in value):
        return value
    return "".join(c if c in _SAFE else _percent(c) for c in value)


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def parse_template(text: str, prefix: str = "") -> KeyTemplate:
    """Parse and check OSS_KEY_TEMPLATE (after `prefix`, OSS_KEY_PREFIX); raises InvalidTemplate
    with the reason."""
    if not text:
        raise InvalidTemplate("must not be empty")
    parts: list[_Part] = []
    position = 0
    for match in _FIELD.finditer(text):
        if match.start() > position:
            parts.append(_Literal(text[position : match.start()]))
        position = match.end()
        name, directive, stray = match.groups()
        if stray is not None:
            raise InvalidTemplate(f"unbalanced '{stray}' at character {match.start() + 1}")
        if name is not None:
            if not _NAME.fullmatch(name):
                raise InvalidTemplate(
                    f"'{{{name}}}' is not an attribute name (lowercase letters and digits)"
                )
            if name in _NOT_ATTRIBUTES:
                raise InvalidTemplate(f"'{{{name}}}' is the event's payload, not an attribute")
            parts.append(_Attribute(name))
        elif directive not in _DIRECTIVES:
            raise InvalidTemplate(
                f"'%{directive}' is not a supported time field (use one of "
                + " ".join("%" + d for d in _DIRECTIVES)
                + ")"
            )
        elif directive == "%":
            parts.append(_Literal("%"))
        else:
            parts.append(_Time(directive))
    if position < len(text):
        if text.endswith("%"):
            raise InvalidTemplate("ends with a lone '%' (write '%%' for a percent sign)")
        parts.append(_Literal(text[position:]))
    template = KeyTemplate(text, tuple(parts))
    _check_literals(template, prefix)
    return template


def check_mode(template: KeyTemplate, prefix: str = "", *, batched: bool) -> None:
    """Check `template` for the mode it is used in; raises InvalidTemplate (exit 2 at start-up).

    - One object per event (`batched` False): the template must hold `{id}`. Without it two
      events (of one type, say) get the same key, both are acknowledged and the second silently
      replaces the first.
    - Rolled objects (`batched` True): the key is the template without `{id}` + the object name
      (key_rules.ROLLED_NAME_BYTES), so that is what must form a valid key (`{id}/x` would start
      with `/`, `.{id}/x` would have a `.` segment).
    """
    if not batched:
        if not any(part == _Attribute("id") for part in template.parts):
            raise InvalidTemplate(
                "must contain {id} when each event is its own object (BATCH_MAX_EVENTS 0): "
                "otherwise distinct events get the same key and the last replaces the others"
            )
        return
    name = "0" * max(ROLLED_NAME_BYTES.values())
    problem = key_problem(
        prefix + _sample(template.without_id()) + name,
        "the key it forms for rolled objects (OSS_KEY_PREFIX + template without {id} + name)",
    )
    if problem is not None:
        raise InvalidTemplate(problem)


def _sample(template: KeyTemplate) -> str:
    """`template` rendered with harmless values (`x`, a fixed time)."""
    sample = datetime(2000, 1, 1, tzinfo=timezone.utc)
    return "".join(
        part.text
        if isinstance(part, _Literal)
        else "x"
        if isinstance(part, _Attribute)
        else _DIRECTIVES[part.directive](sample)
        for part in template.parts
    )


def _check_literals(template: KeyTemplate, prefix: str) -> None:
    """Render with harmless values and apply the key rules: what fails then fails for every
    event, so it is a configuration error, not a 400 per event."""
    problem = key_problem(prefix + _sample(template), "the key it forms (after OSS_KEY_PREFIX)")
    if problem is not None:
        raise InvalidTemplate(problem)
