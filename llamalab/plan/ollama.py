"""A model's chat template (Jinja, Hugging Face) → Ollama's Modelfile TEMPLATE (Go template syntax).

Templates are recognised by their markers and written as Ollama's own templates for that format
(`{{ range .Messages }}` over the conversation); a format not listed here is refused with what to
do. The default system prompt a Jinja template inserts itself (SmolLM2's) becomes the Modelfile's
SYSTEM; a deployment plan writes its Modelfile through the same `modelfile()`, from the model's
template as the catalog keeps it (`known_template`).

The system prompt goes where each model's own Jinja template puts it (Ollama passes it as `.System`,
all system messages joined, and keeps them in `.Messages`: ollama/ollama template/template.go
`collate`): Mistral v0.3 prepends it to the last user message (mistralai/Mistral-7B-Instruct-v0.3
chat_template: `"[INST] " + system_message + "\n\n" + message["content"]` when `loop.last`);
Gemma has no system role — Gemma 2's template raises "System role not supported", Gemma 3's
(transformers models/gemma3/convert_gemma3_weights.py `_CHAT_TEMPLATE`) prepends it with a blank
line to the first user turn, which is what this template does for every Gemma.

`num_ctx` is capped (`DEFAULT_NUM_CTX`): a Modelfile runs on a laptop, not on the server the
deployment plan sized for its context; `laptop_num_ctx()` gives what a model's estimate fits in
`LAPTOP_BUDGET_BYTES`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .. import catalog
from ..core.errors import InvalidSetting
from . import gotemplate
from .estimator import max_context

# Ollama's own default num_ctx is 2048 (its Modelfile docs); 8192 holds a chat with a document in
# it and costs little KV memory on a laptop (Llama 3.1 8B: 1 GiB at bf16). A default, not a rule.
DEFAULT_NUM_CTX = 8192
# A 16 GB laptop, half of it for the model: the OS, a browser and the notebook keep the rest.
# An assumption, stated; pass your own budget to laptop_num_ctx().
LAPTOP_BUDGET_BYTES = 8e9


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
        "{{- $system := .System }}{{- $first := true }}{{- range .Messages }}"
        '{{- if eq .Role "user" }}<start_of_turn>user\n'
        "{{ if and $first $system }}{{ $system }}\n\n{{ end }}{{ .Content }}<end_of_turn>\n"
        "{{ $first = false }}"
        '{{- else if eq .Role "assistant" }}<start_of_turn>model\n{{ .Content }}<end_of_turn>\n'
        "{{ end }}{{- end }}<start_of_turn>model\n",
        ("<start_of_turn>", "<end_of_turn>"),
    ),
    ChatFormat(
        "mistral",
        ("[INST]",),
        ("mistral", "mixtral"),
        '{{- range $i, $_ := .Messages }}{{ if eq .Role "user" }}[INST] '
        "{{ if and $.System (eq (len (slice $.Messages $i)) 1) }}{{ $.System }}\n\n{{ end }}"
        '{{ .Content }}[/INST]{{ else if eq .Role "assistant" }} {{ .Content }}</s>{{ end }}'
        "{{ end }}",
        ("[INST]", "[/INST]"),
    ),
)


# Mistral formats the "mistral" one above (Mistral's tokenizer V3, mistralai/cookbook
# concept-deep-dive/tokenization/templates.md) would render wrongly: refused, with why, until a
# template is written from the model's own chat_template; by family, or by model where a family
# mixes formats (Mixtral 8x7B is V1, 8x22B V3).
NOT_V3 = {
    "ministral": "Ministral 8B 2410 uses Mistral's V3-Tekken format, with no space after [INST] "
    "and [/INST] (mistralai/cookbook concept-deep-dive/tokenization/templates.md), not the V3 "
    "one this kit writes",
    "mistral small 3": "Mistral Small 3 (2501) uses a later Tekken format that puts the system "
    "prompt in [SYSTEM_PROMPT] tags (seen only in third-party copies of its chat_template here), "
    "not in the last [INST] as the V3 one this kit writes",
}
NOT_V3_MODELS = {
    "mixtral-8x7b": "Mixtral 8x7B uses Mistral's V1 format, with a space before [INST] and "
    "before [/INST] (mistralai/cookbook concept-deep-dive/tokenization/templates.md), not the V3 "
    "one this kit writes",
}
NOT_V3_MARKER = "[SYSTEM_PROMPT]"


def chat_format(
    chat_template: str | None = None, family: str | None = None, model: str | None = None
) -> ChatFormat:
    """The format of a Jinja chat template (by its markers), else of a catalog family; a Mistral
    format other than V3 (`NOT_V3`, `NOT_V3_MODELS` by catalog model name) is refused with why."""
    _refuse_not_v3(chat_template, family, model)
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


def _refuse_not_v3(chat_template: str | None, family: str | None, model: str | None) -> None:
    key = (family or "").strip().lower()
    why = NOT_V3_MODELS.get(model or "") or next(
        (w for fam, w in NOT_V3.items() if key.startswith(fam)), None
    )
    if chat_template and NOT_V3_MARKER in chat_template:
        why = f"this template puts the system prompt in {NOT_V3_MARKER} tags (a Tekken format)"
    if why:
        raise InvalidSetting(
            f"No Ollama template known for this chat format: {why}.",
            "Write TEMPLATE by hand from the model's chat_template (Ollama docs: Modelfile → "
            "TEMPLATE), or use the model's ready-made Ollama image.",
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


def known_template(model: str) -> str | None:
    """The catalog's copy of a model's own Jinja chat template (catalog/chat_templates.toml, each
    with its source), or None: what `deployment_plan` writes its Modelfile from."""
    for entry in catalog.read("chat_templates.toml")["template"]:
        if model in entry["models"]:
            return entry["template"]
    return None


def laptop_num_ctx(model, scheme: str = "q4_k_m", budget_bytes: float = LAPTOP_BUDGET_BYTES) -> int:
    """The longest context whose estimate fits in `budget_bytes` of a laptop's memory: what
    `num_ctx` may be there (0: not even the weights)."""
    return max_context(model, scheme, gpu=budget_bytes, device="cpu")  # a laptop runs it on its CPU


def modelfile(
    gguf: str,
    chat_template: str | None = None,
    family: str | None = None,
    num_ctx: int = 2048,
    temperature: float | None = None,
    max_num_ctx: int = DEFAULT_NUM_CTX,
    model: str | None = None,
) -> str:
    """An Ollama Modelfile: FROM the GGUF (a path relative to the Modelfile, or absolute), TEMPLATE,
    SYSTEM (if the template has a default), PARAMETER stop (one per stop string) and num_ctx, at
    most `max_num_ctx` (a comment says when it was lowered; `laptop_num_ctx()` sizes it)."""
    f = chat_format(chat_template, family, model)
    lines = [f"FROM {gguf}", f'TEMPLATE """{f.template}"""']
    system = default_system(chat_template) if chat_template and f.name == "chatml" else None
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines += [f'PARAMETER stop "{s}"' for s in f.stop]
    ctx = min(int(num_ctx), int(max_num_ctx))
    if ctx < int(num_ctx):
        lines.append(
            f"# num_ctx {int(num_ctx)} lowered to {ctx}: the KV cache of every token is memory "
            "the laptop must have (llamalab.plan.ollama.laptop_num_ctx sizes it; raise "
            "max_num_ctx if it fits)."
        )
    lines.append(f"PARAMETER num_ctx {ctx}")
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


def template_values(messages: list[dict], system: str | None = None) -> dict:
    """What Ollama's /api/chat hands a TEMPLATE: the Modelfile's SYSTEM first unless the chat
    opens with a system message (ollama server/routes.go, ChatHandler), then `.System` (every
    system message, joined by a blank line) and `.Messages`, consecutive messages of one role
    merged (ollama template/template.go, `collate`)."""
    msgs = list(messages)
    if system and (not msgs or msgs[0]["role"] != "system"):
        msgs.insert(0, {"role": "system", "content": system})
    merged: list[dict] = []
    for m in msgs:
        if merged and merged[-1]["Role"] == m["role"]:
            merged[-1]["Content"] += "\n\n" + m["content"]
        else:
            merged.append({"Role": m["role"], "Content": m["content"]})
    joined = "\n\n".join(m["content"] for m in msgs if m["role"] == "system")
    return {"System": joined, "Messages": merged, "Response": ""}


def render(fmt: ChatFormat | str, messages: list[dict], system: str | None = None) -> str:
    """What Ollama sends the model for `messages` under `fmt` (a ChatFormat or a TEMPLATE's
    text), with `system` as the Modelfile's SYSTEM: the Go template run by plan.gotemplate."""
    template = fmt.template if isinstance(fmt, ChatFormat) else fmt
    return gotemplate.render(template, template_values(messages, system))


