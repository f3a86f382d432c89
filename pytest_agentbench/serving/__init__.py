"""Model endpoints: start what an alias needs, or use its base_url.

endpoints.py  the one place an alias becomes a running endpoint (scripted, vllm, or base_url)
http.py       the one HTTP client: pooled keep-alive model calls and SSE, one-shot local requests
scripted/     the scripted test double (chat, responses, Anthropic messages; replays or plans; never a model)
vllm/         spec, rules, command, diagnosis, process, metrics, admin
"""
