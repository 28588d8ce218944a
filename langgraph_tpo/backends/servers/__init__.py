"""Models served over HTTP: vLLM's OpenAI-compatible policy and ``/classify`` reward servers,
one or several."""
