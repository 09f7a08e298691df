"""DeploymentBuilder: artefacts follow the controls at once;
serve-and-load-test runs a real server."""

import pytest

pytest.importorskip("ipywidgets")


def test_artefacts_follow_the_controls_and_errors_show_inline():
    from llamalab.widgets import DeploymentBuilder

    b = DeploymentBuilder(model="llama-3.1-70b", scheme="bf16", gpu="h100-80gb", context=8192)
    assert b.plan.tensor_parallel == 2 and "--tensor-parallel-size 2" in b.artefacts.value
    b.scheme.value = "awq-4bit"
    assert b.plan.gpus == 1 and "AWQ-INT4" in b.artefacts.value  # the published checkpoint
    b.target.value = "Kubernetes"
    assert "kind: Deployment" in b.artefacts.value
    b.target.value = "Ollama"
    assert "PARAMETER stop" in b.artefacts.value and "ollama create" in b.artefacts.value
    b.target.value = "cloud"
    assert "api.together.xyz" in b.artefacts.value
    b.model.value, b.gpu.value = "llama-3.1-405b", "t4"
    b.scheme.value = "fp32"  # 405B in fp32 on T4s: more than 8 nodes of 8
    assert "fits on" in b.errors.value


@pytest.mark.slow
@pytest.mark.server
def test_serve_and_load_test_from_the_widget():
    from llamalab import LoadTestSettings, ServeSettings
    from llamalab.widgets import DeploymentBuilder

    b = DeploymentBuilder(
        serve=ServeSettings(parallel=4, context=256, threads=1),
        load_test=LoadTestSettings(concurrency=(1, 4), requests=4, max_new_tokens=8),
    )
    b.serve_and_test(wait=True)
    assert not b.errors.message, b.errors.message
    assert len(b.result.records) == 8 and b.result.records["ok"].all()
    assert len(b.figure.data[1].x) == 2 and "server stopped" in b.status.value
