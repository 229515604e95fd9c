"""LLM search: decode-objective mask choice (decode_search) and one-shot hardware-aware pruning (model, pruners, costs, allocate, run)."""
