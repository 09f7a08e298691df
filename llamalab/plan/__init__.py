"""Pure arithmetic over the catalog, no torch and no processes: the memory estimate (estimator), one
GPU type's answers (sizing), cost at scale (cost), and the deployment artefacts a team applies
(deployment, kubernetes, ollama)."""
