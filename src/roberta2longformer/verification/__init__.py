"""Proof that a converted model computes what its source computed: comparisons and their report."""

from .compare import readable_length, verify
from .report import Check, VerificationReport

__all__ = ["Check", "VerificationReport", "readable_length", "verify"]
