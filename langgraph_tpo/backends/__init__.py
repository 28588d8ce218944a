"""Model backends: policies (LangChain chat models) and rewards (the BatchReward protocol)."""
