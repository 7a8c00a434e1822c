"""`python -m components.check STACK`: validate a stack file, then list what the program declares.

No Pulumi CLI, cloud or credentials needed: the stack file is checked against Pulumi.yaml's
declarations and the components' rules, then the program runs under the mock engine in preview
mode (values the clouds compute are shown as unknown, secrets as [secret]). Exit 0 when valid,
1 on a missing or invalid stack file, 2 on a usage error.
"""

import argparse
import sys
from pathlib import Path

from ..stack_config import parse_stack_config
from .engine import UNKNOWN, MockEngine
from .stack_file import (
    StackFileError,
    engine_config,
    load_project,
    read_stack,
    stack_path,
)


class _SecretPlaceholder:
    """A set secret whose ciphertext the check cannot (and need not) read."""

    def __repr__(self) -> str:
        return "[secret]"


def _parent_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if urn else ""


def _tree_order(engine: MockEngine) -> list:
    """Parents before their children, siblings by name: stable output for stable input."""
    ordered, urns = [], {r.urn for r in engine.resources}

    def visit(parent_urn: str) -> None:
        for r in sorted(engine.children_of(parent_urn), key=lambda r: (r.name, r.typ)):
            ordered.append(r)
            visit(r.urn)

    for root in {r.parent for r in engine.resources if r.parent not in urns}:
        visit(root)
    return ordered


def _show(engine: MockEngine, value: object) -> str:
    if engine.is_secret_output(value):
        return "[secret]"
    resolved = engine.value(value)
    return "(unknown until deployed)" if resolved is UNKNOWN else repr(resolved)


def check(stack: str, project_dir: Path, out=sys.stdout, err=sys.stderr) -> int:
    project = load_project(project_dir)
    path = stack_path(project, stack)
    stack_values = read_stack(project, stack)
    secrets = {key: _SecretPlaceholder() for key in stack_values.secrets}
    parse_stack_config(stack_values.values, secrets, project=project.name, stack=stack)
    print(f"{path}: valid", file=out)

    config, secret_keys = engine_config(project, stack_values)
    engine = MockEngine(project.name, stack=stack, preview=True).install()
    sys.path.insert(0, str(project.root))
    try:
        engine.run_program(project.main, config, secret_keys)
    finally:
        sys.path.remove(str(project.root))
    # What the program warns about (e.g. a stack that deploys nothing), as the CLI would show it.
    for message in engine.warnings:
        print(f"warning: stack {stack}: {message}", file=err)
    import pulumi

    exports = getattr(pulumi.runtime.get_root_resource(), "outputs", {}) or {}
    rows = [(r.typ, r.name, _parent_name(r.parent)) for r in _tree_order(engine)]
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(("TYPE", "NAME"))]
    print(f"\nresources the program would declare ({len(rows)}):", file=out)
    print(f"  {'TYPE':<{widths[0]}}  {'NAME':<{widths[1]}}  PARENT", file=out)
    for typ, name, parent in rows:
        print(f"  {typ:<{widths[0]}}  {name:<{widths[1]}}  {parent}", file=out)
    for token, _args in engine.invokes:
        print(f"  (invoke {token} answered by the mock engine)", file=out)
    print(f"\noutputs ({len(exports)}):", file=out)
    for name, value in exports.items():
        print(f"  {name} = {_show(engine, value)}", file=out)
    return 0


def _stack_and_project(argument: str, project_dir: Path | None) -> tuple[str, Path]:
    """`dev`, or a path to a stack file (`stacks/Pulumi.dev.yaml`): the stack's name and the
    folder of its Pulumi.yaml (given, or the nearest one above the stack file)."""
    candidate = Path(argument)
    is_path = candidate.suffix in (".yaml", ".yml") or "/" in argument
    if not is_path:
        return argument, (project_dir or Path.cwd()).resolve()
    if not candidate.is_file():
        raise StackFileError(f"{candidate}: no such stack file")
    name = candidate.name
    if not (name.startswith("Pulumi.") and name.endswith((".yaml", ".yml"))):
        raise StackFileError(f"{candidate}: a stack file is named Pulumi.<stack>.yaml")
    stack = name[len("Pulumi.") :].rsplit(".", 1)[0]
    if project_dir is None:
        project_dir = next(
            (d for d in candidate.resolve().parents if (d / "Pulumi.yaml").is_file()), None
        )
        if project_dir is None:
            raise StackFileError(f"{candidate}: no Pulumi.yaml above it; pass --project-dir")
    project_dir = project_dir.resolve()
    expected = stack_path(load_project(project_dir), stack)
    if expected.resolve() != candidate.resolve():
        raise StackFileError(
            f"{candidate}: Pulumi reads stack {stack} from {expected} (stackConfigDir), not here"
        )
    return stack, project_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.check",
        description="Validate stacks/Pulumi.<STACK>.yaml and list what the program would declare "
        "(mock engine: no Pulumi CLI, cloud or credentials).",
    )
    parser.add_argument(
        "stack", help="stack name (e.g. dev) or path to its file (stacks/Pulumi.dev.yaml)"
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="folder of Pulumi.yaml (default: . for a name, the stack file's project for a path)",
    )
    args = parser.parse_args(argv)
    stack = args.stack
    try:
        stack, project_dir = _stack_and_project(args.stack, args.project_dir)
        return check(stack, project_dir)
    except (StackFileError, ValueError) as error:
        print(f"error: stack {stack}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
