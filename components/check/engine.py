"""A recording Pulumi mock engine: runs a program or component with no CLI, cloud or credentials.

Shared by `python -m components.check` and the test suite (`tests/pulumi_mocks.py`). Built on
Pulumi's public testing API only: `pulumi.runtime.set_mocks` (this class is the `Mocks`),
`@pulumi.runtime.test` to run a program body and to read an Output's value, and a stack
transformation (`pulumi.runtime.register_stack_transformation`) to see each resource's options
(parent, explicit dependencies, protect, providers) that `Mocks.new_resource` is not told. Pulumi's
mocks are global (the last `set_mocks` wins), so one `MockEngine` is installed per process and
`reset()` between runs. Resources answer with their inputs plus the few outputs the clouds compute;
in preview mode those computed outputs are left out, so they stay unknown exactly as in a
`pulumi preview`.
"""

import asyncio
import base64
import hashlib
import logging
import runpy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks

# How Pulumi marks a secret inside a property map (sdk/python/lib/pulumi/runtime/rpc.py).
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 - a marker, not a secret
SECRET_MARKER = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - a marker

DEFAULT_APP_ID = "1250000000"


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()
"""What `MockEngine.value` answers for an output that is unknown (preview of a computed value)."""


def secret(value: Any) -> dict:
    """`value` in Pulumi's secret wrapper, as a mock answers it to make an output secret."""
    return {SECRET_SIG: SECRET_MARKER, "value": value}


def is_secret(value: Any) -> bool:
    """Whether `value` is a secret-wrapped property value."""
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARKER


