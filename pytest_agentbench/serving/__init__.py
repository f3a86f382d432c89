"""Model endpoints: start what an alias needs (vLLM, the scripted test double) or use its base_url."""
