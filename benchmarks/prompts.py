"""A fixed set of 32 everyday assistant prompts (HH-RLHF / AlpacaEval style) for the benchmarks."""

from __future__ import annotations

PROMPTS: tuple[str, ...] = (
    "How do I take care of a wooden table?",
    "What are some good ways to fall asleep faster?",
    "Explain what a mortgage is to a teenager.",
    "How can I make my houseplants grow better?",
    "Write a short thank-you note to a neighbor who watered my garden.",
    "What should I pack for a three-day hiking trip?",
    "How do I politely decline a party invitation?",
    "Give me tips for learning to play the guitar as an adult.",
    "Why is the sky blue?",
    "How can I save money on groceries?",
    "What is the difference between weather and climate?",
    "How do I start running if I have never exercised?",
    "Suggest a simple vegetarian dinner for four people.",
    "How do I remove a coffee stain from a white shirt?",
    "What are the benefits of reading fiction?",
    "How should I prepare for a job interview?",
    "Explain how vaccines work in simple terms.",
    "What are some fun things to do on a rainy day with kids?",
    "How do I change a flat tire on a bicycle?",
    "Write a haiku about autumn leaves.",
    "How can I be more productive when working from home?",
    "What is a good way to learn a new language?",
    "How do I make a cup of pour-over coffee?",
    "What should I consider when adopting a dog?",
    "Explain the rules of chess briefly.",
    "How can I reduce stress before an exam?",
    "Why do leaves change color in the fall?",
    "How do I write a good cover letter?",
    "What are some healthy breakfast ideas?",
    "How do solar panels produce electricity?",
    "How can I keep my kitchen knives sharp?",
    "What is the best way to apologize to a friend?",
)


def prompts(count: int) -> list[str]:
    """The first ``count`` prompts (1..32)."""
    if not 1 <= count <= len(PROMPTS):
        raise ValueError(f"count must be between 1 and {len(PROMPTS)}, got {count}")
    return list(PROMPTS[:count])
