"""The conversion core: sources, key rules, positions, config and tokenizer, loading, the plan, streaming, resize."""
