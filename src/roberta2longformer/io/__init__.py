"""Checkpoints on disk: safetensors reading and streaming writing, fairseq import, the output directory and model card."""
