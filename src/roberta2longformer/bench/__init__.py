"""``roberta2longformer bench``: startup, conversion, inference and training costs, side by side, with plots.

Every number is measured in this run on this machine, each case in a fresh subprocess (a worker
module of :mod:`.workers`, so peak resident memory belongs to that case alone), and reported next
to its baseline from the same run: the conversion floor (safetensors load + save of the same
checkpoint) for conversion, ``import transformers`` and a whole load-and-save process for the
command line's startup, full attention with extended positions (RoBERTa with SDPA) for inference
and training. On a GPU the same cases run on it, and memory is the CUDA allocator's peak instead
of the process's RSS.

Models are random (speed and memory do not depend on the values of the weights), built in the
shapes of roberta-base and roberta-large, or a small shape that makes the default run take a few
minutes on a laptop CPU.
"""
