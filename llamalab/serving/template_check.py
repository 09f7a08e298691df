"""Check an exported GGUF (or an Ollama Modelfile) for what most often breaks a fine-tuned model
after export: a chat template or stop token that is no longer the source's.

The same conversations (a system and a user turn, a user turn alone, user/assistant/user; with and
without the generation prompt) are rendered with the GGUF's `tokenizer.chat_template` (Jinja, set up
as transformers does: transformers utils/chat_template_utils.py `_compile_jinja_template`) and with
the source tokenizer's `apply_chat_template`; the strings must be equal, and so must the token ids
llama.cpp makes of them (its BOS rule included) and the source's. Every end-of-turn token of the
source (tokenizer eos, generation_config.json `eos_token_id`) must be one llama.cpp stops on
(`llama_vocab_is_eog`, the runtime's own answer), with the same text, and the GGUF's
`tokenizer.ggml.eos_token_id` must be one of them (runtimes that trust only that id stop there).
A difference raises ExportMismatch naming it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InvalidSetting, LlamalabError
from ..plan import ollama

SYSTEM = {"role": "system", "content": "You are a terse assistant. Answer in one sentence."}
CONVERSATIONS: tuple[tuple[str, tuple[dict, ...]], ...] = (
    ("system + user", (SYSTEM, {"role": "user", "content": "What is the capital of France?"})),
    ("user alone", ({"role": "user", "content": "Say hello."},)),
    (
        "multi-turn",
        (
            {"role": "user", "content": "Name a primary colour."},
            {"role": "assistant", "content": "Red."},
            {"role": "user", "content": "Name another one."},
        ),
    ),
)
CONTEXT_CHARS = 24  # characters shown either side of the first difference


class ExportMismatch(LlamalabError):
    """An export (GGUF or Modelfile) differs from its source in its chat template or stop tokens;
    `differences` lists each one in words."""

    def __init__(self, what: str, differences: list[str], fix: str):
        self.differences = list(differences)
        listed = "\n".join(f"  - {d}" for d in differences)
        super().__init__(f"{what} does not match its source:\n{listed}", fix)


@dataclass(frozen=True)
class TemplateCheck:
    """What was compared between a GGUF and its source, all equal (else ExportMismatch)."""

    renders: int  # conversation × generation-prompt renders compared as strings
    prompt_tokens: int  # tokens of those renders compared id by id
    end_of_turn: tuple[str, ...]  # the source's end-of-turn tokens: llama.cpp stops on each
    eos: str  # the GGUF's tokenizer.ggml.eos_token_id, as text
    add_bos: bool  # llama.cpp puts BOS before a prompt (and the source's rendering has it)

    def to_dict(self) -> dict:
        return {
            "renders": self.renders,
            "prompt_tokens": self.prompt_tokens,
            "end_of_turn": list(self.end_of_turn),
            "eos": self.eos,
            "add_bos": self.add_bos,
        }


@dataclass(frozen=True)
class ModelfileCheck:
    """What was compared between an Ollama Modelfile and its source, all equal."""

    renders: int  # conversations rendered by its TEMPLATE (with Ollama's SYSTEM rule) and compared
    stop: tuple[str, ...]  # its PARAMETER stop strings: the source's end-of-turn tokens among them

    def to_dict(self) -> dict:
        return {"renders": self.renders, "stop": list(self.stop)}


@dataclass(frozen=True)
class Source:
    """The source's tokenizer and the ids that end its turns."""

    tokenizer: object
    end_of_turn: tuple[int, ...]


def source_chat(source="default") -> Source:
    """The tokenizer of `source` (a model name, a checkpoint folder, or a tokenizer) and its
    end-of-turn ids: the tokenizer's eos and generation_config.json's `eos_token_id`."""
    if hasattr(source, "apply_chat_template"):
        tok, folder = source, getattr(source, "name_or_path", "")
    else:
        from ..runtime.files import model_files

        folder = str(model_files(source))
        tok = _tokenizer(folder, _version(Path(folder)))
    ids = [tok.eos_token_id] if tok.eos_token_id is not None else []
    config = Path(folder) / "generation_config.json" if folder else None
    if config is not None and config.is_file():
        found = json.loads(config.read_text()).get("eos_token_id")
        ids += found if isinstance(found, list) else [found] if found is not None else []
    return Source(tok, tuple(dict.fromkeys(int(i) for i in ids)))


