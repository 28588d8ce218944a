"""Subgraph: TPO writes the next assistant reply of a MessagesState agent."""

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.factory import build_models

policy, reward = build_models()
tpo = create_tpo_graph(policy, reward, TPOConfig(num_samples=2, max_iterations=1, max_tokens=64))

agent = StateGraph(MessagesState)
agent.add_node("tpo", tpo)  # the compiled TPO graph is the node
agent.add_edge(START, "tpo")
agent.add_edge("tpo", END)
app = agent.compile(checkpointer=InMemorySaver())

thread = {"configurable": {"thread_id": "user-42"}}
app.invoke({"messages": [HumanMessage("I have an oak table.")]}, thread)
state = app.invoke({"messages": [HumanMessage("How do I clean it?")]}, thread)
reply = state["messages"][-1]
print(reply.content)
print(reply.response_metadata["tpo"])  # score, iterations, stop_reason
