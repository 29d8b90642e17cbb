"""GPU memory by product name: what ``gpuType`` in a ModelEndpoint or a validation request means.

Keys are the values of the ``nvidia.com/gpu.product`` node label that NVIDIA's GPU feature
discovery sets; short aliases (``h100``, ``a100-40gb``) are accepted too.
"""

from __future__ import annotations

from modelyard.registry import errors

# Product label -> usable memory in GiB (as nvidia-smi reports it, rounded down).
MEMORY_GIB: dict[str, float] = {
    "NVIDIA-H200": 139.0,
    "NVIDIA-H100-80GB-HBM3": 79.0,
    "NVIDIA-H100-PCIe": 79.0,
    "NVIDIA-A100-SXM4-80GB": 79.0,
    "NVIDIA-A100-SXM4-40GB": 39.0,
    "NVIDIA-A100-PCIE-40GB": 39.0,
    "NVIDIA-L40S": 44.0,
    "NVIDIA-A10G": 22.0,
    "NVIDIA-L4": 22.0,
    "NVIDIA-GeForce-RTX-4090": 23.0,
    "Tesla-T4": 14.0,
    "Tesla-V100-SXM2-16GB": 15.0,
}

ALIASES: dict[str, str] = {
    "h200": "NVIDIA-H200",
    "h100": "NVIDIA-H100-80GB-HBM3",
    "a100": "NVIDIA-A100-SXM4-80GB",
    "a100-80gb": "NVIDIA-A100-SXM4-80GB",
    "a100-40gb": "NVIDIA-A100-SXM4-40GB",
    "l40s": "NVIDIA-L40S",
    "a10g": "NVIDIA-A10G",
    "l4": "NVIDIA-L4",
    "rtx4090": "NVIDIA-GeForce-RTX-4090",
    "t4": "Tesla-T4",
    "v100": "Tesla-V100-SXM2-16GB",
}


def canonical(gpu_type: str) -> str:
    """The product label for a type name or alias; raises listing the known ones."""
    if gpu_type in MEMORY_GIB:
        return gpu_type
    lowered = gpu_type.lower()
    for label in MEMORY_GIB:
        if label.lower() == lowered:
            return label
    if lowered in ALIASES:
        return ALIASES[lowered]
    known = ", ".join(sorted(MEMORY_GIB)) + "; aliases: " + ", ".join(sorted(ALIASES))
    raise errors.RegistryError(f"unknown gpuType {gpu_type!r}; known: {known}")


def memory_gib(gpu_type: str) -> float:
    return MEMORY_GIB[canonical(gpu_type)]
