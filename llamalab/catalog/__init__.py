"""The facts: model cards, quantization schemes and GPUs, read from the TOML files beside this module.

Adding a model, scheme or GPU is a data edit; this module only gives the data a typed view.
Pure Python (no torch), so the estimator and the CLI start instantly.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

from ..errors import UnknownHardware, UnknownModel, UnknownScheme

HERE = Path(__file__).parent


@dataclass(frozen=True)
class ModelCard:
    """Architecture and provenance of one model (numbers from its published config.json)."""
    name: str
    display: str
    family: str
    params: int
    active_params: int
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    context: int
    tied_embeddings: bool = False
    mlp: str = "gated"
    experts: int = 0
    experts_active: int = 0
    sliding_window: int = 0
    hub_id: str = ""
    hub_id_instruct: str = ""
    license: str = ""
    best_at: str = ""
    gptq: tuple[str, ...] = ()
    awq: tuple[str, ...] = ()
    chat: bool = False
    aliases: tuple[str, ...] = ()
    source: str = ""
    variant: str = "base"   # "instruct" when asked for by an instruct name or id
    local_path: str = ""    # set for cards read from a local folder

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def repo(self) -> str:
        """The Hub repo to load: the instruct one when that variant was asked for."""
        return self.hub_id_instruct if self.variant == "instruct" and self.hub_id_instruct else self.hub_id

    @property
    def embedding_params(self) -> int:
        """Input embedding plus (when untied) the lm_head: the tensors most quantizers leave alone."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["gptq"], d["awq"], d["aliases"] = list(self.gptq), list(self.awq), list(self.aliases)
        return d


@dataclass(frozen=True)
class Scheme:
    """How a weight is stored: bits, grouping and the backend that runs it on each device."""
    name: str
    family: str
    bits: float
    help: str = ""
    group_size: int = 0
    scale_bits: float = 0.0
    effective_bpw: float = 0.0
    fallback_bpw: float = 0.0
    rank: int = 0
    kv_bytes: int = 2
    embeddings: str = "keep"
    aliases: tuple[str, ...] = ()
    devices: dict = field(default_factory=dict, hash=False, compare=False)

    def bits_per_weight(self, row_length: int = 4096, group_size: int | None = None) -> float:
        """Average stored bits per quantized weight, scales and zero points included."""
        if self.effective_bpw:
            return self.effective_bpw
        group = group_size or self.group_size or row_length
        return self.bits + (self.scale_bits / group if self.scale_bits else 0.0)

    @property
    def quantized(self) -> bool:
        return self.family not in ("float",) and not (self.family == "gguf" and self.bits >= 16)

    def backend_for(self, device: str) -> str:
        return self.devices.get(device.split(":")[0], {}).get("backend", "")

    def loads_from(self, device: str) -> str:
        """The scheme a checkpoint is read as before the backend quantizes it on `device` ("" if pre-quantized)."""
        return self.devices.get(device.split(":")[0], {}).get("loads_from", "")


@dataclass(frozen=True)
class Device:
    """One memory pool a model can live in: a GPU model from the catalog or this machine's RAM."""
    name: str
    display: str
    memory_bytes: int
    bandwidth_bytes_s: float = 0.0
    kind: str = "gpu"
    bf16_tflops: float = 0.0
    source: str = ""


def _load(name: str) -> dict:
    return tomllib.loads((HERE / name).read_text())


@cache
def _cards() -> dict[str, ModelCard]:
    cards = {}
    for m in _load("models.toml")["model"]:
        m = dict(m)
        for key in ("gptq", "awq", "aliases"):
            m[key] = tuple(m.get(key, ()))
        cards[m["name"]] = ModelCard(**m)
    return cards


@cache
def _index() -> dict[str, str]:
    """Every accepted spelling (name, alias, Hub id, instruct id) -> canonical name."""
    idx = {}
    for c in _cards().values():
        for key in (c.name, c.hub_id, c.hub_id_instruct, *c.aliases):
            if key:
                idx[key.lower()] = c.name
    return idx


INSTRUCT_SUFFIXES = ("-instruct", "-it", "-chat")


def card(name: str) -> ModelCard:
    """The card for a short name (`llama-3.1-8b`, `llama-3.1-70b-instruct`), a Hub id, a local folder
    with a config.json, or a local .gguf file."""
    if isinstance(name, ModelCard):
        return name
    key = str(name).strip().lower()
    if key in _index():
        c = _cards()[_index()[key]]
        instruct = key in (c.hub_id_instruct.lower(), "default") or key.endswith(INSTRUCT_SUFFIXES)
        return _with_variant(c, "instruct" if instruct else "base")
    for suffix in INSTRUCT_SUFFIXES:
        if key.endswith(suffix) and key[: -len(suffix)] in _index():
            return _with_variant(_cards()[_index()[key[: -len(suffix)]]], "instruct")
    path = Path(name).expanduser()
    if path.joinpath("config.json").is_file():
        return card_from_config(path)
    if path.suffix == ".gguf" and path.is_file():
        return card_from_gguf(path)
    raise UnknownModel(str(name), sorted(_cards()))


