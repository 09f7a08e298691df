"""The facts: model cards, quantization schemes and GPUs, read from the TOML files
beside this module.

Adding a model, scheme or GPU is a data edit; this module only gives the data a typed view. Listings
(`models()`, `schemes()`, `gpus()`) are DataFrames, one row per entry; lookups (`card()`,
`scheme()`, `gpu()`) return the typed object; `*_names()` list the names. Pure Python (no torch).
"""

from __future__ import annotations

import functools
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import InvalidSetting, UnknownHardware, UnknownModel, UnknownScheme
from ..core.hardware import GPU
from ..core.units import MiB
from .architecture import config_fields, count_params, linear_shapes

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "GGUF_FILE_TYPES",
    "GPU",
    "SHORT_NAMES",
    "ModelCard",
    "Scheme",
    "card",
    "card_from_config",
    "card_from_gguf",
    "count_params",
    "gpu",
    "gpu_names",
    "gpus",
    "linear_shapes",
    "model_names",
    "models",
    "osi_licenses",
    "read",
    "register_scheme",
    "scheme",
    "scheme_names",
    "schemes",
]

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
    license_source: str = ""  # the card or licence page it was checked against, or "unverified"
    open_weights: bool = False  # downloadable under its licence (catalog models; unknown: False)
    open_source: bool = False  # the licence is OSI-approved (`osi_licenses()`)
    best_at: str = ""
    gptq: tuple[str, ...] = ()
    awq: tuple[str, ...] = ()
    fp8: tuple[str, ...] = ()
    chat: bool = False
    aliases: tuple[str, ...] = ()
    source: str = ""
    variant: str = "base"  # "instruct" when asked for by an instruct name or id
    local_path: str = ""  # set for cards read from a local folder
    gguf_type: str = (
        ""  # weight type of the model's own GGUF file (a .gguf card, the embedded model)
    )

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @property
    def repo(self) -> str:
        """The Hub repo to load: the instruct one when that variant was asked for."""
        return (
            self.hub_id_instruct
            if self.variant == "instruct" and self.hub_id_instruct
            else self.hub_id
        )

    def published(self, method: str) -> tuple[str, ...]:
        """Hub repos of checkpoints others quantized with `method` ("gptq", "awq", "fp8")."""
        return {"gptq": self.gptq, "awq": self.awq, "fp8": self.fp8}.get(method, ())

    @property
    def embedding_params(self) -> int:
        """Input embedding plus (when untied) the lm_head:
        the tensors most quantizers leave alone."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["gptq"], d["awq"], d["fp8"] = list(self.gptq), list(self.awq), list(self.fp8)
        d["aliases"] = list(self.aliases)
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
    quantized_at: str = (
        "none"  # "none" (float, cast at load), "load" (quantized while loading), "file"
    )
    made_by: str = ""  # the quantize() method that makes its checkpoints ("gptq", "awq")
    dtype: str = ""  # a float scheme's torch dtype name
    vllm_quantization: str = ""  # vLLM's --quantization for it, where it has one
    aliases: tuple[str, ...] = ()
    devices: dict = field(default_factory=dict, hash=False, compare=False)

    def bits_per_weight(self, row_length: int = 4096, group_size: int | None = None) -> float:
        """Average stored bits per quantized weight, scales and zero points included."""
        if self.effective_bpw:
            return self.effective_bpw
        group = group_size or self.group_size or row_length
        return self.bits + (self.scale_bits / group if self.scale_bits else 0.0)

    @property
    def is_float(self) -> bool:
        """fp32 / bf16 / fp16 weights in a transformers checkpoint
        (what full fine-tuning trains)."""
        return self.family == "float"

    @property
    def is_gguf(self) -> bool:
        """A GGUF file that llama.cpp runs (its own engine, its own server)."""
        return self.family == "gguf"

    def backend_for(self, device: str) -> str:
        return self.devices.get(device.split(":")[0], {}).get("backend", "")

    def loads_from(self, device: str) -> str:
        """The scheme a checkpoint is read as before the backend quantizes it on `device`
        ("" if pre-quantized)."""
        return self.devices.get(device.split(":")[0], {}).get("loads_from", "")


@cache
def read(name: str) -> dict:
    """One of the catalog's TOML files (models, schemes, hardware, assumptions,
    prices, providers, ...)."""
    return tomllib.loads((HERE / name).read_text())


@cache
def _cards() -> dict[str, ModelCard]:
    cards = {}
    for m in read("models.toml")["model"]:
        m = dict(m)
        for key in ("gptq", "awq", "fp8", "aliases"):
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


def card(name: str | os.PathLike | ModelCard) -> ModelCard:
    """The card for a short name (`llama-3.1-8b`, `llama-3.1-70b-instruct`), a Hub id, a local
    folder with a config.json, or a local .gguf file."""
    if isinstance(name, ModelCard):
        return name
    if not isinstance(name, (str, os.PathLike)) or not str(name).strip():
        raise InvalidSetting(
            f"model={name!r} is not a model name.",
            "Pass a catalog name such as 'llama-3.1-8b', a Hub id, a local folder or a .gguf file; "
            "`llamalab.models()` lists the catalog.",
        )
    key = str(name).strip().lower()
    if key in _index():
        c = _cards()[_index()[key]]
        instruct = key in (c.hub_id_instruct.lower(), "default") or key.endswith(INSTRUCT_SUFFIXES)
        return _with_variant(c, "instruct" if instruct else "base")
    for suffix in INSTRUCT_SUFFIXES:
        if key.endswith(suffix) and key[: -len(suffix)] in _index():
            return _with_variant(_cards()[_index()[key[: -len(suffix)]]], "instruct")
    path = _local(name)
    if path is not None:
        return card_from_gguf(path) if path.suffix == ".gguf" else card_from_config(path)
    raise UnknownModel(str(name), sorted(_cards()))


def _local(name) -> Path | None:
    """`name` as a local folder with a config.json or a .gguf file, else None."""
    try:
        path = Path(name).expanduser()
        if path.joinpath("config.json").is_file() or (path.suffix == ".gguf" and path.is_file()):
            return path
    except (OSError, RuntimeError):  # a name too long for a path, or ~user that does not exist
        pass
    return None


def _with_variant(c: ModelCard, variant: str) -> ModelCard:
    return replace(c, variant=variant) if variant != c.variant else c


def card_from_config(folder: Path) -> ModelCard:
    """A card for a local checkpoint, read from its config.json (params counted from the shapes)."""
    folder = Path(folder)
    try:
        cfg = json.loads((folder / "config.json").read_text())
        fields = config_fields(cfg)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise InvalidSetting(
            f"{folder / 'config.json'} is not a readable model config ({type(e).__name__}: {e}).",
            "Point at a Hugging Face checkpoint folder whose config.json names hidden_size, "
            "num_attention_heads, num_hidden_layers and vocab_size.",
        ) from None
    c = ModelCard(
        name=folder.name,
        display=folder.name,
        family=cfg.get("model_type", "local"),
        **fields,
        chat=(folder / "chat_template.jinja").exists()
        or "chat_template" in _tokenizer_config(folder),
        local_path=str(folder),
        source=f"config.json in {folder}",
        params=0,
        active_params=0,
    )
    return replace(c, params=count_params(c), active_params=count_params(c, active=True))


def card_from_gguf(path: Path) -> ModelCard:
    """A card for a local .gguf file, read from its metadata;
    params are its tensors' element count. Read once per file version (gguf's reader parses the
    whole vocabulary: seconds for a 49k-token one, and a load asks twice)."""
    try:
        st = Path(path).stat()
    except OSError:
        return _read_gguf_card(Path(path))  # says what is wrong with it
    return _cached_gguf_card(str(Path(path).absolute()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _cached_gguf_card(path: str, size: int, mtime_ns: int) -> ModelCard:
    return _read_gguf_card(Path(path))


def _read_gguf_card(path: Path) -> ModelCard:
    from gguf import GGUFReader

    try:
        r = GGUFReader(path)
    except (OSError, ValueError) as e:
        raise InvalidSetting(
            f"{path} is not a readable GGUF file ({e}).",
            "Pass a .gguf written by llama.cpp (or llamalab.convert_gguf).",
        ) from None
    meta = lambda key, default=None: r.fields[key].contents() if key in r.fields else default
    arch = meta("general.architecture")
    a = lambda key, default=None: meta(f"{arch}.{key}", default)
    hidden, heads = a("embedding_length"), a("attention.head_count")
    params = sum(int(t.n_elements) for t in r.tensors)
    vocab = a("vocab_size") or len(r.fields["tokenizer.ggml.tokens"].data)
    c = ModelCard(
        name=path.stem,
        display=meta("general.name", path.stem),
        family=arch,
        layers=a("block_count"),
        hidden=hidden,
        intermediate=a("feed_forward_length", 4 * hidden),
        heads=heads,
        kv_heads=a("attention.head_count_kv", heads),
        head_dim=a("attention.key_length", hidden // heads),
        vocab=vocab,
        context=a("context_length", 2048),
        tied_embeddings=not any(t.name == "output.weight" for t in r.tensors),
        experts=a("expert_count", 0),
        experts_active=a("expert_used_count", 0),
        chat="tokenizer.chat_template" in r.fields,
        local_path=str(path),
        source=f"GGUF metadata of {path}",
        params=params,
        active_params=params,
        gguf_type=_gguf_type(meta("general.file_type")),
    )
    if c.is_moe:
        c = replace(c, active_params=params * count_params(c, active=True) // count_params(c))
    return c


# llama.cpp's general.file_type (enum llama_ftype) → the catalog's scheme names.
GGUF_FILE_TYPES = {
    0: "f32",
    1: "f16",
    2: "q4_0",
    3: "q4_1",
    7: "q8_0",
    8: "q5_0",
    9: "q5_1",
    10: "q2_k",
    11: "q3_k_s",
    12: "q3_k_m",
    13: "q3_k_l",
    14: "q4_k_s",
    15: "q4_k_m",
    16: "q5_k_s",
    17: "q5_k_m",
    18: "q6_k",
    32: "bf16",
}


def _gguf_type(raw) -> str:
    return GGUF_FILE_TYPES.get(int(raw), f"ftype {raw}") if raw is not None else ""


def _tokenizer_config(folder: Path) -> dict:
    p = folder / "tokenizer_config.json"
    return json.loads(p.read_text()) if p.exists() else {}


@cache
def _schemes() -> dict[str, Scheme]:
    out = {}
    for s in read("schemes.toml")["scheme"]:
        s = dict(s)
        s["aliases"] = tuple(s.get("aliases", ()))
        out[s["name"]] = Scheme(**s)
    return out


# Short names a learner types; the aliases in schemes.toml say what each means.
SHORT_NAMES = {
    "gptq": "gptq-4bit",
    "awq": "awq-4bit",
    "gguf": "the weight type of the model's own GGUF file",
    "gguf-q4_k_m": "q4_k_m (gguf-<type> names any GGUF type)",
}


def scheme(name: str | Scheme, model: str | os.PathLike | ModelCard | None = None) -> Scheme:
    """Look a scheme up by name or short name (`gptq` means `gptq-4bit`, `gguf-q8_0` means `q8_0`).
    `gguf` means the weight type of `model`'s own GGUF file (the embedded model is a Q4_1 GGUF)."""
    if isinstance(name, Scheme):
        return name
    if not isinstance(name, str):
        raise InvalidSetting(
            f"scheme={name!r} is not a scheme name.",
            f"Pass one of: {', '.join(_schemes())} (short names: {', '.join(SHORT_NAMES)}).",
        )
    key = name.strip().lower()
    if key == "gguf":
        return _own_gguf(model)
    for known in (
        _schemes,
        _all_schemes,
    ):  # plugins are looked for only when the catalog has no such name
        for s in known().values():
            if key == s.name or key in s.aliases or (key == f"gguf-{s.name}" and s.is_gguf):
                return s
    raise UnknownScheme(name, list(_all_schemes()), SHORT_NAMES)


