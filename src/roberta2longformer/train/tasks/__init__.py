"""The fine-tuning tasks: one module, one small :class:`~.base.Task` class each (classification and
multi-label, summarization, embedding); ``--task``'s choices are this registry's, in this order."""

from .base import Data, Job, Task, choose_task, get_task, register, task_names, task_options

# Each module registers its tasks; this order is the order of --task's choices.
# isort: off
from . import classification, summarization, embedding  # noqa: E402,F401
# isort: on

__all__ = ["Data", "Job", "Task", "choose_task", "get_task", "register", "task_names", "task_options"]
