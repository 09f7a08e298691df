"""Deployment: export, serve, query and load-test; artefacts sized by the calculator (issue 9).

    llamalab.export_gguf("default", "q4_k_m")          # llama.cpp's converter + a measured check
    with llamalab.serve("default") as server:          # llama.cpp's native server on 127.0.0.1, with a key
        server.endpoint.generate("Hi")                 # the OpenAI-compatible client (llamalab.Endpoint)
        llamalab.load_test(server, prompts, concurrency=[1, 2, 4, 8])
    llamalab.deploy.plan("llama-3.1-70b", "bf16", "h100-80gb")   # vLLM / Docker / Kubernetes / Ollama text

Importing this package imports neither torch nor the server; each function imports what it needs.
"""
from ..runtime.endpoint import Endpoint
from .export import Export, ExportCheck, export_gguf
from .loadtest import SLO, LoadTestResult, agreement, load_test
from .plan import (
           DeploymentPlan,
           Manifest,
           PlanDoesNotFit,
           plan,
           provider,
           providers,
           validate_manifests,
)
from .server import Server, ServerFailed, serve

__all__ = [
           "SLO",
           "DeploymentPlan",
           "Endpoint",
           "Export",
           "ExportCheck",
           "LoadTestResult",
           "Manifest",
           "PlanDoesNotFit",
           "Server",
           "ServerFailed",
           "agreement",
           "export_gguf",
           "load_test",
           "plan",
           "provider",
           "providers",
           "serve",
           "validate_manifests",
]
