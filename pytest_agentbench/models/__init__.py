"""Model aliases and one call to a model.

registry.py   models.yaml -> typed ModelSpec (ServeConfig, parsed cost, retry policies); select_usable
taxonomy.py   how each failure class is retried; the one place foreign errors become failure classes
adapter.py    one model call: message shaping, streaming timings, usage, retries
calls.py      wire types: ToolCall, Usage, ParsedMessage, Completion
parsers/      tool-call formats (native + leaked-call recovery, hermes, qwen3_xml, glm47, json_block)
              and reasoning splits (think_tags)
probe.py      the six-check battery behind ``agentbench probe``
"""

from __future__ import annotations

#: The file name the plugin and the commands look for (here, so reading it costs no import of the registry).
MODELS_FILE = "models.yaml"
