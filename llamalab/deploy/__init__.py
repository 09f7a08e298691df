"""Deployment: export, serve, query and load-test; artefacts sized by the calculator (issue 9)."""
