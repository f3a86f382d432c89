"""A tiny external agent for the tests: a chat-completions tool loop over the standard library only.

It is a real agent process (not a double of the server): it reads its prompt file, declares the
built-in tool names, runs whatever tool calls come back in the workspace and sends the results,
until an answer has no tool calls. Usage: python3 tiny_agent.py PROMPT_FILE BASE_URL MODEL MAX_TURNS
"""

import json
import os
import subprocess
import sys
import urllib.request

TOOLS = ["run", "read_file", "write_file", "edit", "list_files", "finish"]


def call(base_url, model, messages):
    body = json.dumps(dict(model=model, messages=messages, tools=[tool(n) for n in TOOLS])).encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
    request = urllib.request.Request(base_url + "/chat/completions", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)["choices"][0]["message"]


def tool(name):
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def execute(name, args):
    if name == "run":
        done = subprocess.run(["sh", "-c", args["command"]], capture_output=True, text=True, timeout=60)
        return f"exit {done.returncode}\n{done.stdout}{done.stderr}"
    if name == "read_file":
        return open(args["path"]).read()
    if name == "write_file":
        with open(args["path"], "w") as f:
            f.write(args["content"])
        return "written"
    if name == "edit":
        text = open(args["path"]).read()
        with open(args["path"], "w") as f:
            f.write(text.replace(args["old"], args["new"], 1))
        return "edited"
    if name == "list_files":
        return "\n".join(sorted(os.listdir(".")))
    return "done"


def main(prompt_file, base_url, model, max_turns):
    messages = [{"role": "user", "content": open(prompt_file).read()}]
    for _ in range(int(max_turns)):
        message = call(base_url, model, messages)
        reply = {"role": "assistant", "content": message.get("content"), "tool_calls": message.get("tool_calls")}
        messages.append(reply)
        calls = message.get("tool_calls") or []
        if not calls:
            return 0
        for c in calls:
            name, args = c["function"]["name"], json.loads(c["function"]["arguments"] or "{}")
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": execute(name, args)})
            if name == "finish":
                return 0
    return 3


sys.exit(main(*sys.argv[1:5]))
