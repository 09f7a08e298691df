"""GGUF files: written with llama.cpp's own tools when `load()` is asked for a GGUF type that is not
on disk yet (the resolver says NeedsConversion; public as `llamalab.convert_gguf`), and the Hugging
Face tokenizer that goes with one (the kit feeds llama.cpp token ids from it, so every engine sees
the same prompt).

llama.cpp's converter (`convert_hf_to_gguf.py`) writes F16 and Q8_0; other types
(k-quants, Q4_0/Q4_1) come from that F16 file through `llama_model_quantize`, the library call
behind `llama-quantize`.

The converter ships only in the llama-cpp-python *sdist* (vendor/llama.cpp); `ensure_converter()`
extracts it once into LLAMALAB_CACHE, from a local sdist or one fetched with `pip download`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from ... import catalog
from ...core.errors import BackendMissing, InvalidSetting, LlamalabError
from ...core.paths import atomic_dir, atomic_file, cached, writable
from . import embedded
from .source import resolve
from .store import model_fingerprint

SIDECAR = ".llamalab.json"  # written beside the kit's GGUFs: {"tokenizer": "<HF folder>"}

OUTTYPES = ("q8_0", "f16")  # what convert_hf_to_gguf.py writes that the catalog has a scheme for
QUANTIZED = (
    "q6_k",
    "q5_k_m",
    "q4_k_m",
    "q4_1",
    "q4_0",
)  # made from the F16 file by llama_model_quantize
WRITABLE = OUTTYPES + QUANTIZED
SCRIPTS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py")  # a model; a peft adapter
PARTS = (*SCRIPTS, "conversion/", "gguf-py/")


def _version() -> str:
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        from ..backends.gguf import INSTALL

        raise BackendMissing(
            "llama-cpp-python", INSTALL, "the GGUF converter must match the installed llama.cpp"
        ) from None


def converter_dir(script: str = SCRIPTS[0]) -> Path:
    """The extracted converter's folder: the shared cache's if it holds `script`, else the
    writable cache's."""
    return cached(f"llama.cpp-converter/{_version()}", done=lambda t: (t / script).is_file())


def ensure_converter(sdist: str | None = None, script: str = SCRIPTS[0]) -> Path:
    """The folder holding llama.cpp's SCRIPTS; extracted from the llama-cpp-python sdist on first
    use (again if `script`, the one needed now, is missing: an older extraction lacked
    convert_lora_to_gguf.py). `sdist` (or $LLAMALAB_LLAMACPP_SDIST) names a local .tar.gz;
    otherwise pip downloads it (~77 MB)."""
    target = converter_dir(script)
    if (target / script).is_file():
        return target
    target = writable(target)  # an older extraction in the shared cache stays as it is
    complete = lambda t: all((t / name).is_file() for name in SCRIPTS)
    version = _version()
    with (
        atomic_dir(target, done=complete, replace=True) as tmp,
        tempfile.TemporaryDirectory(prefix=".sdist-", dir=target.parent) as download,
    ):
        archive = (
            sdist or os.environ.get("LLAMALAB_LLAMACPP_SDIST") or _download(version, Path(download))
        )
        _extract(Path(archive), tmp)
    return target


