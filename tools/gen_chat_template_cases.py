#!/usr/bin/env python3
"""Renders extra conversations with the real Qwen3-VL chat template through
jinja2, configured as transformers' apply_chat_template configures it
(sandboxed, trim_blocks, lstrip_blocks, json.dumps-based `tojson`), and writes
tests/data/tokenizer/templates_extra.json: the template paths templates.json
does not cover (tools, tool calls, tool turns, late system messages, media in
system/assistant/tool turns, add_vision_id with videos).

First checks that the same renderer reproduces every case of templates.json.
Usage (needs jinja2): python3 tools/gen_chat_template_cases.py
"""
import json
import os

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "tests", "data", "tokenizer")


def make_template():
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    with open(os.path.join(DATA, "qwen3vl_chat_template.jinja"), encoding="utf-8") as f:
        return env.from_string(f.read())


def render(tmpl, req):
    return tmpl.render(messages=req["messages"], tools=req.get("tools"),
                       add_generation_prompt=req.get("add_generation_prompt", True),
                       add_vision_id=req.get("add_vision_id", False))


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city (°C).",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Zürich\""},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "threshold": {"type": "number", "default": 0.5}},
        "required": ["city"]}}}
CALC = {"type": "function", "function": {"name": "calc", "parameters": {
    "type": "object", "properties": {"expr": {"type": "string"}}, "nullable": None,
    "strict": True, "scale": 1e-07, "big": 1e16, "tab\tkey": "line\nbreak \\ \u0001"}}}

CASES = [
    ("tools_with_system", {
        "tools": [WEATHER, CALC],
        "messages": [{"role": "system", "content": "You are a weather bot."},
                     {"role": "user", "content": "Weather in Zürich?"}]}),
    ("tools_without_system", {
        "tools": [CALC],
        "messages": [{"role": "user", "content": "2+2?"}]}),
    ("tool_calls_and_responses", {
        "tools": [WEATHER],
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "",
             "tool_calls": [
                 {"type": "function", "function": {"name": "get_weather",
                                                   "arguments": {"city": "Paris", "days": 2}}},
                 {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}]},
            {"role": "tool", "content": "{\"temp\": 21}"},
            {"role": "tool", "content": [{"type": "text", "text": "{\"temp\": 25}"}]},
            {"role": "assistant", "content": "Paris 21°C, Rome 25°C."},
            {"role": "user", "content": "Thanks!"}]}),
    ("tool_call_after_text", {
        "messages": [
            {"role": "user", "content": "Compute 6*7"},
            {"role": "assistant", "content": "Let me compute.",
             "tool_calls": [{"function": {"name": "calc", "arguments": {"expr": "6*7",
                                                                        "exact": True,
                                                                        "ratio": 2.5}}}]},
            {"role": "tool", "content": "42"}],
        "add_generation_prompt": True}),
    ("late_system_and_system_image_dropped", {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief. "},
                                           {"type": "image", "image": "sys.png"},
                                           {"type": "text", "text": "Really."}]},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "ignored late system message"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"},
                                              {"type": "image", "image": "asst.png"},
                                              {"type": "text", "text": " there"}]},
            {"role": "user", "content": [{"type": "image", "image": "x.png"}]}]}),
    ("vision_ids_images_videos_tool_image", {
        "add_vision_id": True,
        "messages": [
            {"role": "user", "content": [{"type": "video", "video": "v.mp4"},
                                         {"type": "image_url", "image_url": {"url": "http://h/a.jpg"}},
                                         {"image": "b.png"},
                                         {"type": "text", "text": "What changed?"}]},
            {"role": "assistant", "content": "A cat appeared."},
            {"role": "tool", "content": [{"type": "image", "path": "c.png"},
                                         {"type": "text", "text": "tool saw this"},
                                         {"video": "w.mp4"}]},
            {"role": "user", "content": [{"type": "image", "image": "d.png"}, {"type": "text", "text": "And now?"}]}]}),
    ("ends_with_assistant_no_generation_prompt", {
        "add_generation_prompt": False,
        "messages": [{"role": "user", "content": "Say hi"},
                     {"role": "assistant", "content": "hi"}]}),
    ("tool_first_message_and_empty_strings", {
        "messages": [{"role": "tool", "content": ""},
                     {"role": "user", "content": ""},
                     {"role": "assistant", "content": []}]}),
]


def main():
    tmpl = make_template()
    with open(os.path.join(DATA, "templates.json"), encoding="utf-8") as f:
        golden = json.load(f)
    for c in golden["cases"]:
        got = render(tmpl, c)
        assert got == c["text"], "renderer does not reproduce templates.json case " + c["name"]
    out = {"generator": "tools/gen_chat_template_cases.py: jinja2 %s rendering of "
                        "qwen3vl_chat_template.jinja with transformers' settings "
                        "(trim_blocks, lstrip_blocks, json.dumps tojson)" % jinja2.__version__,
           "cases": [{"name": n, "request": r, "text": render(tmpl, r)} for n, r in CASES]}
    with open(os.path.join(DATA, "templates_extra.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("checked %d golden cases, wrote %d extra cases" % (len(golden["cases"]), len(CASES)))


if __name__ == "__main__":
    main()
