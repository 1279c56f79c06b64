"""The few ``transformers`` internals whose place differs between 4.57 and 5.x, behind one name each.

Everything else this package uses is public API that both versions share; the test suite runs on
both (``scripts/test.sh`` and ``scripts/test_transformers4.sh``).
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

#: transformers' major version, 4 or 5 (read from its metadata: importing it would cost the CLI's startup).
MAJOR = int(version("transformers").split(".")[0])


def no_init_weights() -> Any:
    """The context in which a model is built without its random init (``transformers.initialization`` in 5.x)."""
    if MAJOR >= 5:
        from transformers.initialization import no_init_weights as context  # where this transformers version keeps it
    else:
        from transformers.modeling_utils import no_init_weights as context  # where this transformers version keeps it
    return context()


def keep_saved_dtype() -> dict[str, str]:
    """``from_pretrained`` arguments that load the weights in the dtype they were saved in (5.x's default;
    4.x loads float32 unless asked)."""
    return {} if MAJOR >= 5 else {"torch_dtype": "auto"}


def saved_state(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The tensors ``save_pretrained`` writes for ``model``: its state dict without tied copies."""
    state = dict(model.state_dict())
    if MAJOR >= 5:
        # where this transformers version keeps it
        from transformers.modeling_utils import remove_tied_weights_from_state_dict

        return remove_tied_weights_from_state_dict(state, model)
    return {key: value for key, value in state.items() if key not in _tied_copies(model)}


def _tied_copies(model: PreTrainedModel) -> set[str]:
    """4.x: the keys ``save_pretrained`` leaves out: of each group of names for one parameter (found by
    identity, so it works on the meta device too), those that ``_tied_weights_keys`` (per submodule) names."""
    patterns = [  # searched, not matched whole, as 4.x's save_pretrained does
        re.compile((re.escape(prefix + ".") if prefix else "") + key)
        for prefix, module in model.named_modules()
        for key in getattr(module, "_tied_weights_keys", None) or ()
    ]
    names: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), []).append(name)
    copies = set()
    for group in names.values():
        if len(group) > 1:
            named = [n for n in group if any(p.search(n) for p in patterns)]
            copies.update(named if len(named) < len(group) else named[1:])
    return copies
