"""The live adapters' rules, without a model: idempotent loads, 409 for a taken name or a full
set (never an eviction), the last error per name, unload's 404, and the adapters file applied
by change (a stale file neither undoes an HTTP load nor brings back an HTTP unload)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from modelyard.runtime import errors, liveadapters, options, served


class FakeChat:
    """A chat handler that takes adapters and records what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def generate(self, messages: Any, **_: Any) -> Any:
        raise NotImplementedError

    def load_adapter(self, key: str, path: str, *, max_rank: int) -> None:
        if "bad" in path:
            raise errors.BadRequestError(f"lora_path {path}: does not exist", param="lora_path")
        self.calls.append(("load", key, path))

    def unload_adapter(self, key: str) -> None:
        self.calls.append(("unload", key))


def registry(max_adapters: int = 2) -> tuple[liveadapters.Registry, FakeChat, list[str]]:
    handler = FakeChat()
    models = served.ModelSet([served.serve("base", handler, options.ServerSettings())])
    outcomes: list[str] = []
    r = liveadapters.Registry(models, max_adapters=max_adapters, max_rank=8, observe=outcomes.append)
    return r, handler, outcomes


def test_a_load_serves_the_name_over_the_base_and_a_resend_changes_nothing() -> None:
    r, handler, outcomes = registry()
    assert r.load("sql", "file:///a/sql") is True
    model = r.models.get("sql", "chat")
    assert (model.parent, model.root, model.handler) == ("base", "/a/sql", handler)
    assert model.adapter is not None and model.limiter is r.models.get("base").limiter
    assert r.load("sql", "/a/sql") is False  # the operator re-sends
    assert len(handler.calls) == 1 and outcomes == ["loaded"]
    assert r.status().model_dump(by_alias=True) == {
        "loaded": [{"name": "sql", "path": "/a/sql"}],
        "errors": [],
        "maxAdapters": 2,
    }


def test_conflicts_are_409_and_bad_adapters_400_each_kept_as_the_names_last_error() -> None:
    r, _, outcomes = registry(max_adapters=2)
    r.load("sql", "/a/sql")
    with pytest.raises(errors.ConflictError, match="already loaded from /a/sql"):
        r.load("sql", "/a/other")
    with pytest.raises(errors.BadRequestError, match="is a model this server serves"):
        r.load("base", "/a/x")
    with pytest.raises(errors.BadRequestError, match="does not exist"):
        r.load("broken", "/a/bad")
    r.load("chat", "/a/chat")
    with pytest.raises(errors.ConflictError, match=r"maxAdapters reached: 2 adapters .*--max-adapters 2"):
        r.load("third", "/a/third")
    assert sorted(r.loaded) == ["chat", "sql"]  # nothing evicted
    errs = {e.name: e.message for e in r.status().errors}
    assert set(errs) == {"sql", "base", "broken", "third"}
    assert "does not exist" in errs["broken"]
    assert outcomes.count("failed") == 4 and outcomes.count("loaded") == 2


def test_unload_frees_the_name_and_clears_its_error_and_an_unknown_name_is_404() -> None:
    r, handler, _ = registry()
    with pytest.raises(errors.BadRequestError):
        r.load("sql", "/a/bad")
    r.load("sql", "/a/sql")
    assert "sql" not in {e.name for e in r.status().errors}
    key = r.models.get("sql").adapter
    r.unload("sql")
    assert handler.calls[-1] == ("unload", key)
    with pytest.raises(errors.ModelNotFoundError, match="does not exist"):
        r.models.get("sql")
    with pytest.raises(errors.ModelNotFoundError, match="no adapter 'sql' is loaded"):
        r.unload("sql")
    r.load("sql", "/a/sql2")  # a new load gets a new key
    assert r.models.get("sql").adapter != key


def test_the_adapters_file_is_applied_by_change(tmp_path: pathlib.Path) -> None:
    r, _, _ = registry(max_adapters=8)
    path = tmp_path / "adapters.json"
    path.write_text(json.dumps([{"name": "a", "path": "/x/a"}, {"name": "b", "path": "/x/b"}]))
    watched = liveadapters.AdaptersFile(str(path))
    watched.apply(r)
    assert sorted(r.loaded) == ["a", "b"]
    r.load("pushed", "/x/pushed")  # over HTTP, before the file lists it
    r.unload("b")  # over HTTP, before the file drops it
    watched.apply(r)  # unchanged file: nothing undone, nothing brought back
    assert sorted(r.loaded) == ["a", "pushed"]
    path.write_text(json.dumps([{"name": "b", "path": "/x/b2"}, {"name": "pushed", "path": "/x/pushed"}]))
    watched.apply(r)
    assert {n: a.path for n, a in r.loaded.items()} == {"b": "/x/b2", "pushed": "/x/pushed"}


def test_a_missing_or_invalid_file_changes_nothing(tmp_path: pathlib.Path) -> None:
    r, _, _ = registry()
    path = tmp_path / "adapters.json"
    watched = liveadapters.AdaptersFile(str(path))
    watched.apply(r)  # not there yet (the ConfigMap not mounted): no adapters
    assert r.loaded == {}
    path.write_text(json.dumps([{"name": "a", "path": "/x/a"}]))
    watched.apply(r)
    path.write_text('[{"name": "a"}]')  # no path: logged, the last good reading stays
    watched.apply(r)
    assert list(r.loaded) == ["a"]
    path.write_text(json.dumps([{"name": "bad-one", "path": "/x/bad"}, {"name": "a", "path": "/x/a"}]))
    watched.apply(r)  # a failed entry is recorded; the others still apply
    assert list(r.loaded) == ["a"] and [e.name for e in r.status().errors] == ["bad-one"]


def _hf_cache(root: pathlib.Path, repo: str) -> str:
    """A Hugging Face cache holding ``repo`` (as huggingface_hub lays it out); its snapshot dir."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (snapshot / "adapter_config.json").write_text("{}")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    return str(snapshot)


def test_an_hf_adapter_loads_from_the_model_cache_and_keeps_its_uri(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = _hf_cache(tmp_path, "acme/sql-lora")
    handler = FakeChat()
    models = served.ModelSet([served.serve("base", handler, options.ServerSettings())])
    r = liveadapters.Registry(models, max_adapters=2, max_rank=8, cache_dir=str(tmp_path))
    assert r.load("sql", "hf://acme/sql-lora") is True
    assert handler.calls == [("load", r.loaded["sql"].key, snapshot)]
    assert r.models.get("sql", "chat").root == "hf://acme/sql-lora"  # what the operator sent
    assert r.load("sql", "hf://acme/sql-lora") is False
    with pytest.raises(errors.BadRequestError, match=r"lora_path hf://acme/missing: .*HF_HUB_OFFLINE") as bad:
        r.load("gone", "hf://acme/missing")
    assert bad.value.param == "lora_path" and "gone" in r.errors
