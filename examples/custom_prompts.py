"""Prompt sets: the paper's by default, or your own wording for every step."""

from langgraph_tpo import PromptSet, TPOConfig, create_tpo_graph
from langgraph_tpo.backends.factory import build_models
from langgraph_tpo.prompts import PAPER

code_review = PromptSet(
    name="code-review",
    sample=[("system", "You are a senior Python developer. Answer with working code.")],
    textual_loss=[
        ("system", "You review code. Compare the two answers to the task, step by step."),
        ("human", "Task:\n{query}\n\nWorse answer:\n{rejected}\n\nBetter answer:\n{chosen}"),
    ],
    textual_loss_revision=[
        ("system", "You review code. List the answer's bugs and style problems."),
        ("human", "Task:\n{query}\n\nAnswer:\n{chosen}"),
    ],
    textual_gradient=[
        ("placeholder", "{loss_messages}"),  # the review conversation, continued
        ("ai", "{textual_loss}"),
        ("human", "Which concrete changes would fix these points? Do not write the code."),
    ],
    update=[
        ("placeholder", "{gradient_messages}"),
        ("ai", "{textual_gradient}"),
        ("human", "Rewrite the better answer with these changes, between {start} and {end}."),
    ],
    update_start=PAPER.update_start,  # "<improved_response_{nonce}>"
    update_end=PAPER.update_end,
)

policy, reward = build_models()  # the embedded CPU default, or servers named by TPO_* env vars
config = TPOConfig(num_samples=2, max_iterations=1, max_tokens=96, critique_max_tokens=64)
graph = create_tpo_graph(policy, reward, config, prompts=code_review)
out = graph.invoke({"query": "Write a function that reverses a string."})
print(out["response"])
print(out["trajectory"][1]["extraction"])  # e.g. {'tagged': 1, 'no_open_tag': 1}

# A built-in set for one run, by name: "paper" (the default) or "compact"
out = graph.invoke(
    {"query": "Write a function that adds two numbers."}, context={"prompt_set": "compact"}
)
print(out["stop_reason"])