@functools.lru_cache(maxsize=4)
def _tokenizer(folder: str, version: tuple):
    """The folder's tokenizer, loaded once per version of its files (the first load in a process
    takes seconds)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _version(folder: Path) -> tuple:
    return tuple((f.name, f.stat().st_mtime_ns) for f in sorted(folder.glob("*.j*")))


def check_template(gguf, source="default") -> TemplateCheck:
    """Compare the GGUF file `gguf` with `source` (a model name, checkpoint folder or tokenizer):
    renders, prompt tokens and stop tokens (see the module's docstring). ExportMismatch names every
    difference; a GGUF made elsewhere can be checked the same way."""
    src, vocab = source_chat(source), _Vocab(Path(gguf))
    try:
        diffs, renders, tokens = _compare_renders(src, vocab)
        diffs += _compare_stops(src, vocab)
        eos, add_bos = vocab.text(vocab.meta_id("eos")), vocab.add_bos
    finally:
        vocab.close()
    if diffs:
        raise ExportMismatch(
            Path(gguf).name,
            diffs,
            "Fix the source folder and export again: llama.cpp's converter takes the template "
            "from tokenizer_config.json's chat_template before chat_template.jinja (transformers "
            "the other way round: drop the stale one) and eos from tokenizer_config.json's "
            "eos_token. Or repair this file with gguf-py's scripts: gguf_new_metadata.py "
            "--chat-template-file, gguf_set_metadata.py tokenizer.ggml.eos_token_id <id>.",
        )
    return TemplateCheck(
        renders=renders,
        prompt_tokens=tokens,
        end_of_turn=tuple(src_text(src, i) for i in src.end_of_turn),
        eos=eos,
        add_bos=add_bos,
    )


def check_modelfile(modelfile, source="default") -> ModelfileCheck:
    """Compare an Ollama Modelfile (its text, or a path to it) with `source`: its TEMPLATE, run as
    Ollama runs it for a chat (its SYSTEM first when the chat has none), must render each check
    conversation as the source's template does with the generation prompt (Ollama always asks for
    an answer); each end-of-turn token of the source must be a PARAMETER stop, and every stop must
    be a special token of the source (an ordinary string would cut answers that contain it)."""
    text = str(modelfile)
    if "\n" not in text and Path(text).is_file():
        text = Path(text).read_text()
    parts, src = ollama.parse_modelfile(text), source_chat(source)
    diffs: list[str] = []
    if parts.template is None:
        diffs.append("it has no TEMPLATE (Ollama would guess one, or send raw prompts)")
    renders = 0
    for name, messages in CONVERSATIONS if parts.template is not None else ():
        want = _hf_render(src.tokenizer, messages, True)
        got = ollama.render(parts.template or "", list(messages), parts.system)
        renders += 1
        if got != want:
            diffs.append(f"{name}: TEMPLATE renders {first_difference(got, want)}")
    special = set(getattr(src.tokenizer, "all_special_tokens", ())) | {
        t.content for t in getattr(src.tokenizer, "added_tokens_decoder", {}).values()
    }
    for i in src.end_of_turn:
        if src_text(src, i) not in parts.stop:
            diffs.append(f"end-of-turn token {src_text(src, i)!r} (id {i}) is not a PARAMETER stop")
    diffs += [
        f"PARAMETER stop {s!r} is not a special token of the source: it would cut answers"
        for s in parts.stop
        if s not in special
    ]
    if diffs:
        raise ExportMismatch(
            "The Modelfile",
            diffs,
            "Write it again with llamalab.ollama_modelfile(gguf, chat_template=<the source's>), "
            "or fix TEMPLATE / PARAMETER stop by hand (ollama docs/modelfile.mdx).",
        )
    return ModelfileCheck(renders=renders, stop=parts.stop)


def first_difference(got: str, want: str) -> str:
    """Where two strings first differ, with context: 'differently from character N: '…' where the
    source has '…''."""
    n = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    lo = max(0, n - CONTEXT_CHARS)
    return (
        f"differently from character {n}: {got[lo : n + CONTEXT_CHARS]!r} where the source has "
        f"{want[lo : n + CONTEXT_CHARS]!r}"
    )


def render_jinja(template: str, messages, add_generation_prompt: bool, bos: str, eos: str) -> str:
    """A chat template rendered as transformers renders it: a sandboxed Jinja environment with
    trim_blocks, lstrip_blocks, loop controls, `raise_exception`, `strftime_now` and a `tojson`
    that keeps non-ASCII text."""
    from datetime import datetime

    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = lambda x, indent=None, **kw: json.dumps(
        x, ensure_ascii=False, indent=indent
    )
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template).render(
        messages=[dict(m) for m in messages],
        add_generation_prompt=add_generation_prompt,
        bos_token=bos,
        eos_token=eos,
    )


def src_text(src: Source, token_id: int) -> str:
    return str(src.tokenizer.convert_ids_to_tokens(int(token_id)))


def _hf_render(tok, messages, add_generation_prompt: bool) -> str:
    return tok.apply_chat_template(
        [dict(m) for m in messages], add_generation_prompt=add_generation_prompt, tokenize=False
    )