def _own_gguf(model) -> Scheme:
    c = card(model) if model is not None else None
    if c is None or not c.gguf_type:
        what = f"{c.name} has none" if c else "no model was given"
        raise InvalidSetting(
            f"scheme='gguf' means the weight type of the model's own GGUF file, and {what}.",
            "Name a GGUF type instead: "
            + ", ".join(n for n, s in _schemes().items() if s.is_gguf)
            + "; or load a .gguf file (or model='default', a Q4_1 GGUF) with scheme='gguf'.",
        )
    return scheme(c.gguf_type)


_plugins: dict[str, Scheme] = {}
_sources: list[Callable[[], dict[str, Scheme]]] = []


def register_scheme(s: Scheme) -> None:
    """Add a scheme a plugin brings (its backend serves it): `scheme()`, `schemes()` and
    `estimate()` see it."""
    _plugins[s.name] = s


def unregister_scheme(name: str) -> None:
    _plugins.pop(name, None)


def add_scheme_source(source: Callable[[], dict[str, Scheme]]) -> None:
    """A hook that finds plugin schemes on demand (the runtime's entry-point backends
    register one)."""
    _sources.append(source)


def _all_schemes() -> dict[str, Scheme]:
    """The catalog's schemes, then those plugins brought (registered, or found by a source hook)."""
    for source in _sources:
        for s in source().values():
            _plugins.setdefault(s.name, s)
    return {**_schemes(), **{n: s for n, s in _plugins.items() if n not in _schemes()}}


