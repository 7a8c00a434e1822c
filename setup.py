"""Lists the packages of the mapped folders (see pyproject.toml, [tool.setuptools.package-dir]):
`find_packages` cannot follow a mapping, so each folder's subpackages are found on disk here and
prefixed. Everything else about the build lives in pyproject.toml."""

from setuptools import find_packages, setup

PACKAGE = "cloudevents_connectors"
packages = [PACKAGE]
for folder in ("components", "runtime"):
    packages += [f"{PACKAGE}.{folder}"] + [
        f"{PACKAGE}.{folder}.{sub}" for sub in find_packages(folder, exclude=["*.tests*"])
    ]

setup(packages=packages)
