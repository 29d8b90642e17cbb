"""Read the images' Dockerfiles the way a build would: stages, the final stage's settings, the
pip installs split out of RUN lines, and which repository paths ``.dockerignore`` lets into
the build context (Docker's rules: patterns in order, the last match wins, ``!`` re-includes,
a pattern matching a directory matches everything under it)."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import shlex
from pathlib import Path

import dockerfile

ROOT = Path(__file__).resolve().parents[2]
TRIAL_ONLY = ("operator/modelyard/local", "operator/modelyard/quickstart")
"""For trying and testing modelyard on a workstation: kept out of every image (``.dockerignore``)."""
IMAGES = {
    "modelyard": ROOT / "images" / "modelyard" / "Dockerfile",
    "runtime": ROOT / "images" / "runtime" / "Dockerfile",
}


@dataclasses.dataclass
class Stage:
    base: str
    name: str | None
    commands: list[dockerfile.Command]

    def values(self, instruction: str) -> list[tuple[str, ...]]:
        return [c.value for c in self.commands if c.cmd == instruction]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for value in self.values("ENV"):
            out.update(zip(value[::2], value[1::2], strict=True))
        return out


def stages(path: Path) -> list[Stage]:
    found: list[Stage] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            value = command.value
            name = value[2] if len(value) == 3 and value[1].upper() == "AS" else None
            found.append(Stage(base=value[0], name=name, commands=[]))
        elif found:
            found[-1].commands.append(command)
    return found


def pip_installs(run: str) -> list[list[str]]:
    """The argument lists of every ``pip install`` in a RUN line."""
    out = []
    for part in re.split(r"&&|;|\|\|", run):
        words = shlex.split(part)
        for i in range(len(words) - 1):
            if words[i].endswith("pip") and words[i + 1] == "install":
                out.append(words[i + 2 :])
    return out


def pinned_lines(path: Path) -> dict[str, str]:
    """name -> version of a requirements/constraints file; raises on any unpinned line."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!-]*)", line)
        assert match, f"{path.relative_to(ROOT)}: not pinned with ==: {line!r}"
        pins[match.group(1).lower().replace("_", "-").replace(".", "-")] = match.group(2)
    return pins


def _matches(pattern: str, path: str) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    candidates = [pattern]
    if pattern.startswith("**/"):
        candidates.append(pattern[3:])
        prefixes += ["/".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(p, c.rstrip("/")) for c in candidates for p in prefixes)


def in_context(path: str) -> bool:
    """Whether ``path`` (relative to the repository root) reaches the build context."""
    included = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if _matches(line.lstrip("!"), path):
            included = negate
    return included


def context_files(source: str) -> list[str]:
    """The files under ``source`` (relative to the root) that reach the build context, as a
    ``COPY source ...`` would copy them (caches and build leftovers aside)."""
    path = ROOT / source
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    relative = (f.relative_to(ROOT).as_posix() for f in files)
    return [r for r in relative if in_context(r) and not _leftover(r)]


def _leftover(relative: str) -> bool:
    return "__pycache__" in relative or ".egg-info/" in relative or relative.endswith(".pyc")