def _download(version: str, into: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "-q",
        f"llama-cpp-python=={version}",
        "-d",
        str(into),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    found = list(into.glob("llama_cpp_python-*.tar.gz"))
    if r.returncode or not found:
        raise LlamalabError(
            f"Could not fetch the llama-cpp-python {version} sdist (it holds llama.cpp's "
            f"converter): {r.stderr.strip()[-300:]}",
            "Run it online once, or pass ensure_converter(sdist='path/to/llama_cpp_python-"
            f"{version}.tar.gz') / set LLAMALAB_LLAMACPP_SDIST.",
        )
    return found[0]


def _extract(archive: Path, out: Path) -> None:
    """Copy PARTS (the SCRIPTS, conversion/ and gguf-py/) out of the sdist's vendor/llama.cpp."""
    with tarfile.open(archive) as tar:
        members = []
        for m in tar.getmembers():
            rel = m.name.split("/vendor/llama.cpp/", 1)
            if len(rel) == 2 and rel[1].startswith(PARTS) and (m.isfile() or m.isdir()):
                m.name = rel[1]
                members.append(m)
        if not any(m.name == "convert_hf_to_gguf.py" for m in members):
            raise LlamalabError(
                f"{archive} has no vendor/llama.cpp/convert_hf_to_gguf.py.",
                "Pass the llama-cpp-python source distribution (.tar.gz).",
            )
        tar.extractall(out, members=members, filter="data")


def output_path(source: Path, outtype: str) -> Path:
    """The GGUF of `source` as `outtype`: the shared cache's when built there, else the writable
    cache's (where convert() writes it)."""
    fp = hashlib.sha256(model_fingerprint(source).encode()).hexdigest()[:10]
    return cached(f"gguf/{Path(source).name}-{fp}-{_version()}-{outtype}.gguf", Path.is_file)


def convert(
    model="default", outtype: str = "q8_0", force: bool = False, verbose: bool = True
) -> Path:
    """Write `model` as a GGUF of `outtype` (see WRITABLE) with llama.cpp's own tools; cached."""
    outtype = outtype.lower() if isinstance(outtype, str) else outtype
    if outtype not in WRITABLE:
        raise InvalidSetting(
            f"The kit cannot write GGUF {str(outtype).upper()}.",
            f"It writes {', '.join(WRITABLE)}; for other types run llama.cpp's llama-quantize and "
            "put the file (its name containing the type) in the model's folder.",
        )
    source = Path(resolve(model, catalog.card(model), catalog.scheme("bf16")))
    out = output_path(source, outtype)
    if out.is_file() and not force:
        return out
    out = writable(out)
    if outtype in OUTTYPES:
        _run_converter(source, outtype, out, verbose)
    else:
        _run_quantize(convert(model, "f16", verbose=verbose), outtype, out, verbose)
    Path(str(out) + SIDECAR).write_text(json.dumps({"tokenizer": str(source), "outtype": outtype}))
    return out


def quantize_file(f16: Path, outtype: str, verbose: bool = True) -> Path:
    """A GGUF of `outtype` (a k-quant, Q4_0/Q4_1 or Q8_0) made from the F16 GGUF `f16` by
    llama_model_quantize, written once beside it (named as it, `-f16` becoming `-<outtype>`), its
    tokenizer sidecar copied."""
    f16 = Path(f16)
    if outtype not in (*QUANTIZED, "q8_0"):
        raise InvalidSetting(
            f"llama_model_quantize writes {', '.join((*QUANTIZED, 'q8_0'))}, not {outtype}.",
            "Pick one of those.",
        )
    out = f16.with_name(
        f16.name.removesuffix("-f16.gguf").removesuffix(".gguf") + f"-{outtype}.gguf"
    )
    if not out.is_file():
        out = writable(out)  # beside a shared F16: into the same place in the writable cache
        if not out.is_file():
            _run_quantize(f16, outtype, out, verbose)
    sidecar = Path(str(f16) + SIDECAR)
    if sidecar.is_file() and writable(out) == out:
        Path(str(out) + SIDECAR).write_text(sidecar.read_text())
    return out


def _run_quantize(f16: Path, outtype: str, out: Path, verbose: bool) -> None:
    """llama_model_quantize in a subprocess: its per-tensor log stays out of the notebook, and the
    summary (size, and how many tensors needed a fallback type) is shown."""
    t0 = time.perf_counter()
    r = _write_atomically(
        out,
        lambda tmp: [sys.executable, "-m", __name__, str(f16), str(tmp), outtype],
        f"llama_model_quantize to {outtype.upper()}",
        "Check that llama-cpp-python imports, and that the F16 file loads with scheme='f16'.",
    )
    if verbose:
        summary = [
            x.split(": ", 1)[-1]
            for x in (r.stdout + r.stderr).splitlines()
            if x.startswith("llama_model_quantize_impl:") and ("quant size" in x or "fallback" in x)
        ]
        print(
            f"llamalab: {out.name} ready in {time.perf_counter() - t0:.1f} s · "
            + " · ".join(summary),
            file=sys.stderr,
            flush=True,
        )


def _quantize_main(src: str, dst: str, outtype: str) -> int:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = next(k for k, v in catalog.GGUF_FILE_TYPES.items() if v == outtype)
    params.nthread = 0  # llama.cpp's default: every core
    return llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)