def scheme_names() -> list[str]:
    """Every scheme's name: schemes.toml's, in its order, then plugin schemes."""
    return list(_all_schemes())


def schemes() -> pd.DataFrame:
    """Every scheme (schemes.toml's, then plugin schemes) as a DataFrame: name, family, bits, bits
    per weight, rank, where it is quantized, help."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "name": s.name,
                "family": s.family,
                "bits": s.bits,
                "bits_per_weight": round(s.bits_per_weight(), 3),
                "rank": s.rank,
                "quantized_at": s.quantized_at,
                "aliases": ", ".join(s.aliases),
                "help": s.help,
            }
            for s in _all_schemes().values()
        ]
    )


@cache
def _gpus() -> dict[str, GPU]:
    out = {}
    for g in read("hardware.toml")["gpu"]:
        out[g["name"]] = GPU(
            name=g["name"],
            display=g["display"],
            memory_bytes=g["memory_mib"] * MiB,
            bandwidth_bytes_s=g["bandwidth_gb_s"] * 1e9,
            kind="gpu",
            bf16_tflops=g.get("bf16_tflops", 0.0),
            fp16_tflops=g.get("fp16_tflops", 0.0),
            cuda_capability=g.get("cuda_capability", ""),
            source=g.get("source", ""),
            memory_source=g["memory_source"],
        )
    return out


def gpu_names() -> list[str]:
    """Every catalog GPU's name, in the order of hardware.toml."""
    return list(_gpus())