@dataclass(frozen=True)
class ModelfileParts:
    """What a Modelfile says about chat: its FROM, TEMPLATE, SYSTEM and PARAMETER stop lines."""

    source: str
    template: str | None
    system: str | None
    stop: tuple[str, ...]


def parse_modelfile(text: str) -> ModelfileParts:
    """Read FROM, TEMPLATE, SYSTEM (quoted, or triple-quoted over several lines) and every
    PARAMETER stop from a Modelfile's text (ollama docs/modelfile.mdx)."""
    found: dict[str, str] = {}
    stops: list[str] = []
    for m in _INSTRUCTION.finditer(text):
        name, value = m.group(1).upper(), _unquote(m.group(2))
        if name == "PARAMETER":
            key, _, arg = value.partition(" ")
            if key.lower() == "stop":
                stops.append(_unquote(arg.strip()))
        else:
            found[name] = value
    if "FROM" not in found:
        raise InvalidSetting(
            "This Modelfile has no FROM line.", "Start it with FROM <the .gguf file or a model>."
        )
    return ModelfileParts(found["FROM"], found.get("TEMPLATE"), found.get("SYSTEM"), tuple(stops))


_INSTRUCTION = re.compile(
    r'^\s*(FROM|TEMPLATE|SYSTEM|PARAMETER)\s+("""[\s\S]*?"""|[^\n]*)', re.I | re.M
)


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"""') and value.endswith('"""') and len(value) >= 6:
        return value[3:-3]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value)
    return value
