"""First-use conversion of the embedded GGUF into a cache folder: complete, atomic, then reused."""

import pytest

from llamalab.runtime.files import embedded

pytestmark = pytest.mark.slow


def test_conversion_is_atomic_and_happens_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLAMALAB_CACHE", str(tmp_path))
    assert not embedded.is_converted()
    path = embedded.ensure_model()
    assert path == tmp_path / embedded.NAME and embedded.is_converted()
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= {
        p.name for p in path.iterdir()
    }
    assert "converting the embedded model once" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == [embedded.NAME]  # no temp folder left behind
    mtime = (path / "model.safetensors").stat().st_mtime
    assert embedded.ensure_model() == path and (path / "model.safetensors").stat().st_mtime == mtime
    assert capsys.readouterr().err == ""


def test_a_failed_conversion_says_why_and_leaves_nothing(tmp_path, monkeypatch):
    """The conversion runs in a child process (its ~1.2 GB never stays in the caller's kernel);
    its error comes back."""
    bogus = tmp_path / "src" / "broken.gguf"
    bogus.parent.mkdir()
    bogus.write_bytes(b"not a gguf")
    cache = tmp_path / "cache"
    monkeypatch.setenv("LLAMALAB_CACHE", str(cache))
    monkeypatch.setattr(embedded, "gguf_path", lambda: bogus)
    monkeypatch.setattr(embedded, "_check_sha256", lambda path: None)
    with pytest.raises(embedded.ModelNotCached, match="converting broken.gguf failed") as err:
        embedded.ensure_model(verbose=False)
    assert "memory" in str(err.value) and not embedded.is_converted()
    assert not cache.exists() or list(cache.iterdir()) == []