def _outcome(render) -> str:
    """A render's text, or what it raised (two templates that refuse alike agree)."""
    try:
        return render()
    except Exception as e:  # a template's raise_exception, or a Jinja error
        return f"<raises {type(e).__name__}: {e}>"


def _compare_renders(src: Source, vocab: _Vocab) -> tuple[list[str], int, int]:
    template = vocab.meta.get("tokenizer.chat_template")
    if not template:
        return ["it has no tokenizer.chat_template (llama.cpp would fall back to its own)"], 0, 0
    bos, eos = vocab.text(vocab.meta_id("bos")), vocab.text(vocab.meta_id("eos"))
    diffs, renders, tokens = [], 0, 0
    for name, messages in CONVERSATIONS:
        for gen in (True, False):
            label = f"{name}, {'with' if gen else 'without'} the generation prompt"
            want = _outcome(lambda m=messages, g=gen: _hf_render(src.tokenizer, m, g))
            got = _outcome(lambda m=messages, g=gen: render_jinja(template, m, g, bos, eos))
            renders += 1
            if got != want:
                diffs.append(f"{label}: the GGUF's template renders {first_difference(got, want)}")
            elif not want.startswith("<raises"):
                tokens += len(want_ids := _hf_ids(src.tokenizer, messages, gen))
                got_ids = vocab.tokenize(got)
                if got_ids != want_ids:
                    diffs.append(f"{label}: {_token_difference(vocab, got_ids, want_ids)}")
    return diffs, renders, tokens


def _hf_ids(tok, messages, gen: bool) -> list[int]:
    enc = tok.apply_chat_template(
        [dict(m) for m in messages], add_generation_prompt=gen, tokenize=True, return_dict=True
    )
    return list(enc["input_ids"])


def _token_difference(vocab: _Vocab, got: list[int], want: list[int]) -> str:
    n = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    if n == 0 and got and got[0] == vocab.bos and vocab.add_bos:
        return (
            f"llama.cpp adds BOS {vocab.text(vocab.bos)!r} before the prompt "
            "(tokenizer.ggml.add_bos_token = true); the source's rendering does not start with it"
        )
    a = vocab.text(got[n]) if n < len(got) else "(end)"
    b = vocab.text(want[n]) if n < len(want) else "(end)"
    return f"llama.cpp's tokens differ from the source's at token {n}: {a!r} where it has {b!r}"


def _compare_stops(src: Source, vocab: _Vocab) -> list[str]:
    diffs = []
    for i in src.end_of_turn:
        text = src_text(src, i)
        if vocab.text(i) != text:
            diffs.append(f"token {i} is {vocab.text(i)!r} in the GGUF but {text!r} in the source")
        elif not vocab.is_eog(i):
            diffs.append(f"llama.cpp does not stop on the source's end-of-turn {text!r} (id {i})")
    eos = vocab.meta_id("eos")
    if eos not in src.end_of_turn:
        ends = ", ".join(f"{src_text(src, i)!r} (id {i})" for i in src.end_of_turn)
        diffs.append(
            f"tokenizer.ggml.eos_token_id is {vocab.text(eos)!r} (id {eos}); the source ends its "
            f"turns with {ends}"
        )
    return diffs


class _Vocab:
    """A GGUF's vocabulary and metadata as llama.cpp reads them (vocab_only: no weights loaded)."""

    def __init__(self, path: Path):
        from ..runtime.backends import require
        from ..runtime.backends.gguf import INSTALL

        require("llama_cpp", INSTALL, "the GGUF is read with llama.cpp's own tokenizer")
        import llama_cpp

        if not path.is_file():
            raise InvalidSetting(f"{path} does not exist.", "Pass the .gguf file to check.")
        self._lib = llama_cpp
        self.llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
        self.meta = dict(self.llm.metadata)
        self._v = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.bos = int(llama_cpp.llama_vocab_bos(self._v))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._v))

    def meta_id(self, name: str) -> int:
        value = self.meta.get(f"tokenizer.ggml.{name}_token_id")
        return int(value) if value is not None else -1

    def text(self, token_id: int) -> str:
        if not 0 <= token_id < self._lib.llama_vocab_n_tokens(self._v):
            return "(none)"
        return self._lib.llama_vocab_get_text(self._v, token_id).decode("utf-8", "replace")

    def is_eog(self, token_id: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._v, token_id))

    def tokenize(self, text: str) -> list[int]:
        """The ids llama.cpp's server makes of a rendered chat: special tokens parsed, BOS put
        first when the vocabulary says so unless the text already starts with it (llama.cpp
        common/chat.cpp drops a rendered BOS rather than doubling it)."""
        ids = list(self.llm.tokenize(text.encode(), add_bos=False, special=True))
        if self.add_bos and ids[:1] != [self.bos]:
            ids.insert(0, self.bos)
        return ids

    def close(self) -> None:
        self.llm.close()