def _with_variant(c: ModelCard, variant: str) -> ModelCard:
    from dataclasses import replace
    return replace(c, variant=variant) if variant != c.variant else c


def card_from_config(folder: Path) -> ModelCard:
    """A card for a local checkpoint, read from its config.json (params counted from the shapes)."""
    cfg = json.loads((folder / "config.json").read_text())
    cfg = {**cfg.get("text_config", {}), **cfg}
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    c = dict(
        name=folder.name, display=folder.name, family=cfg.get("model_type", "local"),
        layers=cfg["num_hidden_layers"], hidden=hidden, intermediate=cfg.get("intermediate_size", 4 * hidden),
        heads=heads, kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim") or hidden // heads, vocab=cfg["vocab_size"],
        context=cfg.get("max_position_embeddings", 2048), tied_embeddings=cfg.get("tie_word_embeddings", False),
        experts=cfg.get("num_local_experts", 0), experts_active=cfg.get("num_experts_per_tok", 0),
        chat=(folder / "chat_template.jinja").exists() or "chat_template" in _tokenizer_config(folder),
        local_path=str(folder), source=f"config.json in {folder}", params=0, active_params=0)
    from ..estimate import count_params
    c["params"], c["active_params"] = count_params(ModelCard(**c)), count_params(ModelCard(**c), active=True)
    return ModelCard(**c)


def card_from_gguf(path: Path) -> ModelCard:
    """A card for a local .gguf file, read from its metadata; params are its tensors' element count."""
    from gguf import GGUFReader
    r = GGUFReader(path)
    meta = lambda key, default=None: r.fields[key].contents() if key in r.fields else default  # noqa: E731
    arch = meta("general.architecture")
    a = lambda key, default=None: meta(f"{arch}.{key}", default)  # noqa: E731
    hidden, heads = a("embedding_length"), a("attention.head_count")
    params = sum(int(t.n_elements) for t in r.tensors)
    vocab = a("vocab_size") or len(r.fields["tokenizer.ggml.tokens"].data)
    c = ModelCard(
        name=path.stem, display=meta("general.name", path.stem), family=arch, layers=a("block_count"),
        hidden=hidden, intermediate=a("feed_forward_length", 4 * hidden), heads=heads,
        kv_heads=a("attention.head_count_kv", heads), head_dim=a("attention.key_length", hidden // heads),
        vocab=vocab, context=a("context_length", 2048),
        tied_embeddings=not any(t.name == "output.weight" for t in r.tensors),
        experts=a("expert_count", 0), experts_active=a("expert_used_count", 0),
        chat="tokenizer.chat_template" in r.fields, local_path=str(path), source=f"GGUF metadata of {path}",
        params=params, active_params=params)
    if c.is_moe:
        from dataclasses import replace

        from ..estimate import count_params
        c = replace(c, active_params=params * count_params(c, active=True) // count_params(c))
    return c


def _tokenizer_config(folder: Path) -> dict:
    p = folder / "tokenizer_config.json"
    return json.loads(p.read_text()) if p.exists() else {}


@cache
def _schemes() -> dict[str, Scheme]:
    out = {}
    for s in _load("schemes.toml")["scheme"]:
        s = dict(s)
        s["aliases"] = tuple(s.get("aliases", ()))
        out[s["name"]] = Scheme(**s)
    return out


def scheme(name: str | Scheme) -> Scheme:
    """Look a scheme up by name or alias (`gptq` means `gptq-4bit`)."""
    if isinstance(name, Scheme):
        return name
    key = str(name).strip().lower()
    for s in _schemes().values():
        if key == s.name or key in s.aliases or key == f"gguf-{s.name}" and s.family == "gguf":
            return s
    raise UnknownScheme(str(name), list(_schemes()))


def all_schemes() -> list[Scheme]:
    return list(_schemes().values())


@cache
def gpus() -> dict[str, Device]:
    out = {}
    for g in _load("hardware.toml")["gpu"]:
        out[g["name"]] = Device(name=g["name"], display=g["display"], memory_bytes=int(g["memory_gb"] * 1e9),
                                bandwidth_bytes_s=g["bandwidth_gb_s"] * 1e9, kind="gpu",
                                bf16_tflops=g.get("bf16_tflops", 0.0), source=g.get("source", ""))
    return out


def gpu(name: str) -> Device:
    key = name.strip().lower().replace(" ", "-")
    for g in gpus().values():
        if key in (g.name, g.display.lower().replace(" ", "-")):
            return g
    raise UnknownHardware(name, list(gpus()))


def models():
    """The catalog as a pandas DataFrame, one row per model."""
    import pandas as pd
    rows = []
    for c in _cards().values():
        d = c.to_dict()
        for k in ("gptq", "awq", "aliases"):
            d[k] = ", ".join(d[k])
        d.pop("variant"), d.pop("local_path")
        rows.append(d)
    return pd.DataFrame(rows)
