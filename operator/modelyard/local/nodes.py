"""Fake nodes as the node agent registers them: capacity, GPU labels, conditions.

Kept apart from the agent loop so that what a node looks like to the scheduler (GPU count as
``nvidia.com/gpu``, the ``nvidia.com/gpu.product`` label, the fake-pods label) is in one place;
the GPU names are :mod:`modelyard.api.wire`'s, which the operator's builders request and select.
"""

from __future__ import annotations

import datetime
import platform
from dataclasses import dataclass, field
from typing import Any

from modelyard.api import wire

Obj = dict[str, Any]
FAKE_LABEL = "modelyard.io/fake-pods"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class NodeSpec:
    """A fake node: ``NAME[:GPUS[:GPU_TYPE]]`` on the command line."""

    name: str
    gpus: int = 0
    gpu_type: str = "NVIDIA-H100-80GB-HBM3"
    cpu: str = "16"
    memory: str = "128Gi"
    labels: dict[str, str] = field(default_factory=dict)
    fake: bool = False

    @classmethod
    def parse(cls, text: str, fake: bool = False) -> NodeSpec:
        name, _, rest = text.partition(":")
        gpus, _, gpu_type = rest.partition(":")
        return cls(name=name, gpus=int(gpus or 0), gpu_type=gpu_type or cls.gpu_type, fake=fake)

    def manifest(self, version: str, kubelet_port: int = 0) -> Obj:
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "modelyard.io/local-node": "true", **self.labels}
        resources = {"cpu": self.cpu, "memory": self.memory, "pods": "110",
                     "ephemeral-storage": "100Gi"}
        if self.gpus:
            labels[wire.GPU_PRODUCT] = self.gpu_type
            labels["nvidia.com/gpu.count"] = str(self.gpus)
            resources[wire.GPU_RESOURCE] = str(self.gpus)
        if self.fake:
            labels[FAKE_LABEL] = "true"
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "status": {
                "capacity": resources, "allocatable": resources,
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                              {"type": "Hostname", "address": self.name}],
                "conditions": node_conditions(),
                "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
                "nodeInfo": {
                    "kubeletVersion": version, "kubeProxyVersion": "",
                    "containerRuntimeVersion": "modelyard-local://processes",
                    "operatingSystem": "linux", "architecture": "amd64",
                    "osImage": platform.platform(), "kernelVersion": platform.release(),
                    "machineID": "", "systemUUID": "", "bootID": ""},
            },
        }


def node_conditions() -> list[Obj]:
    now = _now()

    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        return {"type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now}

    return [
        cond("Ready", "True", "KubeletReady", "modelyard node agent is posting ready status"),
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
    ]
