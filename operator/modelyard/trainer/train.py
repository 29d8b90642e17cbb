"""One fine-tune, start to finish: validate the data, load the model, train with checkpoints,
resume after a pod restart, save the adapter (or weights) and the manifest.

Checkpoints go to ``<output>/checkpoints``; a new pod of the same Job finds the last one and
continues from its step (the Job's backoffLimit gives it the chance). The result lands at
the output root: what ``peft.PeftModel.from_pretrained`` (or ``from_pretrained``) loads.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import pathlib
import time
from typing import Any

import transformers

from modelyard.trainer import config, dataset, methods, progress

log = logging.getLogger("modelyard.trainer")


class _ProgressCallback(transformers.TrainerCallback):
    """Feeds the tracker from the Trainer's loop."""

    def __init__(self, tracker: progress.Tracker) -> None:
        self.tracker = tracker

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.tracker.update(step=state.global_step, total_steps=state.max_steps, epoch=state.epoch)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if logs and "loss" in logs:
            self.tracker.update(
                step=state.global_step,
                total_steps=state.max_steps,
                epoch=state.epoch,
                loss=logs["loss"],
                learning_rate=logs.get("learning_rate"),
            )
            log.info("step %d/%d loss %.4f", state.global_step, state.max_steps, logs["loss"])


def total_steps(records: int, hp: dict[str, Any]) -> int:
    """Optimizer steps the run will take (what transformers computes for max_steps/epochs)."""
    if hp.get("max_steps"):
        return int(hp["max_steps"])
    batches = math.ceil(records / int(hp["batch_size"]))
    per_epoch = max(batches // int(hp["gradient_accumulation_steps"]), 1)
    return math.ceil(float(hp["num_epochs"]) * per_epoch)


def save_steps(total: int) -> int:
    """Checkpoint about eight times a run (``MODELYARD_SAVE_STEPS`` overrides)."""
    override = os.environ.get("MODELYARD_SAVE_STEPS")
    return int(override) if override else max(1, math.ceil(total / 8))


def last_complete_checkpoint(checkpoints: pathlib.Path) -> str | None:
    """The newest ``checkpoint-<step>`` directory the Trainer finished writing, or None.

    A pod killed while a checkpoint is written leaves a directory without ``trainer_state.json``
    (the Trainer writes it after the weights and the optimizer); resuming from it fails the job
    ("Can't find a valid checkpoint"), so such a directory is skipped, with a log line."""
    found = []
    for path in checkpoints.iterdir():
        step = path.name.removeprefix("checkpoint-")
        if path.is_dir() and step.isdigit():
            found.append((int(step), path))
    for _, path in sorted(found, reverse=True):
        if (path / "trainer_state.json").is_file():
            return str(path)
        log.warning("checkpoint %s was not finished (no trainer_state.json): skipped", path)
    return None


def _encode(cfg: config.TrainerConfig, tokenizer: Any, fmt: str, records: list[dataset.Record]) -> list[Any]:
    template: dataset.Template | None = None
    if getattr(tokenizer, "chat_template", None):

        def template(messages: list[dict[str, str]]) -> str:
            return str(tokenizer.apply_chat_template(messages, tokenize=False))

    eos = tokenizer.eos_token or ""
    limit = int(cfg.hyperparameters["max_seq_length"])
    texts = [dataset.render(r, fmt, template, eos) for r in records]
    return [
        {"input_ids": tokenizer(t, truncation=True, max_length=limit, add_special_tokens=False)["input_ids"]}
        for t in texts
    ]


def run(cfg: config.TrainerConfig, *, host: str | None = None, port: int | None = None) -> dict[str, Any]:
    """Train; returns the manifest it wrote. Raises TrainerError subclasses for a person to act on."""
    fmt, records = dataset.load(cfg.dataset_path, cfg.dataset_format)  # before any model is loaded
    methods.check(cfg)
    cfg.output_path.mkdir(parents=True, exist_ok=True)
    tracker = progress.Tracker(cfg.output_path / "progress.json")
    server = progress.serve(tracker, host or "127.0.0.1", port) if port else None
    try:
        return _train(cfg, fmt, records, tracker)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def _train(
    cfg: config.TrainerConfig, fmt: str, records: list[dataset.Record], tracker: progress.Tracker
) -> dict[str, Any]:
    started = time.monotonic()
    hp = dict(cfg.hyperparameters)
    hp["optim"] = methods.optimizer(str(hp["optim"]))
    model, tokenizer = methods.load(cfg)
    features = _encode(cfg, tokenizer, fmt, records)
    total = total_steps(len(features), hp)
    checkpoints = cfg.output_path / "checkpoints"
    resume: str | None = None
    if checkpoints.is_dir():
        resume = last_complete_checkpoint(checkpoints)
    resumed_from = int(pathlib.Path(resume).name.rsplit("-", 1)[-1]) if resume else 0
    if resume:
        log.info("resuming from checkpoint %s at step %d", resume, resumed_from)
    tracker.update(step=resumed_from, total_steps=total)
    args = transformers.TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=int(hp["batch_size"]),
        gradient_accumulation_steps=int(hp["gradient_accumulation_steps"]),
        learning_rate=float(hp["learning_rate"]),
        num_train_epochs=float(hp["num_epochs"]),
        max_steps=int(hp["max_steps"]) if hp.get("max_steps") else -1,
        warmup_steps=int(hp["warmup_steps"]),
        lr_scheduler_type=str(hp["lr_scheduler_type"]),
        optim=str(hp["optim"]),
        seed=int(hp["seed"]),
        logging_steps=1,
        save_strategy="steps",
        save_steps=save_steps(total),
        save_total_limit=2,
        report_to=[],
        use_cpu=not methods.has_cuda(),
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=features,
        data_collator=transformers.DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[_ProgressCallback(tracker)],
    )
    trained = time.monotonic()
    result = trainer.train(resume_from_checkpoint=resume)
    elapsed = time.monotonic() - trained
    steps = int(trainer.state.global_step)
    final = tracker.update(step=steps, total_steps=steps)
    model.save_pretrained(str(cfg.output_path))
    tokenizer.save_pretrained(str(cfg.output_path))
    losses = tracker.losses
    manifest = {
        "baseModel": cfg.model_name,
        "baseModelPath": cfg.model_path,
        "method": cfg.method,
        "hyperparameters": hp,
        "lora": cfg.lora,
        "dataset": {"format": fmt, "records": len(records), "path": str(cfg.dataset_path)},
        "steps": steps,
        "resumedFromStep": resumed_from,
        "firstLoss": losses[0][1] if losses else None,
        "finalLoss": final.get("loss"),
        "trainLoss": float(result.training_loss),
        "lossHistory": [[s, round(v, 6)] for s, v in losses[-200:]],
        "trainSeconds": round(elapsed, 3),
        "stepsPerSecond": round((steps - resumed_from) / elapsed, 3) if elapsed > 0 else None,
        "totalSeconds": round(time.monotonic() - started, 3),
        "output": cfg.output_uri,
        "createdAt": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (cfg.output_path / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
