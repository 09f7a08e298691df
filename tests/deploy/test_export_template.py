"""Exports checked for what breaks them in practice: the GGUF's chat template and stop tokens, a
served answer's end, and the Ollama Modelfile, each against the source tokenizer. The kit's own
export of the embedded model passes; copies rewritten on purpose (gguf-py's writer) are refused
with the difference named."""

import json

import pytest

import llamalab
from llamalab.plan import gotemplate, ollama
from llamalab.serving.template_check import (
    CONVERSATIONS,
    ExportMismatch,
    check_modelfile,
    check_template,
)

pytestmark = pytest.mark.slow
PIRATE = "You are a pirate. Answer like one."


@pytest.fixture(scope="module")
def exported():
    """The kit's Q4_K_M export of the embedded model (cached in LLAMALAB_CACHE)."""
    pytest.importorskip(
        "llama_cpp", reason='the llamacpp extra is not installed: pip install -e ".[llamacpp]"'
    )
    return llamalab.export_gguf("default", "q4_k_m", check=False, verbose=False).path


@pytest.fixture(scope="module")
def rewritten(exported, tmp_path_factory):
    """`rewritten(name, key=value, ...)` → a copy of the export with those metadata keys changed
    (None removes one), written once per name by gguf-py's own copy routine."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    folder, made = tmp_path_factory.mktemp("rewritten"), {}
    reader = gguf.GGUFReader(exported)  # parsed once: it reads the whole vocabulary

    def make(name: str, **changes):
        if name not in made:
            arch = reader.fields["general.architecture"].contents()
            out = folder / f"{name}.gguf"
            writer = gguf.GGUFWriter(out, arch=arch, endianess=reader.endianess)
            keys = {k.replace("__", "."): v for k, v in changes.items()}
            new = {
                k: MetadataDetails(reader.fields[k].types[0], v)
                for k, v in keys.items()
                if v is not None
            }
            copy_with_new_metadata(reader, writer, new, [k for k, v in keys.items() if v is None])
            made[name] = out
        return made[name]

    yield make
    for path in made.values():
        path.unlink(missing_ok=True)


def _source_template() -> str:
    return (llamalab.model_files("default") / "chat_template.jinja").read_text()


def test_the_kits_export_of_the_embedded_model_passes(exported):
    check = check_template(exported, "default")
    assert check.renders == 2 * len(CONVERSATIONS)  # each with and without the generation prompt
    assert check.prompt_tokens > 100  # every render compared token by token as well
    assert check.end_of_turn == ("<|im_end|>",) and check.eos == "<|im_end|>"
    assert check.add_bos is False


def test_a_changed_chat_template_is_refused_with_the_conversation_and_text_named(rewritten):
    template = _source_template().replace(
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face", PIRATE
    )
    assert PIRATE in template
    doctored = rewritten("pirate", tokenizer__chat_template=template)
    with pytest.raises(ExportMismatch) as err:
        check_template(doctored, "default")
    text = "\n".join(err.value.differences)
    # only the conversations without a system turn get the template's default system prompt
    assert "user alone, with the generation prompt" in text and "multi-turn" in text
    assert "system + user" not in text
    assert "You are a pirate" in text and "You are a helpful" in text
    at = len("<|im_start|>system\nYou are a ")  # where "pirate" and "helpful" part
    assert f"differently from character {at}:" in text


def test_a_changed_eos_token_is_refused_with_both_tokens_named(rewritten):
    doctored = rewritten("eos0", tokenizer__ggml__eos_token_id=0)
    with pytest.raises(ExportMismatch) as err:
        check_template(doctored, "default")
    assert err.value.differences == [
        "tokenizer.ggml.eos_token_id is '<|endoftext|>' (id 0); the source ends its turns with "
        "'<|im_end|>' (id 2)"
    ]
    assert "gguf_set_metadata.py" in err.value.fix


def test_the_export_check_refuses_a_mismatching_file_before_measuring_it(rewritten):
    from llamalab.serving.export import check_export

    doctored = rewritten("eos0", tokenizer__ggml__eos_token_id=0)
    with pytest.raises(ExportMismatch, match="eos0.gguf does not match its source"):
        check_export("default", doctored)
    assert doctored.is_file()  # refused, not removed: the user can inspect or repair it


def test_a_stale_template_in_tokenizer_config_is_caught_in_the_kits_own_export(tmp_path):
    """transformers reads chat_template.jinja first, llama.cpp's converter tokenizer_config.json's
    chat_template (gguf-py vocab.py): a folder holding both, differing, exports a GGUF whose
    template is not the one the model was trained with."""
    from llamalab.runtime.files.gguf import output_path

    src, folder = llamalab.model_files("default"), tmp_path / "stale-template"
    folder.mkdir()
    for f in src.iterdir():
        (folder / f.name).symlink_to(f)
    (folder / "tokenizer_config.json").unlink()
    config = json.loads((src / "tokenizer_config.json").read_text())
    config["chat_template"] = _source_template().replace(
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face", PIRATE
    )
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    try:
        with pytest.raises(ExportMismatch, match="user alone, with the generation prompt"):
            llamalab.export_gguf(folder, "q8_0", verbose=False)
    finally:
        made = output_path(folder, "q8_0")
        for path in (made, made.with_name(made.name + ".llamalab.json")):
            path.unlink(missing_ok=True)


def test_a_gguf_without_a_chat_template_is_refused(rewritten):
    doctored = rewritten("no-template", tokenizer__chat_template=None)
    with pytest.raises(ExportMismatch, match="has no tokenizer.chat_template"):
        check_template(doctored, "default")


def test_the_kits_modelfile_renders_as_the_source_and_stops_on_its_end_of_turn(exported):
    mf = llamalab.ollama_modelfile(f"./{exported.name}", _source_template(), num_ctx=2048)
    check = check_modelfile(mf, "default")
    assert check.renders == len(CONVERSATIONS)
    assert "<|im_end|>" in check.stop


def test_a_modelfile_with_a_wrong_stop_or_template_is_refused_with_the_difference_named():
    mf = llamalab.ollama_modelfile("./m.gguf", _source_template(), num_ctx=2048)
    wrong_stop = mf.replace('PARAMETER stop "<|im_end|>"', 'PARAMETER stop "</s>"')
    with pytest.raises(ExportMismatch) as err:
        check_modelfile(wrong_stop, "default")
    assert err.value.differences == [
        "end-of-turn token '<|im_end|>' (id 2) is not a PARAMETER stop",
        "PARAMETER stop '</s>' is not a special token of the source: it would cut answers",
    ]
    llama3 = ollama.modelfile("./m.gguf", family="llama", num_ctx=2048)
    with pytest.raises(ExportMismatch) as err:
        check_modelfile(llama3, "default")
    first = err.value.differences[0]
    assert first.startswith("system + user: TEMPLATE renders differently from character 2")
    assert "<|start_header_id|>" in first and "<|im_start|>" in first


@pytest.mark.server
def test_a_served_answer_stops_where_the_in_process_one_stops(server):
    from llamalab.serving.stop_check import check_served_stop

    check = check_served_stop(server, "default")
    assert check.conversations == len(CONVERSATIONS)
    for row in check.answers:
        assert row["served_finish"] == row["in_process_finish"] == "stop", row
        assert row["served_prompt_tokens"] == row["in_process_prompt_tokens"], row
        assert "<|im_end|>" not in row["served"] and row["served"], row


@pytest.mark.server
def test_a_served_gguf_with_a_changed_template_is_refused(rewritten):
    from llamalab.serving.stop_check import check_served_stop

    template = _source_template().replace(
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face", PIRATE
    )
    doctored = rewritten("pirate", tokenizer__chat_template=template)
    one = [c for c in CONVERSATIONS if c[0] == "user alone"]
    with pytest.raises(ExportMismatch, match="user alone: the server's prompt is"):
        check_served_stop(doctored, "default", max_new_tokens=16, conversations=one)


def test_the_go_template_subset_renders_as_go_does_and_refuses_the_rest():
    data = {
        "System": "Be brief.",
        "Messages": [{"Role": "user", "Content": "Hi"}, {"Role": "assistant", "Content": "Yo"}],
    }
    t = (
        "{{- if .System }}[{{ .System }}]{{ end }}\n  {{- range $i, $m := .Messages }}"
        '{{ $i }}:{{ if eq $m.Role "user" }}U{{ else if eq .Role "assistant" }}A{{ end }}'
        "{{ if and $.System (eq (len (slice $.Messages $i)) 1) }}!{{ end }} {{- end }}"
    )
    assert gotemplate.render(t, data) == "[Be brief.]0:U1:A!"
    assert (
        gotemplate.render(
            '{{ $x := "a" }}{{ range .Messages }}{{ $x = .Role }}{{ end }}{{ $x }}', data
        )
        == "assistant"
    )
    for bad in (
        "{{ with .System }}x{{ end }}",
        "{{ .System | printf }}",
        "{{ .Missing }}",
        "{{ if .System }}",
    ):
        with pytest.raises(gotemplate.GoTemplateUnsupported):
            gotemplate.render(bad, data)
