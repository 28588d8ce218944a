"""Models run in this process: transformers (the embedded SmolLM2 default) and vLLM's engine."""
