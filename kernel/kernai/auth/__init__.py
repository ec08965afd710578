"""API keys (llamactl's management and inference keys), who is calling, and what they may do."""
