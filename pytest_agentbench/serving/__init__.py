"""Model endpoints: start what an alias needs, or use its base_url.

endpoints.py  the one place an alias becomes a running endpoint (scripted, vllm, or base_url)
http.py       the one HTTP client: pooled keep-alive model calls and SSE, one-shot local requests
scripted.py   the scripted OpenAI-compatible test double (never presented as a model)
vllm/         spec, rules, command, diagnosis, process, metrics, admin
"""
