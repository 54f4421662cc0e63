"""The language table: how each language is compiled (once per submission) and run (per test).

Adding a language is one entry: a compiled language names its source file, compiler command
and artifact (the artifact is shipped back to the host and executed per test from a sealed
in-memory file); an interpreted one runs in the zygote's warm runtime (only Python does).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    name: str
    runtime: str  # "python": in the zygote's warm interpreter; "exec": run the compiled artifact
    source: str | None = None
    compile_argv: tuple[str, ...] | None = None
    artifact: str | None = None
    aliases: tuple[str, ...] = ()

    def available(self) -> bool:
        return self.compile_argv is None or shutil.which(self.compile_argv[0]) is not None


LANGUAGES: dict[str, Language] = {
    lang.name: lang
    for lang in (
        Language("python", runtime="python", aliases=("python3", "py", "py3")),
        Language("cpp", runtime="exec", source="main.cpp", artifact="prog",
                 compile_argv=("g++", "-O2", "-std=gnu++17", "-pipe", "-o", "prog", "main.cpp"),
                 aliases=("c++", "cpp17", "cxx", "g++")),
        Language("c", runtime="exec", source="main.c", artifact="prog",
                 compile_argv=("gcc", "-O2", "-std=gnu11", "-pipe", "-o", "prog", "main.c", "-lm")),
    )
}


def resolve(name: str) -> Language:
    """The language called `name` (or one of its aliases), or ValueError naming the choices."""
    key = name.strip().lower()
    for lang in LANGUAGES.values():
        if key == lang.name or key in lang.aliases:
            if not lang.available():
                raise ValueError(f"language {name!r} is not installed on this sandbox ({lang.compile_argv[0]} missing)")
            return lang
    raise ValueError(f"language must be one of {sorted(available())}, got {name!r}")


def available() -> list[str]:
    return [name for name, lang in LANGUAGES.items() if lang.available()]
