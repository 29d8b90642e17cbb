"""A key over its requests per minute is refused (429 + Retry-After); another key keeps being answered.

Issue #14, item 5 (per-key limits): a real ``modelyard gateway`` process in front of a fast
fake model. ``mallory``'s key (``mallory.rpm: 120``) floods it from a process of its own on
8 connections; ``alice`` (no limit) sends one request at a time meanwhile. The test prints
alice's p99 before and during the flood (docs/security.md keeps the figure); it asserts
behaviour only, never a time.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import gatewaykit
import pytest
import requests

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # a flood and a p99

ALICE, MALLORY = "sk-alice-good-client", "sk-mallory-flooder"
RPM = 120
ROUTES = """\
models:
  - name: llama
    endpoints:
      - urls: ['{url}']
apiKeys:
  alice: {alice}
  mallory: {mallory}
  mallory.rpm: "{rpm}"
"""


def test_a_key_over_its_rpm_gets_429_while_another_key_is_answered(tmp_path: Path) -> None:
    with gatewaykit.FakeModel() as model:
        routes = tmp_path / "routes.yaml"
        routes.write_text(ROUTES.format(url=model.url, alice=ALICE, mallory=MALLORY, rpm=RPM))
        with gatewaykit.gateway(["--routes", str(routes)], tmp_path / "gateway.log") as url:
            before, _ = gatewaykit.measure(url, ALICE, 5)
            with gatewaykit.flood(url, MALLORY, seconds=12, connections=8) as attacker:
                time.sleep(2)  # the flooding process starts and spends its first minute's quota
                during, statuses = gatewaykit.measure(url, ALICE, 8)
                flooded = gatewaykit.flood_result(attacker)
            metrics = requests.get(f"{url}/metrics", timeout=10).text

    counts = flooded["status"]
    print(
        f"\nflood: mallory {counts} in 12 s on 8 connections; alice {len(during)} requests, "
        f"p99 {gatewaykit.p99(during) * 1000:.1f} ms during the flood, "
        f"{gatewaykit.p99(before) * 1000:.1f} ms before ({len(before)} requests)"
    )
    assert set(statuses) == {200}, statuses  # alice is never refused
    assert counts.get("200") == RPM  # the flood lasted under a minute: exactly the key's rpm passed
    assert counts.get("429", 0) > 2 * RPM  # and it did flood
    assert set(counts) == {"200", "429"}
    assert flooded["retry_after"] and all(1 <= int(s) <= 60 for s in flooded["retry_after"])
    refused = re.search(r'modelyard_gateway_key_limited_total\{key="mallory",limit="rpm"\} (\S+)', metrics)
    assert refused is not None and float(refused.group(1)) == counts["429"]
    assert 'key="alice"' not in metrics
