"""One schema per component: its Args TypedDict, read by pydantic v2 for Python callers and for the
stack file, and by Pulumi's component-provider analyzer for other languages.

The TypedDicts in the component modules are the only field lists. `validate(Args, value)` checks a
Python caller's args (snake_case names, `pulumi.Input` fields take an Output as is);
`validate(Args, value, stack_path="ossTarget")` checks a stack-file block (camelCase names, plain
YAML values) and answers the same args with Python names. Both are strict (no coercion: `"3"` is
not 3) and forbid unknown keys; a failure is a ValueError of one line, `<path>: <problem>`, the
path written in the caller's own names (`function.vpc.vpcId` in a stack file,
`function.vpc.vpc_id` in Python).

Rules that look at values (patterns, ranges, conflicts) live in the `*_spec` modules; they run on
plain values at construction and, through `checked`/`derived`, on Outputs when they resolve, with
the same messages.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any, ForwardRef, Union

import pulumi
import typing_extensions
from pydantic import BeforeValidator, ConfigDict, InstanceOf, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

_BASE = {"strict": True, "extra": "forbid", "arbitrary_types_allowed": True}
# The places where the message names what was given: a YAML scalar where a list or an object
# belongs is the most common stack-file mistake.
_SCALARS = (str, int, float, bool)
_MESSAGES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "float_type": "must be a number",
}


_BOOL_TEXT = ("true", "false")


def whole(value: Any) -> Any:
    """A whole-number float as the int it is, anything else unchanged. Numbers from other languages
    cross the wire as floats, and Pulumi's component provider (pulumi 3.272) converts an integer
    input and then passes the float on; 2.5 stays 2.5 and is refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def is_output(value: Any) -> bool:
    """True for a value that resolves later (an Output or an awaitable)."""
    return isinstance(value, pulumi.Output) or inspect.isawaitable(value)


def checked(value: Any, rule: Callable[[Any], Any]) -> Any:
    """`rule(value)` now for a plain value; for an Output, the Output of `rule` applied when it
    resolves, so an invalid resolved value fails the deployment with the rule's own message."""
    if is_output(value):
        return pulumi.Output.from_input(value).apply(rule)
    return rule(value)


def setting(args: Any, key: str, default: Any) -> Any:
    """`args[key]`, or `default` when the key is absent; an Output that resolves to None resolves
    to `default`, as a plain None (an unset `config.get(...)`) is dropped by `validate`."""
    value = args.get(key, default)
    if is_output(value):
        return pulumi.Output.from_input(value).apply(lambda v: default if v is None else v)
    return default if value is None else value


def matching(field: str, value: Any, pattern: re.Pattern, what: str) -> Any:
    """`value` when it is a string `pattern` matches (an Output: checked when it resolves), else
    ValueError `<field>: <value> is not <what>`."""

    def rule(v: Any) -> str:
        if not isinstance(v, str) or not pattern.match(v):
            raise ValueError(f"{field}: {v!r} is not {what}")
        return v

    return checked(value, rule)


def derived(fn: Callable[..., Any], *values: Any) -> Any:
    """`fn(*values)` now when every value is plain, else an Output of it once all have resolved."""
    if any(is_output(v) for v in values):
        return pulumi.Output.all(*values).apply(lambda resolved: fn(*resolved))
    return fn(*values)


def _is_schema(tp: Any) -> bool:
    """A TypedDict, or a dataclass (the program's own stack-file blocks)."""
    return typing.is_typeddict(tp) or (isinstance(tp, type) and dataclasses.is_dataclass(tp))