def run_script(script: str, args: list[str], out: Path, fix: str) -> None:
    """Run one of llama.cpp's converter SCRIPTS (its own gguf-py first on the path) with `args`,
    writing `out` atomically (a failure says `fix` and leaves nothing)."""
    conv = ensure_converter(script=script)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(conv / "gguf-py"), str(conv)])}
    _write_atomically(
        out,
        lambda tmp: [sys.executable, str(conv / script), *args, "--outfile", str(tmp)],
        script,
        fix,
        env,
    )


def _run_converter(source: Path, outtype: str, out: Path, verbose: bool) -> None:
    from ..backends import require

    require(
        "sentencepiece", "pip install sentencepiece", "llama.cpp's convert_hf_to_gguf.py imports it"
    )
    t0 = time.perf_counter()
    if verbose:
        print(
            f"llamalab: converting {source.name} to GGUF {outtype.upper()} with llama.cpp's "
            "converter (~20 s)…",
            file=sys.stderr,
            flush=True,
        )
    run_script(
        "convert_hf_to_gguf.py",
        [str(source), "--outtype", outtype],
        out,
        "Check the model is a supported architecture (llama.cpp's converter list).",
    )
    if verbose:
        print(
            f"llamalab: {out.name} ready in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
            flush=True,
        )


def _write_atomically(
    out: Path, command, what: str, fix: str, env=None
) -> subprocess.CompletedProcess:
    """Run `command(tmp)`, which writes a temp file beside `out`; it becomes `out` only
    if it succeeded."""
    with atomic_file(out) as tmp:
        r = subprocess.run(command(tmp), capture_output=True, text=True, env=env)
        if r.returncode or not tmp.is_file():
            raise LlamalabError(f"{what} failed:\n{(r.stderr + r.stdout).strip()[-1500:]}", fix)
    return r


def tokenizer_for(path: Path, tokenizer=None):
    """The HF tokenizer for a GGUF: given, named in the sidecar, or built from the GGUF itself."""
    from transformers import AutoTokenizer

    if tokenizer is not None and not isinstance(tokenizer, (str, Path)):
        return tokenizer
    folder = tokenizer
    sidecar = Path(str(path) + SIDECAR)
    if folder is None and sidecar.is_file():
        folder = json.loads(sidecar.read_text()).get("tokenizer")
        if folder and not Path(folder).is_absolute():  # a bundle's copy: relative to the GGUF
            folder = path.parent / folder
    if folder is None:
        folder = _embedded_folder(path) or _tokenizer_from_gguf(path)
    return AutoTokenizer.from_pretrained(str(folder))


def _embedded_folder(path: Path) -> str | None:
    try:
        if path.resolve() == embedded.gguf_path().resolve():
            return str(embedded.ensure_model())
    except Exception:
        return None
    return None


def _tokenizer_from_gguf(path: Path) -> str:
    """transformers can rebuild the HF tokenizer from GGUF metadata; done once, in a subprocess, and
    saved to the cache (in-process it left llama.cpp decoding ~100× slower here, cause not
    found)."""
    import hashlib
    import subprocess
    import sys

    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[
        :16
    ]
    done = lambda p: (p / "tokenizer_config.json").is_file()
    out = cached(f"gguf-tokenizers/{key}", done)
    if not done(out):
        code = (
            "import sys; from transformers import AutoTokenizer; "
            "AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2])"
            ".save_pretrained(sys.argv[3])"
        )
        with atomic_dir(out, done=done) as tmp:
            r = subprocess.run(
                [sys.executable, "-c", code, str(path.parent), path.name, str(tmp)],
                capture_output=True,
                text=True,
            )
            if r.returncode:
                raise InvalidSetting(
                    f"Could not build a tokenizer from {path.name}: {r.stderr.strip()[-400:]}",
                    "Pass tokenizer='<folder with the HF tokenizer files>'.",
                )
    return str(out)


if __name__ == "__main__":
    sys.exit(_quantize_main(*sys.argv[1:4]))