def gpus() -> pd.DataFrame:
    """The catalog's GPUs as a DataFrame: name, display, memory, bandwidth, BF16 TFLOPS, source."""
    import pandas as pd

    return pd.DataFrame([asdict(g) for g in _gpus().values()])


def gpu(name: str) -> GPU:
    """A catalog GPU by name ('h100-80gb') or display name ('H100 80GB')."""
    if not isinstance(name, str):
        raise InvalidSetting(
            f"gpu={name!r} is not a GPU name.", f"Pass one of: {', '.join(_gpus())}."
        )
    key = name.strip().lower().replace(" ", "-")
    for g in _gpus().values():
        if key in (g.name, g.display.lower().replace(" ", "-")):
            return g
    raise UnknownHardware(name, list(_gpus()))


def model_names() -> list[str]:
    """Every catalog model's name, in the order of models.toml."""
    return list(_cards())


def osi_licenses() -> tuple[str, ...]:
    """The OSI-approved licences the catalog's models use (SPDX ids): a model is open source
    exactly when its licence is one of them; the others are open weights only."""
    return tuple(read("models.toml")["osi_licenses"])


def models() -> pd.DataFrame:
    """The catalog as a pandas DataFrame, one row per model: the landscape to query. Beside the
    card's fields: sizes in billions (`params_b`, `active_params_b`, what a token uses) and
    `moe` (a mixture of experts: all experts in memory, few read per token)."""
    import pandas as pd

    rows = []
    for c in _cards().values():
        d = c.to_dict()
        for k in ("gptq", "awq", "fp8", "aliases"):
            d[k] = ", ".join(d[k])
        d.pop("variant"), d.pop("local_path"), d.pop("gguf_type")
        d["params_b"] = round(c.params / 1e9, 2)
        d["active_params_b"] = round(c.active_params / 1e9, 2)
        d["moe"] = c.is_moe
        rows.append(d)
    return pd.DataFrame(rows)
