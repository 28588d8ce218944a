"""Human in the loop: review the textual gradient before each update."""

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.factory import build_models

policy, reward = build_models()
graph = create_tpo_graph(
    policy,
    reward,
    TPOConfig(num_samples=2, max_iterations=2, max_tokens=64, review_gradient=True),
    checkpointer=InMemorySaver(),  # interrupts need a checkpointer
)
thread = {"configurable": {"thread_id": "review"}}

out = graph.invoke({"query": "How do I take care of a wooden table?"}, thread)
pause = out["__interrupt__"][0].value  # chosen, rejected, textual_loss, textual_gradient
print("suggestions:", pause["textual_gradient"])
out = graph.invoke(Command(resume="Accept"), thread)  # keep the model's suggestions
out = graph.invoke(Command(resume="Mention oil and wax."), thread)  # or replace them
print(out["response"], out["stop_reason"])
# Command(resume="stop") would end the loop with stop_reason "human_stop".
