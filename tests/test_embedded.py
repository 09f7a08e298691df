"""First-use conversion of the embedded GGUF into a cache folder: complete, atomic, then reused."""
import pytest

from llamalab import embedded

pytestmark = pytest.mark.slow


def test_conversion_is_atomic_and_happens_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLAMALAB_CACHE", str(tmp_path))
    assert not embedded.is_converted()
    path = embedded.ensure_model()
    assert path == tmp_path / embedded.NAME and embedded.is_converted()
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= \
        {p.name for p in path.iterdir()}
    assert "converting the embedded model once" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == [embedded.NAME]       # no temp folder left behind
    mtime = (path / "model.safetensors").stat().st_mtime
    assert embedded.ensure_model() == path and (path / "model.safetensors").stat().st_mtime == mtime
    assert capsys.readouterr().err == ""
