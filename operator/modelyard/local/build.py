"""Builds the local control plane binaries from Go modules, once, into a user cache.

The tests need a real kube-apiserver, controller manager, scheduler and etcd; Kubernetes
ships no such binaries as Python-installable artefacts and the machines have no container
engine, so we compile them from the pinned ``k8s.io/kubernetes`` module (source and go.sum
ship with this package under ``controlplane/``). The result is cached under
``~/.cache/modelyard/k8s-<version>/bin`` and keyed by a hash of the Go sources, so a
second ``build`` (or every test session) costs nothing.

One deliberate patch is applied at build time (to a hard-linked copy of the module): Endpoints and
EndpointSlices may hold loopback addresses. The node agent gives each pod a 127.x.y.z IP
(the only addresses any user can bind without root), and stock validation rejects those.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

K8S_VERSION = "v1.33.13"
HELM_VERSION = "v3.22.0"
CONTROLPLANE = "modelyard-controlplane"
SOURCE_DIR = Path(__file__).parent / "controlplane"
_SOURCES = ("go.mod", "go.sum", "main.go")

_PATCH_FILE = "pkg/apis/core/validation/validation.go"
_PATCH_OLD = (
    "\tif ip.IsLoopback() {\n"
    '\t\tallErrs = append(allErrs, field.Invalid(fldPath, ipAddress, "may not be in the loopback'
)
_PATCH_NEW = _PATCH_OLD.replace("ip.IsLoopback()", "ip.IsLoopback() && !modelyardAllowLoopback")
_PATCH_TAIL = (
    "\n// modelyardAllowLoopback lets Endpoints/EndpointSlices carry the loopback pod IPs of\n"
    "// modelyard's local node agent (patched in by modelyard.local.build).\n"
    "var modelyardAllowLoopback = true\n"
)

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """The Go toolchain is missing or a build step failed."""


def cache_root() -> Path:
    """``$MODELYARD_CACHE`` or ``~/.cache/modelyard``."""
    return Path(os.environ.get("MODELYARD_CACHE", Path.home() / ".cache" / "modelyard"))


def bin_dir() -> Path:
    """Where ``modelyard-controlplane``, ``kubectl`` and ``helm`` are installed."""
    return cache_root() / f"k8s-{K8S_VERSION}" / "bin"


def binary(name: str = CONTROLPLANE) -> Path:
    return bin_dir() / name


def go_env() -> dict[str, str]:
    """The environment for ``go``: module and build caches under ~/.cache unless set."""
    env = dict(os.environ)
    home = Path.home()
    env.setdefault("GOMODCACHE", str(home / ".cache" / "go-mod"))
    env.setdefault("GOCACHE", str(home / ".cache" / "go-build"))
    env.setdefault("GOPATH", str(home / ".cache" / "go"))
    env["CGO_ENABLED"] = "0"
    env["GOTOOLCHAIN"] = "local"
    env["GOFLAGS"] = "-mod=readonly"
    return env


def source_hash() -> str:
    """Cache key: the Go sources, the patch, and the pinned versions."""
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((SOURCE_DIR / name).read_bytes())
    for part in (K8S_VERSION, HELM_VERSION, _PATCH_NEW, _PATCH_TAIL):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _stamp() -> Path:
    return bin_dir() / ".source-hash"


def is_built() -> bool:
    stamp = _stamp()
    names = (CONTROLPLANE, "kubectl", "helm")
    return (
        stamp.exists()
        and stamp.read_text().strip() == source_hash()
        and all((bin_dir() / n).exists() for n in names)
    )


def _find_go() -> str:
    found = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if Path(p).exists()), None
    )
    if not found:
        raise BuildError("the Go toolchain (go >= 1.24) is needed: install it and retry")
    return found


def _version_ldflags() -> str:
    minor = K8S_VERSION.split(".")[1]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        for key, value in (
            ("gitVersion", K8S_VERSION), ("gitMajor", "1"), ("gitMinor", minor),
            ("gitCommit", f"modelyard-{K8S_VERSION}"), ("gitTreeState", "clean"),
            ("buildDate", "2026-06-11T16:59:07Z"),
        ):
            flags.append(f"-X {pkg}.{key}={value}")
    return " ".join(flags)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Progress, what: str) -> None:
    """Run a go command, relaying progress: a line per 50 packages or per 20 s of quiet."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    packages, last = 0, time.monotonic()
    tail: list[str] = []
    while True:
        try:
            line = lines.get(timeout=20)
        except queue.Empty:
            log(f"  {what}: {packages} packages compiled, {time.monotonic() - start:.0f}s "
                "(still working; linking is quiet)")
            continue
        if line is None:
            break
        tail = [*tail[-40:], line]
        if not line.startswith(("go: ", "#")) and " " not in line:
            packages += 1
        if packages and (packages % 50 == 0 or time.monotonic() - last > 20):
            last = time.monotonic()
            log(f"  {what}: {packages} packages compiled, {last - start:.0f}s (last: {line})")
    if proc.wait() != 0:
        raise BuildError(f"{what} failed:\n" + "\n".join(tail))
    log(f"  {what}: done in {time.monotonic() - start:.0f}s ({packages} packages compiled)")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _patch_kubernetes(work: Path, go: str, env: dict[str, str]) -> None:
    """Build against a patched copy of k8s.io/kubernetes (hard links, one file rewritten).

    ``go build -overlay`` may not replace files in the module cache, so the module is
    linked into ``work/kubernetes`` and the build module gets a ``replace`` to it.
    """
    mod_dir = subprocess.run(
        [go, "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"],
        cwd=work, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()
    dest = work / "kubernetes"
    if dest.exists():
        for path in [dest, *dest.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(dest)
    shutil.copytree(mod_dir, dest, copy_function=_link_or_copy)
    for path in [dest, *dest.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    target = dest / _PATCH_FILE
    text = target.read_text()
    if _PATCH_OLD not in text:
        raise BuildError(f"cannot apply the loopback-endpoint patch to {target}")
    target.unlink()  # a hard link into the module cache: never write through it
    target.write_text(text.replace(_PATCH_OLD, _PATCH_NEW) + _PATCH_TAIL)
    subprocess.run([go, "mod", "edit", "-replace", "k8s.io/kubernetes=./kubernetes"],
                   cwd=work, env=env, check=True)


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    bin_dir().parent.mkdir(parents=True, exist_ok=True)
    with (bin_dir().parent / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(log: Progress = print) -> Path:
    """Build (if needed) and return the bin directory; safe to call concurrently."""
    if is_built():
        return bin_dir()
    with _lock():
        if is_built():
            return bin_dir()
        go = _find_go()
        env = go_env()
        out = bin_dir()
        out.mkdir(parents=True, exist_ok=True)
        work = out.parent / "src"
        work.mkdir(exist_ok=True)
        for name in _SOURCES:
            shutil.copyfile(SOURCE_DIR / name, work / name)
        log(f"building Kubernetes {K8S_VERSION} control plane into {out} "
            "(cold: ~30 min on 2 cores; cached afterwards)")
        log("  downloading Go modules ...")
        try:
            subprocess.run([go, "mod", "download"], cwd=work, env=env, check=True)
            _patch_kubernetes(work, go, env)
        except subprocess.CalledProcessError as exc:
            raise BuildError(f"{' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})") from exc
        target = out / f"{CONTROLPLANE}.tmp"
        _run(
            [go, "build", "-v", "-trimpath",
             f"-ldflags={_version_ldflags()}", "-o", str(target), "."],
            work, env, log, CONTROLPLANE,
        )
        target.replace(out / CONTROLPLANE)
        kubectl = out / "kubectl"
        kubectl.unlink(missing_ok=True)
        kubectl.symlink_to(CONTROLPLANE)
        helm_env = dict(env, GOBIN=str(out), GOFLAGS="")
        _run(
            [go, "install", "-v", "-trimpath",
             f"-ldflags=-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
             f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
            work, helm_env, log, "helm",
        )
        _stamp().write_text(source_hash() + "\n")
        return out