def unwrap(value: Any) -> Any:
    """`value` with every secret wrapper removed, at any depth."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def plain_strings(value: Any) -> Iterator[str]:
    """Every string (keys and values) of `value` that is not inside a secret wrapper."""
    if is_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from plain_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from plain_strings(v)


@dataclass(frozen=True)
class Registration:
    """One resource the program registered, as the engine saw it."""

    typ: str
    name: str
    urn: str
    parent: str
    custom: bool
    provider: str
    """Provider reference `urn::id` of a custom resource ('' = default provider)."""
    providers: dict
    """Package -> provider reference, as given to a component."""
    protect: bool
    inputs: dict
    """Inputs as sent: camelCase keys, numbers as floats, secrets wrapped (see `unwrap`)."""
    outputs: dict
    id: str | None
    dependencies: tuple = ()
    ignore_changes: tuple = ()

    @property
    def plain_inputs(self) -> dict:
        return unwrap(self.inputs)


def _fake_digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _kubernetes_outputs(args: mocks.MockResourceArgs, urn_hint: str, preview: bool) -> dict:
    state: dict = {}
    metadata = dict(args.inputs.get("metadata") or {})
    # The provider auto-names objects without a name at check time, so the name is known in preview.
    metadata.setdefault("name", f"{args.name}-{_fake_digest(urn_hint)[:8]}")
    state["metadata"] = metadata
    if preview:
        return state
    spec = args.inputs.get("spec") or {}
    if args.typ == "kubernetes:core/v1:Service" and spec.get("type") == "LoadBalancer":
        state["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
    elif args.typ == "kubernetes:serving.knative.dev/v1:Service":
        ns = metadata.get("namespace", "default")
        state["status"] = {"url": f"http://{metadata['name']}.{ns}.example.com"}
    return state


def _computed_outputs(args: mocks.MockResourceArgs, app_id: str, preview: bool) -> tuple[str, dict]:
    """(id, outputs beyond the inputs) for the resource types this project uses."""
    # A secret input (a bucket name from `config.require_secret`) names the resource all the same.
    typ, inputs, name = args.typ, unwrap(args.inputs), args.name
    digest = _fake_digest(typ, name)
    if typ.startswith("kubernetes:") and not typ.startswith("pulumi:providers"):
        return f"{name}-id", _kubernetes_outputs(args, f"{typ}::{name}", preview)
    if typ == "alicloud:oss/bucket:Bucket":
        return inputs.get("bucket", name), {}
    if typ == "tencentcloud:Cos/bucket:Bucket":
        bucket = inputs.get("bucket", name)
        url = f"{bucket}.cos.mock.myqcloud.com"
        # An output made from a secret stays secret, as the engine keeps it.
        url = secret(url) if is_secret(args.inputs.get("bucket")) else url
        return bucket, {} if preview else {"cosBucketUrl": url}
    if typ == "tencentcloud:Scf/function:Function":
        ident = f"{inputs.get('namespace', 'default')}+{inputs.get('name', name)}"
        if preview:
            return ident, {}
        infos = [
            {**t, "enable": True, "createTime": "2026-01-01 00:00:00"}
            for t in unwrap(inputs.get("triggers") or [])
        ]
        return ident, {"functionId": f"lam-{digest[:8]}", "triggerInfos": infos}
    if preview:
        return f"{name}-id", {}
    if typ == "random:index/randomBytes:RandomBytes":
        raw = hashlib.sha256(digest.encode()).digest()[: int(inputs.get("length", 32))]
        return "mock", {
            "base64": secret(base64.b64encode(raw).decode()),
            "hex": secret(raw.hex()),
        }
    if typ == "alicloud:ram/role:Role":
        role = inputs.get("roleName", name)
        return role, {"arn": f"acs:ram::1000000000000001:role/{role.lower()}"}
    if typ == "docker-build:index:Image":
        # The registry's digest of the pushed manifest; unknown in preview, as in a real one.
        return f"{name}-id", {"digest": f"sha256:{digest}"}
    if typ == "alicloud:ram/accessKey:AccessKey":
        return "LTAI5t" + digest[:18], {"secret": secret("mock-" + digest[:30]), "status": "Active"}
    return f"{name}-id", {}


class MockEngine(pulumi.runtime.Mocks):
    """Records every registration and answers invokes; see the module docstring."""

    def __init__(
        self,
        project: str,
        stack: str = "dev",
        *,
        preview: bool = False,
        app_id: str = DEFAULT_APP_ID,
    ) -> None:
        self.project = project
        self.stack = stack
        self.preview = preview
        self.app_id = app_id
        self.resources: list[Registration] = []
        self.invokes: list[tuple[str, dict]] = []
        self.warnings: list[str] = []
        """What the program logged with pulumi.log.warn (the CLI would show it as a warning)."""
        self._lock = threading.Lock()
        # This run's resources as constructed (transformation) and as registered (new_resource),
        # joined after the run; a failed run's stragglers land in a list nobody reads any more.
        self._constructed: list[pulumi.ResourceTransformationArgs] = []
        self._registered: dict[tuple[str, str], tuple[mocks.MockResourceArgs, Any, dict]] = {}
        self._root: Any = None

    def install(self) -> "MockEngine":
        _ensure_event_loop()
        pulumi.runtime.set_mocks(
            self,
            project=self.project,
            stack=self.stack,
            preview=self.preview,
            logger=self._program_logger(),
        )
        root = pulumi.runtime.get_root_resource()
        if root is not self._root:
            # The root stack outlives set_mocks; register on each new one only.
            pulumi.runtime.register_stack_transformation(self._constructing)
            self._root = root
        return self

    def _constructing(self, args: pulumi.ResourceTransformationArgs) -> None:
        """Stack transformation: note the resource and its options, change nothing."""
        with self._lock:
            self._constructed.append(args)

    def _program_logger(self) -> logging.Logger:
        """A logger keeping the program's warnings in `self.warnings` instead of printing them."""
        engine = self

        class _Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.levelno >= logging.WARNING:
                    with engine._lock:
                        engine.warnings.append(record.getMessage())

        logger = logging.getLogger(f"cloudevents_connectors.check.{id(self)}")
        logger.propagate = False
        logger.setLevel(logging.WARNING)
        logger.handlers = [_Keep()]
        return logger

    # --- pulumi.runtime.Mocks -------------------------------------------------------------------
    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict]:
        resource_id, computed = _computed_outputs(args, self.app_id, self.preview)
        state = {**args.inputs, **computed}
        with self._lock:
            self._registered[(args.typ, args.name)] = (args, resource_id, state)
        return resource_id, state

    def call(self, args: mocks.MockCallArgs) -> dict:
        with self._lock:
            self.invokes.append((args.token, dict(args.args)))
        if args.token == "tencentcloud:User/getInfo:getInfo":  # noqa: S105 - an invoke token
            return {"appId": self.app_id, "uin": "100000000001", "ownerUin": "100000000001"}
        return {}

    # --- queries --------------------------------------------------------------------------------
    def of_type(self, token: str) -> list[Registration]:
        return [r for r in self.resources if r.typ == token]

    def one(self, token: str) -> Registration:
        found = self.of_type(token)
        if len(found) != 1:
            names = [r.name for r in found]
            raise AssertionError(f"expected exactly one {token}, found {len(found)}: {names}")
        return found[0]

    def named(self, name: str) -> Registration:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one resource named {name!r}, found {len(found)}"
            )
        return found[0]

    def children_of(self, urn: str) -> list[Registration]:
        return [r for r in self.resources if r.parent == urn]

    def descendants_of(self, urn: str) -> list[Registration]:
        found, frontier = [], [urn]
        while frontier:
            kids = self.children_of(frontier.pop())
            found += kids
            frontier += [k.urn for k in kids]
        return found

    def reset(self) -> None:
        """Forget what was recorded, the stack's exports and the config."""
        with self._lock:
            self.resources.clear()
            self.invokes.clear()
            self.warnings.clear()
            self._constructed = []
            self._registered = {}
        root = pulumi.runtime.get_root_resource()
        if root is not None and hasattr(root, "outputs"):
            root.outputs.clear()
        pulumi.runtime.set_all_config({}, [])
        # A program that failed leaves its first error in the runtime's settings, where the next
        # run would find it; set_mocks starts a fresh settings bag.
        self.install()

    # --- running --------------------------------------------------------------------------------
    def run(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` as a Pulumi program body (under `@pulumi.runtime.test`), wait until every
        registration is done, and record them; answers what `fn` returned."""
        result: dict[str, Any] = {}

        @pulumi.runtime.test
        def body() -> None:
            result["value"] = fn()

        with self._lock:
            self._constructed, self._registered = [], {}
        try:
            body()
        except BaseException:
            # A fresh settings bag: the failed run's first error stays with the old one.
            self.install()
            raise
        self._record()
        return result.get("value")

    def _record(self) -> None:
        with self._lock:
            constructed, registered = list(self._constructed), dict(self._registered)
        root_urn = self.value(pulumi.runtime.get_root_resource().urn)
        urns = {id(args.resource): self.value(args.resource.urn) for args in constructed}
        for args in constructed:
            resource, opts = args.resource, args.opts
            answer = registered.get((args.type_, args.name))
            if answer is None:
                continue  # constructed, never registered (the run failed before)
            mock_args, resource_id, state = answer
            parent = opts.parent
            dependencies = [urns.get(id(d)) or self.value(d.urn) for d in _listed(opts.depends_on)]
            dependencies += [
                urns.get(id(d)) or self.value(d.urn) for d in self._implicit(args.props)
            ]
            registration = Registration(
                typ=args.type_,
                name=args.name,
                urn=urns[id(resource)],
                parent=urns.get(id(parent)) or (self.value(parent.urn) if parent else root_urn),
                custom=isinstance(resource, pulumi.CustomResource),
                provider=mock_args.provider or "",
                providers={
                    p.package: f"{urns.get(id(p)) or self.value(p.urn)}::{self.value(p.id)}"
                    for p in _listed(opts.providers)
                },
                protect=bool(opts.protect),
                inputs=mock_args.inputs,
                outputs=state,
                id=resource_id or None,
                dependencies=tuple(dict.fromkeys(dependencies)),
                ignore_changes=tuple(opts.ignore_changes or ()),
            )
            with self._lock:
                self.resources.append(registration)

    def _implicit(self, props: Any) -> list[pulumi.Resource]:
        """The resources whose Outputs flow into `props` (Pulumi's implicit dependencies)."""
        found: list[pulumi.Resource] = []
        for output in _outputs_in(props):
            found += self.value(pulumi.Output.from_input(output.resources())) or []
        return found

    def run_program(
        self,
        program: str | Path,
        config: dict[str, str] | None = None,
        secret_keys: list[str] | tuple = (),
    ) -> dict[str, Any]:
        """Run a program file with `config` (`project:key` -> string); answer its exports."""
        pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys))
        self.run(lambda: runpy.run_path(str(program), run_name="__main__"))
        return self.exports()

    def exports(self) -> dict[str, Any]:
        root = pulumi.runtime.get_root_resource()
        outputs = getattr(root, "outputs", {}) or {}
        return {k: self.value(v) for k, v in outputs.items()}

    def value(self, value: Any) -> Any:
        """The resolved value of an Output (or plain input); `UNKNOWN` when it is not known (an
        apply is not run on an unknown value)."""
        seen: dict[str, Any] = {}

        @pulumi.runtime.test
        def read() -> pulumi.Output:
            return pulumi.Output.from_input(value).apply(lambda v: seen.setdefault("value", v))

        read()
        return seen.get("value", UNKNOWN)

    def is_secret_output(self, value: Any) -> bool:
        output = pulumi.Output.from_input(value)
        return bool(self.value(pulumi.Output.from_input(output.is_secret())))


def _listed(value: Any) -> list:
    """Resource options that take one resource, a list or a mapping, as a list."""
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _outputs_in(value: Any) -> Iterator[pulumi.Output]:
    if isinstance(value, pulumi.Output):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _outputs_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _outputs_in(v)


__all__ = [
    "DEFAULT_APP_ID",
    "UNKNOWN",
    "MockEngine",
    "Registration",
    "is_secret",
    "plain_strings",
    "secret",
    "unwrap",
]


def _ensure_event_loop() -> None:
    """Pulumi's mocks take the thread's current event loop; `asyncio.run` leaves none set when it
    returns, so a test suite that ran asyncio code first could not install the engine."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
