"""What the autoscaler reads from the gateways: their Prometheus text and the metrics Service's
EndpointSlices (plain data in, plain data out)."""

from __future__ import annotations

from modelyard.controllers import autoscaler

GATEWAY_TEXT = """\
# HELP modelyard_gateway_endpoint_demand Requests in flight + queued + held per endpoint
# TYPE modelyard_gateway_endpoint_demand gauge
modelyard_gateway_endpoint_demand{namespace="team-a",endpoint="chat"} 3.0
modelyard_gateway_endpoint_demand{namespace="team-a",endpoint="embed"} 0.0
modelyard_gateway_endpoint_demand{namespace="team-b",endpoint="chat"} 12.0
# HELP modelyard_gateway_requests_total Requests
# TYPE modelyard_gateway_requests_total counter
modelyard_gateway_requests_total{namespace="team-a",endpoint="chat"} 99.0
"""


def test_demand_is_read_per_namespace_and_endpoint() -> None:
    assert autoscaler.parse_demand(GATEWAY_TEXT) == {
        ("team-a", "chat"): 3.0,
        ("team-a", "embed"): 0.0,
        ("team-b", "chat"): 12.0,
    }


def test_text_without_the_gauge_is_no_demand() -> None:
    assert autoscaler.parse_demand("# nothing here\n") == {}


def test_every_ready_address_of_the_metrics_port_is_scraped() -> None:
    slices = [
        {
            "ports": [{"name": "http", "port": 8000}, {"name": "metrics", "port": 9090}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": True, "terminating": True}},
                {"addresses": ["fd00::4"], "conditions": {}},
            ],
        },
        {"ports": [{"name": "http", "port": 8000}], "endpoints": [{"addresses": ["10.0.0.9"]}]},
    ]
    assert autoscaler.slice_urls(slices) == ["http://10.0.0.1:9090/metrics", "http://[fd00::4]:9090/metrics"]
