"""What the backends share: the chat-model base, penalties, the balancer over several servers,
model files and caches, the optional-extras check and users' own model factories."""
