"""`python -m cloudevents_connectors`: the component provider that lets TypeScript, Go, C#, Java
and YAML programs use AlibabaOssTarget, TencentCosSource and ContainerRuntime.

PulumiPlugin.yaml names this file as the plugin's entry point; `pulumi package add <this
repository>` then runs it, and Pulumi's Python component host (`pulumi.provider.experimental`)
infers the schema from the components' Args TypedDicts and output annotations. The Python-only
knobs (TencentCosSource's `package_dir`, ContainerRuntime's `workload`) are keyword arguments, not
Args fields, so they never reach that schema.
"""

import sys
from pathlib import Path

PACKAGE = "cloudevents-connectors"
VERSION = "0.1.0"


def components() -> list[type]:
    """The ComponentResources the provider hosts."""
    from cloudevents_connectors import AlibabaOssTarget, ContainerRuntime, TencentCosSource

    return [AlibabaOssTarget, TencentCosSource, ContainerRuntime]


def main() -> None:
    from pulumi.provider.experimental import component_provider_host

    component_provider_host(components=components(), name=PACKAGE, version=VERSION)


if __name__ == "__main__":
    if not __package__:
        # Run as a file (the language host runs PulumiPlugin.yaml's `main`): the package is the
        # folder this file is in, found from the repository root.
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
