"""Chain level: a prompt, then TPO, then a parser, as one LCEL runnable."""

import asyncio

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langgraph_tpo import TPOConfig, as_text_runnable, create_tpo_graph
from langgraph_tpo.backends.factory import build_models

policy, reward = build_models()  # the embedded CPU default, or servers named by TPO_* env vars
graph = create_tpo_graph(policy, reward, TPOConfig(num_samples=2, max_iterations=1, max_tokens=64))
prompt = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("human", "{question}")])
chain = prompt | as_text_runnable(graph) | StrOutputParser()

print(chain.invoke({"question": "How do I take care of a wooden table?"}))
print(chain.batch([{"question": "Name a prime."}, {"question": "Name a color."}]))
for chunk in chain.stream({"question": "What is TPO?"}):
    print(chunk)
print(asyncio.run(chain.ainvoke({"question": "Say hi."})))
