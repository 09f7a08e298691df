"""A LoRA run, merged and checked, exported to GGUF: the file carries the adapter's change,
not the base."""

import pytest

import llamalab
from llamalab.serving.export import check_export, export_gguf

pytestmark = pytest.mark.slow


def test_a_merged_lora_exports_to_a_gguf_that_matches_the_merge_not_the_base(tmp_path):
    pytest.importorskip(
        "peft", reason='the finetune extra is not installed: pip install -e ".[finetune]"'
    )
    pytest.importorskip(
        "llama_cpp", reason='the llamacpp extra is not installed: pip install -e ".[llamacpp]"'
    )
    run = llamalab.finetune(
        "default",
        method="lora",
        steps=8,
        batch=4,
        target_modules="all-linear",
        output=tmp_path / "run",
    ).wait()
    report = run.merge(output=tmp_path / "merged")
    assert report.passed and report.merged_dir

    short = dict(prompts=("What is the capital of France?",), max_new_tokens=8, tokens=96)
    export = export_gguf(
        report.merged_dir, "q8_0", output=tmp_path / "merged-q8_0.gguf", verbose=False, **short
    )
    assert export.path.is_file() and export.check is not None
    vs_merge = export.check
    # the merge kept the base's chat template and end of turn, and the export checked them
    assert vs_merge.template is not None and vs_merge.template.eos == "<|im_end|>"
    vs_base = check_export("default", export.path, **short)
    # Q8_0 of the merged weights stays close to them;
    # the base model is measurably further from the file.
    assert vs_merge.top1_agreement >= 0.9 and vs_merge.kl_mean < 0.05, vs_merge.to_dict()
    assert vs_base.kl_mean > 3 * vs_merge.kl_mean, (vs_base.to_dict(), vs_merge.to_dict())
