"""Rewards that are not a served model: a transformers reward model, an LLM judge, a verifier."""
