"""Request and response bodies, in the original fine-tuning API's names.

Unknown fields are refused (a typo such as ``learning_rte`` is a 422 naming it, not a silent
default). Fields left out keep the ``conf/`` defaults of the stages.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from holotune.gesture import BACKGROUND
from holotune.models.spec import MODULE_SPECS

Module = Literal[tuple(MODULE_SPECS)]  # face_mesh, hands, pose
# Class and layer names reach the stages as Hydra override values: a plain character set only.
ClassName = Annotated[str, StringConstraints(pattern=r"^\w[\w .-]{0,63}$")]
LayerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.]{0,127}$")]


class FinetuneRequest(BaseModel):
    """``POST /api/v1/finetune/start``: the original API's body, plus a few optional extras."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    dataset_path: str = Field(description="a file or folder inside the workspace: TFRecord(s), a labels "
                                          ".jsonl/.csv, a sidecar folder, class folders or plain images/videos",
                              examples=["/workspace/data/train.tfrecord"])
    module: Module = "face_mesh"
    epochs: int | None = Field(None, ge=1, le=10_000)
    batch_size: int | None = Field(None, ge=1, le=4096)
    learning_rate: float | None = Field(None, gt=0, le=1)
    lora_rank: int | None = Field(None, ge=1, le=256)
    freeze_backbone: bool | None = None
    validation_split: float | None = Field(None, gt=0, lt=1)
    checkpoint_dir: str | None = Field(None, description="created if missing; inside the workspace "
                                                         "(default: the job's folder)")
    gradient_clip: float | None = Field(None, ge=0, le=1000)
    task_type: Literal["regression", "classification"] | None = None
    num_classes: int | None = Field(None, ge=2, le=1000)
    class_names: list[ClassName] | None = Field(None, min_length=2, max_length=1000)
    task_input: Literal["image", "landmarks"] | None = Field(
        None, description="classification: the gesture head reads the hand image (default) or its 21 landmarks")
    mixed_precision: bool | None = None
    cache_dataset: bool | None = None
    # Extras (not in the original API).
    dataset_kind: Literal["tfrecord", "labelled", "unlabelled", "class_folders"] | None = Field(
        None, description="default: told from the files")
    lora_placement: Literal["head", "branch", "trunk"] | None = None
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    max_time: str | None = Field(None, pattern=r"^\d{2}:\d{2}:\d{2}:\d{2}$", description="DD:HH:MM:SS")
    limit_train_batches: int | None = Field(None, ge=1, description="batches per epoch (for smoke runs)")
    test_split: float | None = Field(None, gt=0, lt=1, description="fraction of the dataset's groups (subjects, "
                                     "videos; images where there are none) held out as the test split the "
                                     "evaluation scores (default: conf/ingest, 0.25)")
    allow_regression: bool | None = Field(None, description="true: a model that fails the forgetting gate is still "
                                          "exported and registered, tagged gate_passed=false (default: the job fails)")

    def field_errors(self) -> list[tuple[str, str]]:
        """Checks across fields, as (field, message): classification needs hands and class_names, and
        num_classes must equal len(class_names)."""
        errors = []
        if self.task_type == "classification":
            takes = [m.name for m in MODULE_SPECS.values() if m.class_feature]
            if self.module not in takes:
                errors.append(("task_type", f"task_type=classification needs module={' or '.join(map(repr, takes))} "
                                            f"(the gesture head sits on its trunk feature), got module={self.module!r}"))
            if not self.class_names:
                errors.append(("class_names", "task_type=classification needs class_names"))
        else:
            for name in ("class_names", "num_classes"):
                if getattr(self, name) is not None:
                    errors.append((name, f"{name} is only for task_type='classification'"))
        if self.num_classes is not None and self.class_names and self.num_classes != len(self.class_names):
            errors.append(("num_classes", f"num_classes={self.num_classes} but class_names has "
                                          f"{len(self.class_names)} entries"))
        if self.class_names and len(set(self.class_names)) != len(self.class_names):
            errors.append(("class_names", f"class_names has duplicates: {self.class_names}"))
        if self.class_names and self.class_names[0] != BACKGROUND:
            errors.append(("class_names", f"the first class must be {BACKGROUND!r}, the background class (non-gesture "
                                          f"hands; MediaPipe's gesture recognizer requires it too), got {self.class_names}"))
        if self.task_input is not None and self.task_type != "classification":
            errors.append(("task_input", "task_input is only for task_type='classification'"))
        return errors


class PruneRequest(BaseModel):
    """``POST /api/v1/model/prune``: ``{"method": "l1_norm", "sparsity": 0.3}`` as in the original,
    applied to a finished fine-tuning job's model (``job_id``; default: the latest completed one,
    of ``module`` if given)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: Literal["l1_norm", "channels"] = "l1_norm"
    sparsity: float = Field(0.3, gt=0, lt=1)
    layers: list[LayerName] | None = Field(None, min_length=1, max_length=200)
    module: Module | None = None
    job_id: str | None = Field(None, pattern=r"^ft_\d{8}_[a-z_]+\d+$")



class StartResponse(BaseModel):
    job_id: str = Field(examples=["ft_20250405_face_mesh01"])
    status: Literal["running", "queued"]
    log_url: str = Field(examples=["http://localhost:8080/logs/ft_20250405_face_mesh01"])


class StageSummary(BaseModel):
    name: str = Field(examples=["evaluate"])
    status: Literal["pending", "running", "completed", "failed", "cancelled", "skipped", "unknown"] = Field(
        description="skipped: the job ended before this stage; unknown: a job from before stages were recorded")
    started_at: str | None
    finished_at: str | None
    seconds: float | None = Field(description="wall time so far (running) or in all (ended)")


class HeldOutSplit(BaseModel):
    fraction: float = Field(description="ingest.test_split: the fraction of groups (or images) held out")
    split_by: str = Field(description="group (a subject or video never straddles splits) or hash (per image)")
    samples: int = Field(description="test samples")
    of: int = Field(description="samples kept by ingest")
    group_added: str | None = Field(description="the group moved into test when the hash gave none (tiny data)")


class JobSummary(BaseModel):
    job_id: str
    kind: Literal["finetune", "prune"]
    module: str
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    stage: str | None
    stages: list[StageSummary] = Field([], description="every stage of the job, in order, with its wall time")
    test_split: HeldOutSplit | None = Field(None, description="fine-tuning: the test split ingest made (once it has run)")
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    returncode: int | None
    log_url: str


class StatusResponse(BaseModel):
    status: Literal["ready"]
    version: str
    running: list[JobSummary] = []
    queued: int = 0


class LogResponse(BaseModel):
    job_id: str
    status: str
    offset: int = Field(description="byte offset of `text` in the log")
    next_offset: int = Field(description="pass as `offset` to get what follows")
    size: int = Field(description="the log's size in bytes now")
    text: str


class MetricsResponse(BaseModel):
    job_id: str
    status: str
    loss: float | None
    val_loss: float | None
    epoch: int = Field(description="epochs completed")
    epochs: int | None = Field(description="epochs requested (null: the config default)")
    step: int | None
    metrics: dict[str, float]
    result: dict | None = Field(None, description="the finished job's metrics.json (fine-tuning) or report (pruning)")
    stage: str | None = None
    stages: list[StageSummary] = []
    test_split: HeldOutSplit | None = None
    evaluation: dict | None = Field(None, description="the evaluate stage's figures, stock (baseline) vs fine-tuned "
                                                      "per split, and the gate (once evaluate has run)")
    registered: dict | None = Field(None, description="the registry version the export stage made: name, version, "
                                                      "alias, uri, tags")
