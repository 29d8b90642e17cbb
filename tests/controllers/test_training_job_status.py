"""A TrainingJob runs a batch Job with its merged config; its phase follows the Job; deleting
it stops the Job."""

from __future__ import annotations

import json
from typing import Any

from opkit import apply, get

from kit import wait_for


def test_training_job_runs_a_job_with_effective_config(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    model = f"train-{namespace}"
    result = apply(
        local_cluster,
        f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {model}}}
spec:
  source: {{provider: local, uri: "file:///nonexistent"}}
  architecture: LlamaForCausalLM
  trainingDefaults:
    hyperparameters: {{learningRate: 0.0002, numEpochs: 3, batchSize: 2}}
    lora: {{r: 16, loraAlpha: 16, targetModules: [q_proj, v_proj]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: data, namespace: {namespace}}}
data: {{train.jsonl: '{{"text": "hello"}}'}}
---
apiVersion: modelyard.io/v1alpha1
kind: TrainingJob
metadata: {{name: tune, namespace: {namespace}}}
spec:
  model: {model}
  dataset: {{configMap: {{name: data, key: train.jsonl}}}}
  hyperparameters: {{learningRate: 0.001, numEpochs: 1}}
  lora: {{r: 4}}
  resources: {{gpus: 0}}
  backoffLimit: 0
  output: {{uri: "file:///nonexistent/out"}}
""",
    )
    assert result.returncode == 0, result.stderr
    path = f"/apis/modelyard.io/v1alpha1/namespaces/{namespace}/trainingjobs/tune"
    status = wait_for(
        lambda: (get(local_cluster, path) or {}).get("status", {}).get("effective"), 20, "effective config"
    )
    assert status["hyperparameters"] == {"learningRate": 0.001, "numEpochs": 1.0, "batchSize": 2}
    assert status["lora"] == {"r": 4, "loraAlpha": 16.0, "targetModules": ["q_proj", "v_proj"]}
    job = wait_for(
        lambda: get(local_cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/tune"), 15, "the Job"
    )
    assert job["metadata"]["ownerReferences"][0]["kind"] == "TrainingJob"
    # The merged config travels in the pod template (a downward-API file), not a ConfigMap.
    template = job["spec"]["template"]
    config = json.loads(template["metadata"]["annotations"]["modelyard.io/trainer-config"])
    assert config["method"] == "lora" and config["hyperparameters"]["learningRate"] == 0.001

    # The phase follows the Job's own conditions.
    def mirrored() -> bool:
        current = (get(local_cluster, path) or {}).get("status", {})
        conditions = {
            c["type"] for c in (get(local_cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/tune") or {})
            .get("status", {}).get("conditions") or [] if c["status"] == "True"
        }  # fmt: skip
        expected = "Succeeded" if "Complete" in conditions else "Failed" if "Failed" in conditions else None
        return expected is not None and current.get("phase") == expected

    wait_for(mirrored, 90, "the TrainingJob phase to follow the finished Job")
    local_cluster.kubectl("delete", "trainingjob", "tune", "-n", namespace, "--wait=true")
    wait_for(
        lambda: get(local_cluster, f"/apis/batch/v1/namespaces/{namespace}/jobs/tune") is None,
        30,
        "the Job gone",
    )
    local_cluster.kubectl("delete", "modelentry", model)
