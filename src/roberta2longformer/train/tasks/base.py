"""What a fine-tuning task is: the :class:`Task` base class, the :class:`Job` it prepares, and its registry.

A task is one flat subclass of :class:`Task` in its own module of this package, decorated with
:func:`register`; it says how to load the model and the data for it, how to encode the data, what to score
and what to predict. The training loop (:func:`~..finetuning.finetune`) is written once and asks the task;
``--task``'s choices come from the registry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ...errors import ConversionError
from ...io.card import loading_snippet
from ...settings import flag_of

if TYPE_CHECKING:
    from ..options import FinetuneOptions


@dataclass
class Data:
    """The sources a run reads, as the user named them, and what was read from them."""

    train_source: str
    eval_source: str
    test_source: str | None
    train: Any = None
    eval: Any = None
    test: Any = None
    #: The user's opt-in to loading pickle weights (``--allow-pickle``).
    allow_pickle: bool = False

    def named(self) -> dict[str, str | None]:
        return {"train": self.train_source, "eval": self.eval_source, "test": self.test_source}


@dataclass
class Job:
    """One run's parts, as its task prepared them: the model the trainer trains and the transformers model
    inside it (for the fast attention backend and reports), the tokenizer, the encoded splits, the length
    read per document, and notes for the user."""

    model: Any
    backbone: Any
    tokenizer: Any
    train: Any
    eval: Any
    test: Any | None
    length: int
    notes: list[str] = field(default_factory=list)
    #: What the task keeps for later steps (its labels, the documents each window came from…).
    state: dict[str, Any] = field(default_factory=dict)


class Task:
    """A fine-tuning task; subclasses say only what differs.

    Class attributes: ``name`` (``--task``), ``options`` (the :class:`~..options.FinetuneOptions` fields only
    this task reads: given for another task, they are refused), ``defaults`` (the task's values of the options
    whose declared default is ``None``), ``reported_metrics`` (in the order shown), ``best_metric`` (which one
    picks the best checkpoint), ``pipeline_tag``/``auto_class``/``library_name`` (for the model card).
    """

    name: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {"epochs": 3.0, "learning_rate": 3e-5}
    reported_metrics: ClassVar[tuple[str, ...]] = ()
    best_metric: ClassVar[str | None] = None
    pipeline_tag: ClassVar[str]
    auto_class: ClassVar[str]
    library_name: ClassVar[str] = "transformers"
    #: Whether ``--task auto`` may pick it (in registry order), from the model's config and the training data.
    picked_automatically: ClassVar[bool] = True

    def matches(self, config: Any, train: Any, options: FinetuneOptions) -> bool:
        """With ``--task auto``: whether this task is the one the model and the data call for."""
        return False

    def refusal(self, config: Any) -> str | None:
        """Why this task cannot fine-tune a model with ``config`` (``None``: it can)."""
        return None

    def with_defaults(self, options: FinetuneOptions) -> FinetuneOptions:
        """``options`` with this task's defaults for the options left unset."""
        unset = {name: value for name, value in self.defaults.items() if getattr(options, name) is None}
        return dataclasses.replace(options, task=self.name, **unset)

    def prepare(self, location: str, config: Any, data: Data, options: FinetuneOptions) -> Job:
        """Load the model and tokenizer, and encode the splits."""
        raise NotImplementedError

    def trainer(self, job: Job, output_dir: Path, options: FinetuneOptions) -> Any:
        raise NotImplementedError

    def evaluate(self, trainer: Any, job: Job) -> dict[str, float]:
        """The scores on the evaluation data (the Trainer's ``eval_…`` metrics under their own names)."""
        metrics = trainer.evaluate()
        return {
            k.removeprefix("eval_"): v
            for k, v in metrics.items()
            if not k.endswith(("_runtime", "_per_second")) and k != "epoch"
        }

    def predict(self, trainer: Any, job: Job, output_dir: Path) -> dict[str, float] | None:
        """Predictions for the test data in ``predictions.jsonl``; its scores when it has the answers."""
        return None

    def after_training(self, trainer: Any, job: Job) -> None:
        """Checks or repairs once training is done (before the last evaluation)."""

    def save(
        self, trainer: Any, job: Job, final: Path, summary: dict[str, Any], options: FinetuneOptions, card: Any
    ) -> None:
        """Write the trained model, its tokenizer and (``card(directory)``) its card into ``final``, whole."""
        from ..setup import save_final  # transformers: at run time, not with --help

        def also(staging: Path) -> None:
            job.tokenizer.save_pretrained(str(staging))
            card(staging)

        save_final(trainer, final, also)

    def summary(self, job: Job, options: FinetuneOptions) -> dict[str, Any]:
        """What the run did, in the task's words: at least ``reading``, how each document was read."""
        return {"reading": f"up to {job.length} tokens"}

    def described(self, job: Job) -> str:
        """What the model card says of the trained model beyond the common lines (its labels)."""
        return ""

    def settings(self, options: FinetuneOptions) -> dict[str, Any]:
        """The options that apply to this task (its own and the shared ones), as its model card lists them."""
        others = {name for name, tasks in task_options().items() if self.name not in tasks}
        return {k: v for k, v in dataclasses.asdict(options).items() if k not in others and k != "report_to"}

    def usage(self, class_name: str) -> list[str]:
        return loading_snippet(self.auto_class, class_name)


def summarizes(config: Any, train: Any, options: FinetuneOptions) -> bool:
    """``--task auto`` on an encoder-decoder whose training data has a summary field: summarization."""
    return bool(getattr(config, "is_encoder_decoder", False)) and options.summary_field in train.column_names


_TASKS: dict[str, Task] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: add one instance of ``cls`` to the registry under ``cls.name``."""
    _TASKS[cls.name] = cls()
    return cls


def task_names() -> tuple[str, ...]:
    return tuple(_TASKS)


def get_task(name: str) -> Task:
    try:
        return _TASKS[name]
    except KeyError:
        raise ConversionError(f"Unknown --task {name!r}; choose from auto, {', '.join(_TASKS)}.") from None


def task_options() -> dict[str, list[str]]:
    """Each task-specific option → the tasks that read it."""
    taken: dict[str, list[str]] = {}
    for task in _TASKS.values():
        for option in task.options:
            taken.setdefault(option, []).append(task.name)
    return taken


def choose_task(name: str, config: Any, data: Data, options: FinetuneOptions) -> Task:
    """The task named (``auto``: the first registered one that the model and the training data call for),
    after refusing a model it cannot fine-tune and options that belong to other tasks."""
    if name == "auto":  # the tasks' ``matches`` exclude each other, so the order does not matter
        task = next(t for t in _TASKS.values() if t.picked_automatically and t.matches(config, data.train, options))
    else:
        task = get_task(name)
    refusal = task.refusal(config)
    if refusal:
        raise ConversionError(refusal)
    given = options.given()
    for option, tasks in task_options().items():
        if option in given and task.name not in tasks:
            flag = flag_of(next(f for f in dataclasses.fields(options) if f.name == option))
            raise ConversionError(
                f"{flag} applies to --task {' or '.join(tasks)}; it does not apply to --task {task.name}."
            )
    return task
