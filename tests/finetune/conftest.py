import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny random Llama (2 layers, hidden 64)
    with the embedded model's tokenizer and chat template."""
    from llamalab.core import torch_thread
    from llamalab.runtime.files import embedded

    def build():
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        cfg = LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=49152,
            max_position_embeddings=512,
            tie_word_embeddings=True,
            bos_token_id=1,
            eos_token_id=2,
            initializer_range=0.3,
        )  # large enough logits for adapters to move the loss fast
        return LlamaForCausalLM(cfg)

    out = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    torch_thread.run(lambda: build().save_pretrained(str(out)))
    src = embedded.ensure_model(verbose=False)  # the embedded model's tokenizer files
    for f in src.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "generation_config")):
            shutil.copy(f, out / f.name)
    return out


@pytest.fixture
def tiny(tiny_dir):
    import llamalab

    m = llamalab.load(str(tiny_dir), "fp32", device="cpu")
    yield m
    m.unload()
