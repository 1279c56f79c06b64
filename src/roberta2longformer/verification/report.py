"""The verification report: each check with its max |diff|, the smoke run, the approximation costs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ToleranceError


@dataclass
class Check:
    case: str
    output: str
    shape: list[int]
    max_abs_diff: float
    atol: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.atol

    def line(self) -> str:
        mark = "✓" if self.passed else "✗"
        return f"{mark} {self.case}: {self.output} {tuple(self.shape)} max|diff| {self.max_abs_diff:.2e} (atol {self.atol:.3g})"


@dataclass
class VerificationReport:
    source: str
    target: str
    target_class: str
    exact_length: int
    max_length: int
    checks: list[Check] = field(default_factory=list)
    smoke: dict[str, Any] | None = None
    approximation: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: Where ``seconds`` went: the exact cases, the weight-level proof, the approximation reports, the smoke run.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    #: Versions of this tool, transformers and torch, the machine, and the device the models ran on.
    environment: dict[str, Any] = field(default_factory=dict)
    #: What computed the converted model's attention (``roberta2longformer.fast`` or ``transformers``).
    attention: str = "transformers"
    #: The conversion options the weight-level proof planned with (empty: unknown, defaults assumed).
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        smoke_ok = self.smoke is None or self.smoke["finite"]
        return smoke_ok and all(check.passed for check in self.checks)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=0.0)

    def failures(self) -> list[str]:
        failed = [check.line() for check in self.checks if not check.passed]
        if self.smoke is not None and not self.smoke["finite"]:
            failed.append(f"smoke forward at {self.smoke['length']} tokens produced non-finite values")
        return failed

    def require_passed(self, *, maybe_trained: bool = False) -> None:
        """Raise the one :class:`ToleranceError` of a failed verification (``maybe_trained``: the model may
        have been trained since it was converted, when differing is what training does)."""
        if not self.passed:
            raise ToleranceError(self.failures(), maybe_trained=maybe_trained)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for check, raw in zip(self.checks, data["checks"]):
            raw["passed"] = check.passed
        data["passed"] = self.passed
        data["max_abs_diff"] = self.max_abs_diff
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def summary_lines(self) -> list[str]:
        lines = [check.line() for check in self.checks]
        if self.smoke is not None:
            mark = "✓" if self.smoke["finite"] else "✗"
            more = "".join(f", {k}={v}" for k, v in self.smoke.items() if k not in ("length", "seconds", "finite"))
            lines.append(
                f"{mark} smoke: forward at {self.smoke['length']} tokens in {self.smoke['seconds']:.2f} s, "
                f"finite={self.smoke['finite']}{more}"
            )
        lines.append(f"· attention computed by {self.attention}")
        if self.stage_seconds:
            stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in self.stage_seconds.items())
            lines.append(f"· time: {stages}")
        lines += [
            f"· approximation at {a['length']} tokens ({a['regime']}): max|diff| {a['max_abs_diff']:.2e}, "
            f"mean cosine {a['mean_cosine']:.4f} (not an exactness check)"
            for a in self.approximation
        ]
        return lines
