"""The Markdown model card written next to a converted model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.sources import readable_length

if TYPE_CHECKING:
    from ..core.convert import Conversion
    from ..verification import VerificationReport


def _what_it_is(conversion: Conversion) -> str:
    init = conversion.options.get("position_init", "tile")
    if "resized_from" in conversion.options:
        return (
            f"Resized from {conversion.options['resized_from']} to {conversion.max_length} tokens: every weight "
            f"is kept and only the position table changed (new rows: `{init}`), so it computes what the "
            "original computed on every input both can read."
        )
    layers = conversion.source_config.num_hidden_layers
    return (
        f"Every weight of the source is carried over (embeddings, all {layers} layers, pooler and head) "
        f"where the target has a place for it (see the notes); new position rows were initialised with "
        f"`{init}`. The model has never been trained on inputs longer than its source's: expect it to be "
        f"useful only after {conversion.target.training_advice}."
    )


def render_card(conversion: Conversion, report: VerificationReport | None) -> str:
    options = ", ".join(f"`{k}={v}`" for k, v in conversion.options.items())
    lines = [
        f"# {conversion.model_class} converted from `{conversion.source_name or conversion.source_class}`",
        "",
        f"Made with roberta2longformer from a `{conversion.source_class}` "
        f"(reads up to {readable_length(conversion.source_config)} tokens) to "
        f"`{conversion.model_class}` for inputs of up to **{conversion.max_length} tokens**, "
        f"in {conversion.seconds:.1f} s. Options: {options}.",
        "",
        "Load it with the plain `transformers` classes (no `trust_remote_code`):",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        'model = AutoModel.from_pretrained("path/to/this/directory")',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/directory")',
        "```",
        "",
        "## Verification",
        "",
    ]
    if report is None:
        lines.append("Verification was skipped (`--no-verify`): nothing below proves this model exact.")
    else:
        verdict = "passed" if report.passed else "FAILED"
        lines += [
            f"Verification **{verdict}**: on inputs of up to {report.exact_length} tokens ({conversion.target.exact_where}, "
            f"within the source's positions) the converted model reproduces "
            f"the source; largest difference {report.max_abs_diff:.2e}. Took {report.seconds:.1f} s, "
            f"peak resident memory {report.peak_rss_mb:.0f} MB.",
            "",
            "| case | output | max abs diff | atol | |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c.case} | `{c.output}` | {c.max_abs_diff:.2e} | {c.atol:g} | {'✓' if c.passed else '✗'} |"
            for c in report.checks
        ]
        if report.approximation:
            lines += [
                "",
                "What the approximate attention costs against the source, before any training "
                "(hidden states; reported, not an exactness check):",
                "",
                "| length | regime | max abs diff | mean cosine |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {a['length']} | {a['regime']} | {a['max_abs_diff']:.2e} | {a['mean_cosine']:.4f} |"
                for a in report.approximation
            ]
        if report.smoke is not None:
            lines += [
                "",
                f"Smoke forward at the full length ({report.smoke['length']} tokens): "
                f"{report.smoke['seconds']:.2f} s, outputs finite: {report.smoke['finite']}.",
            ]
    lines += ["", "## What this model is and is not", "", _what_it_is(conversion)]
    lines += [f"- Note: {note}" for note in conversion.notes]
    return "\n".join(lines) + "\n"
