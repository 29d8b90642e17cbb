"""The TrainingJob pod's entrypoint: a LoRA, QLoRA or full fine-tune with transformers + peft.

``modelyard train --config /etc/modelyard/config.json`` reads the config the operator wrote
(:func:`modelyard.builders.training.trainer_config`), validates the dataset up front, trains
with checkpoints it resumes from after a pod restart, reports live progress over HTTP and in
``progress.json``, and leaves the adapter (or weights) and a ``manifest.json`` in the output.
Heavy libraries (torch, transformers, peft) load only with :mod:`modelyard.trainer.train`,
which the command imports when it runs, so ``modelyard --help`` stays fast.
"""

from __future__ import annotations

from modelyard.trainer import config, dataset, errors, progress

__all__ = ["config", "dataset", "errors", "progress"]