def _fields(tp: type) -> tuple[dict[str, Any], frozenset[str]]:
    """(annotations, required keys) of a TypedDict or a dataclass."""
    if typing.is_typeddict(tp):
        return dict(tp.__annotations__), frozenset(tp.__required_keys__)
    fields = dataclasses.fields(tp)
    required = {
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    return {f.name: f.type for f in fields}, frozenset(required)


def _view(tp: Any, python: bool) -> Any:
    """The annotation as pydantic reads it: TypedDicts as typing_extensions TypedDicts with the
    schema's config (pydantic needs those before Python 3.12; Pulumi's analyzer needs `typing`
    ones), `pulumi.Input[T]` as T or an Output for Python callers and as T in a stack file."""
    if _is_schema(tp):
        return _typeddict(tp, python)
    if isinstance(tp, ForwardRef):  # Input's 'Output[T]'
        return InstanceOf[pulumi.Output]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union:
        members = [a for a in args if python or not _is_deferred(a)]
        return Union[tuple(_view(a, python) for a in members)]  # noqa: UP007 - built at run time
    if origin in (list, dict):
        return origin[tuple(_view(a, python) for a in args)]
    if tp is int and python:
        return typing.Annotated[int, BeforeValidator(whole)]
    return tp


def _is_deferred(tp: Any) -> bool:
    """An Input's Output or Awaitable member (never in a stack file)."""
    return isinstance(tp, ForwardRef) or typing.get_origin(tp) is collections.abc.Awaitable


# String fields whose values `pulumi config set --path` stores as YAML numbers (it writes
# `appId: 1250000000` and `cpuLimit: 1`): in a stack file a number there means its decimal text.
NUMERIC_TEXT_FIELDS = frozenset(
    {"app_id", "cpu_request", "cpu_limit", "memory_request", "memory_limit"}
)


def _number_as_text(value: Any) -> Any:
    """A YAML int or float (not a bool) as the text it stands for (1.0 as `1`); else unchanged."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(whole(value))
    return value


@functools.cache
def _typeddict(td: type, python: bool) -> type:
    fields = {}
    annotations, required = _fields(td)
    for key, annotation in annotations.items():
        view = _view(_unwrap(annotation), python)
        if not python and key in NUMERIC_TEXT_FIELDS and view is str:
            view = typing.Annotated[str, BeforeValidator(_number_as_text)]
        fields[key] = view if key in required else typing_extensions.NotRequired[view]
    config = ConfigDict(**_BASE) if python else ConfigDict(**_BASE, alias_generator=to_camel)
    view = typing_extensions.TypedDict(td.__name__, fields)  # type: ignore[operator]
    view.__pydantic_config__ = config  # type: ignore[attr-defined]
    return view


@functools.cache
def _adapter(td: type, python: bool) -> TypeAdapter:
    return TypeAdapter(_typeddict(td, python))


def field_names(td: type, *, stack: bool = False) -> list[str]:
    """The keys of a TypedDict (or dataclass), camelCase as written in a stack file when `stack`."""
    return [to_camel(k) if stack else k for k in _fields(td)[0]]


def _nested(td: Any, loc: tuple) -> Any:
    """The TypedDict at `loc` inside `td` (for listing the known keys), or None."""
    for part in loc:
        if not _is_schema(td):
            return None
        fields = _fields(td)[0]
        key = next((k for k in fields if part in (k, to_camel(k))), None)
        if key is None:
            return None
        annotation = fields[key]
        td = _unwrap(annotation)
    return td if _is_schema(td) else None


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) in (typing_extensions.NotRequired, typing.NotRequired):
        annotation = typing.get_args(annotation)[0]
    return annotation


def _problem(td: type, error: dict, stack: bool, python_loc: tuple) -> str:
    kind, given = error["type"], error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        known = _nested(td, python_loc[:-1])
        names = ", ".join(field_names(known, stack=stack)) if known else ""
        return f"unknown key; known: {names}" if stack else f"unknown argument; known: {names}"
    if kind == "list_type" and isinstance(given, str):
        return f"is the string {given!r}, not a list; write one `- <item>` line per item"
    if kind in ("list_type",):
        return f"must be a list, not {type(given).__name__}"
    if kind in ("dict_type", "typed_dict_type", "model_type", "dataclass_type"):
        return f"must be an object (key: value lines), not {type(given).__name__}"
    if stack and kind == "bool_type" and isinstance(given, str) and given.lower() in _BOOL_TEXT:
        return (
            f"must be true or false, not the string {given!r}; in the stack file write it "
            "unquoted (`pulumi config set --path <key> false` stores a boolean)"
        )
    if stack and kind == "int_type" and isinstance(given, str) and given.strip("-").isdigit():
        return f"must be an integer, not the string {given!r}; in the stack file write it unquoted"
    message = _MESSAGES.get(kind, error["msg"])
    if kind in _MESSAGES:
        message += f", not {given!r}" if isinstance(given, _SCALARS) else f", not {_kind(given)}"
    return message


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _field_loc(loc: tuple) -> tuple:
    """The loc without pydantic's union-member tags (`str`, `is-instance[Output]`, ...)."""
    return tuple(
        p
        for p in loc
        if not (isinstance(p, str) and (p in ("str", "int", "bool", "float") or "[" in p))
    )


def validate(td: type, value: Any, *, stack_path: str | None = None) -> dict[str, Any]:
    """Checks `value` against the TypedDict (or dataclass) `td`; answers a dict with Python names
    (the dataclass itself for a dataclass). Raises
    ValueError naming the first bad field: `region: is required`, or with `stack_path`
    `ossTarget.bucketName: must be a string, not 3`."""
    stack = stack_path is not None
    try:
        answer = _adapter(td, not stack).validate_python(_without_none(td, value))
    except ValidationError as error:
        errors = error.errors()
    else:
        return answer if stack else _check_resolved_bools(td, answer, "")
    first = errors[0]
    loc = _field_loc(first["loc"])
    # A union (an Input) fails once per member; the plain member's error says what was expected.
    same = [e for e in errors if _field_loc(e["loc"]) == loc]
    chosen = next((e for e in same if e["type"] != "is_instance_of"), first)
    python_loc = tuple(p for p in loc if isinstance(p, str))
    problem = _problem(td, chosen, stack, python_loc)
    # Keys as the caller wrote them: pydantic reports aliases (camelCase) for a stack file.
    written = ".".join(str(p) for p in loc)
    prefix = f"{stack_path}." if stack and stack_path else ""
    if not written:
        raise ValueError(f"{stack_path or 'args'}: {problem}")
    raise ValueError(f"{prefix}{written}: {problem}")


def _is_input_bool(annotation: Any) -> bool:
    """`pulumi.Input[bool]`: a union holding bool and an Output member."""
    members = typing.get_args(annotation) if typing.get_origin(annotation) is Union else ()
    return bool in members and any(_is_deferred(m) for m in members)


def plain_bool(field: str, value: Any, *, optional: bool = False) -> bool | None:
    """A boolean Input's resolved value: True or False only (None, "not set", too when
    `optional`; the reader's `setting` then answers the default). The text "false" (truthy in
    Python) and other stand-ins are refused with the message a plain value gets. Raises
    ValueError."""
    if isinstance(value, bool) or (optional and value is None):
        return value
    given = f"{value!r}" if isinstance(value, _SCALARS) else _kind(value)
    raise ValueError(f"{field}: must be true or false, not {given}")


def _check_resolved_bools(td: Any, value: Any, path: str) -> Any:
    """`value` (validated args of schema `td`) with every Output held by a `pulumi.Input[bool]`
    field replaced by one that fails, when it resolves, unless it is True or False. Found from
    the schema, so a new boolean Input is checked without a list to keep."""
    if not _is_schema(td) or not isinstance(value, dict):
        return value
    annotations, required = _fields(td)
    answer = dict(value)
    for key, given in value.items():
        annotation = _unwrap(annotations.get(key))
        field = f"{path}{key}"
        if _is_input_bool(annotation) and is_output(given):
            rule = functools.partial(plain_bool, field, optional=key not in required)
            answer[key] = checked(given, rule)
        elif _is_schema(annotation):
            answer[key] = _check_resolved_bools(annotation, given, f"{field}.")
    return answer


def _without_none(td: Any, value: Any) -> Any:
    """`value` without the optional keys given as None: `config.get(...)` answers None for an
    unset key, and None means "not set" (the field's default applies). A required key given as
    None stays, to be refused."""
    if not _is_schema(td) or not isinstance(value, dict):
        return value
    annotations, required = _fields(td)
    names = {**{to_camel(k): k for k in annotations}, **{k: k for k in annotations}}
    answer = {}
    for key, given in value.items():
        name = names.get(key)
        if given is None and name is not None and name not in required:
            continue
        annotation = _unwrap(annotations.get(name))
        answer[key] = _without_none(annotation, given) if _is_schema(annotation) else given
    return answer


def stack_name(path: str) -> str:
    """A Python field path (`function.vpc.vpc_id`) as written in a stack file."""
    return ".".join(to_camel(part) for part in path.split("."))


def restate(error: ValueError, stack_path: str) -> ValueError:
    """A rule's `<python path>: <problem>` error with the path as written in the stack file."""
    path, _, problem = str(error).partition(": ")
    return ValueError(f"{stack_path}.{stack_name(path)}: {problem}")
