"""A model's chat template (Jinja, Hugging Face) → Ollama's Modelfile TEMPLATE (Go template syntax).

Templates are recognised by their markers and written as Ollama's own templates for that format
(`{{ range .Messages }}` over the conversation); a format not listed here is refused with what to
do. The default system prompt a Jinja template inserts itself (SmolLM2's) becomes the Modelfile's
SYSTEM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..core.errors import InvalidSetting


@dataclass(frozen=True)
class ChatFormat:
    name: str
    markers: tuple[str, ...]  # found in the Jinja template
    families: tuple[str, ...]  # catalog families that use it (for models with no files here)
    template: str  # Ollama Go template
    stop: tuple[str, ...]


FORMATS = (
    ChatFormat(
        "chatml",
        ("<|im_start|>",),
        ("smollm2", "qwen2.5", "yi-1.5"),
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
        "{{ end }}<|im_start|>assistant\n",
        ("<|im_start|>", "<|im_end|>"),
    ),
    ChatFormat(
        "llama3",
        ("<|start_header_id|>",),
        ("llama",),
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
        "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
        ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    ),
    ChatFormat(
        "phi3",
        ("<|user|>", "<|end|>"),
        ("phi-3",),
        "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n",
        ("<|end|>", "<|user|>", "<|assistant|>"),
    ),
    ChatFormat(
        "gemma",
        ("<start_of_turn>",),
        ("gemma",),
        '{{- range .Messages }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}'
        "{{ .Role }}{{ end }}\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n",
        ("<start_of_turn>", "<end_of_turn>"),
    ),
    ChatFormat(
        "mistral",
        ("[INST]",),
        ("mistral", "mixtral", "ministral"),
        '{{- range .Messages }}{{ if eq .Role "user" }}[INST] {{ .Content }}[/INST]'
        '{{ else if eq .Role "assistant" }} {{ .Content }}</s>{{ end }}{{ end }}',
        ("[INST]", "[/INST]"),
    ),
)


def chat_format(chat_template: str | None = None, family: str | None = None) -> ChatFormat:
    """The format of a Jinja chat template (by its markers), else of a catalog family."""
    if chat_template:
        for f in FORMATS:
            if all(m in chat_template for m in f.markers):
                return f
    if family:
        key = family.strip().lower()
        for f in FORMATS:
            if any(key.startswith(fam) for fam in f.families):
                return f
    raise InvalidSetting(
        f"No Ollama template known for this chat format (family {family!r}).",
        f"Known: {', '.join(f.name for f in FORMATS)}. Write TEMPLATE by hand from the model's "
        "chat_template (Ollama docs: Modelfile → TEMPLATE), or use the model's "
        "ready-made Ollama image.",
    )


def default_system(chat_template: str) -> str | None:
    """The system prompt a Jinja template inserts when the conversation has none
    (None: it inserts none)."""
    from jinja2 import Template

    rendered = Template(chat_template).render(
        messages=[{"role": "user", "content": "\x00"}],
        add_generation_prompt=False,
        bos_token="",
        eos_token="",
    )
    before = rendered.split("\x00")[0]
    if "<|im_start|>system\n" in before:
        return before.split("<|im_start|>system\n", 1)[1].split("<|im_end|>", 1)[0]
    return None


def modelfile(
    gguf: str,
    chat_template: str | None = None,
    family: str | None = None,
    num_ctx: int = 2048,
    temperature: float | None = None,
) -> str:
    """An Ollama Modelfile: FROM the GGUF (a path relative to the Modelfile, or absolute), TEMPLATE,
    SYSTEM (if the template has a default), PARAMETER stop (one per stop string) and num_ctx."""
    f = chat_format(chat_template, family)
    lines = [f"FROM {gguf}", f'TEMPLATE """{f.template}"""']
    system = default_system(chat_template) if chat_template and f.name == "chatml" else None
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines += [f'PARAMETER stop "{s}"' for s in f.stop]
    lines.append(f"PARAMETER num_ctx {int(num_ctx)}")
    if temperature is not None:
        lines.append(f"PARAMETER temperature {temperature:g}")
    return "\n".join(lines) + "\n"


def commands(name: str, prompt: str = "Why is the sky blue?") -> list[str]:
    """The shell lines from the guide: create the model from the Modelfile,
    chat with it, call its API."""
    body = json.dumps({"model": name, "prompt": prompt, "stream": False})
    return [
        f"ollama create {name} -f Modelfile",
        f"ollama run {name}",
        f"curl http://localhost:11434/api/generate -d '{body}'",
    ]


def render(fmt: ChatFormat, messages: list[dict], system: str | None = None) -> str:
    """What Ollama sends the model for `messages` under `fmt` (a Python reading of the Go templates
    above, used to check the translation against the Jinja original)."""
    msgs = list(messages)
    if system and not any(m["role"] == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system})
    if fmt.name == "chatml":
        return (
            "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)
            + "<|im_start|>assistant\n"
        )
    if fmt.name == "llama3":
        return (
            "".join(
                f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>"
                for m in msgs
            )
            + "<|start_header_id|>assistant<|end_header_id|>\n\n"
        )
    if fmt.name == "phi3":
        return (
            "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in msgs) + "<|assistant|>\n"
        )
    if fmt.name == "gemma":
        return (
            "".join(
                f"<start_of_turn>{'model' if m['role'] == 'assistant' else m['role']}\n"
                f"{m['content']}<end_of_turn>\n"
                for m in msgs
            )
            + "<start_of_turn>model\n"
        )
    return "".join(
        f"[INST] {m['content']}[/INST]" if m["role"] == "user" else f" {m['content']}</s>"
        for m in msgs
        if m["role"] in ("user", "assistant")
    )
