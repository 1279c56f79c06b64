"""Proof that a converted model computes what its source computed: comparisons and their report."""

from .compare import verify
from .report import Check, VerificationReport

__all__ = ["Check", "VerificationReport", "verify"]
