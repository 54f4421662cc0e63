"""Package list for the folder mapping in pyproject.toml (find_packages cannot follow package-dir)."""
from setuptools import find_packages, setup


def mapped(folder: str, name: str) -> list[str]:
    return [name] + [f"{name}.{sub}" for sub in find_packages(folder)]


setup(packages=find_packages(include=["qwqrl", "qwqrl.*"])
      + mapped("verifiers", "qwqrl.verifiers") + mapped("sandbox", "qwqrl.sandbox"))
