"""crds/ is generated from modelyard.api: a hand edit or a model change without regenerating fails."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import yaml

from modelyard.api import crd

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_checked_in_crds_equal_what_the_models_generate() -> None:
    rendered = crd.render()
    on_disk = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert on_disk == rendered, "crds/ is stale: run `modelyard crds generate`"


def test_generate_command_writes_the_same_files(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "crds"
    subprocess.run(
        [sys.executable, "-m", "modelyard", "crds", "generate", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(crd.render())
    check = subprocess.run(
        [sys.executable, "-m", "modelyard", "crds", "check", str(out)], capture_output=True
    )
    assert check.returncode == 0


def test_check_reports_a_stale_file(tmp_path: pathlib.Path) -> None:
    for name, text in crd.render().items():
        (tmp_path / name).write_text(text)
    victim = next(iter(crd.render()))
    (tmp_path / victim).write_text((tmp_path / victim).read_text().replace("minimum: 0", "minimum: 1"))
    check = subprocess.run(
        [sys.executable, "-m", "modelyard", "crds", "check", str(tmp_path)], capture_output=True, text=True
    )
    assert check.returncode == 1
    assert victim in check.stdout


def test_each_kind_has_names_columns_and_status_subresource() -> None:
    for text in crd.render().values():
        obj = yaml.safe_load(text)
        names = obj["spec"]["names"]
        version = obj["spec"]["versions"][0]
        assert names["categories"] == ["modelyard"]
        assert names["shortNames"]
        assert version["subresources"]["status"] == {}
        assert {c["name"] for c in version["additionalPrinterColumns"]} >= {"Phase", "Age"}


def test_modelendpoint_columns_show_model_served_weight_ready_scale_phase_age() -> None:
    obj = yaml.safe_load(crd.render()["modelyard.io_modelendpoints.yaml"])
    columns = [
        c["name"] for c in obj["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")
    ]
    assert columns == [
        "Model", "Served", "Weight", "Ready", "Adapters", "Desired", "Current", "Demand", "Phase", "Age"
    ]  # fmt: skip


def test_api_reference_is_current() -> None:
    from modelyard.api import crd_docs

    assert (ROOT / "docs" / "api.md").read_text() == crd_docs.render(), (
        "run `modelyard crds docs > docs/api.md`"
    )
