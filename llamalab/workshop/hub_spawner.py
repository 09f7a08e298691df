"""The room hub's spawner (JupyterHub imports it by name from the config `serve_hub()` writes):
each learner's Jupyter server in a cgroup of its own whose memory and CPU limits the kernel
enforces, with the shared model cache mounted read-only (LLAMALAB_SHARED_CACHE) and a writable cache
of the learner's own in their folder (LLAMALAB_CACHE), without a system account. Learners share the
hub's uid: as with SimpleLocalProcessSpawner, they can read each other's folders.

Built on JupyterHub's SimpleLocalProcessSpawner (jupyterhub/spawner.py), which alone enforces no
limits and runs everyone as the hub's user.
"""

from __future__ import annotations

import os

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import List, Unicode

from .cgroups import CgroupError, LimitedGroup, existing_group, limited_group
from .sandbox import read_only


class RoomSpawner(SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner + a cgroup per learner (mem_limit, cpu_limit enforced) + read-only
    paths."""

    group_prefix = Unicode(
        "llamalab-hub",
        config=True,
        help="Folder of the learners' cgroups under the hub's own (one child group per learner).",
    )
    read_only_paths = List(
        Unicode(),
        config=True,
        help="Folders a learner's processes see read-only (the shared model cache).",
    )

    learner_cache = Unicode(
        ".cache/llamalab",
        config=True,
        help="The learner's writable cache (LLAMALAB_CACHE), relative to their folder.",
    )

    def get_env(self):
        """JupyterHub's environment, plus LLAMALAB_CACHE in the learner's own folder (new files go
        there; what is built already is read from the shared cache)."""
        env = super().get_env()
        env["LLAMALAB_CACHE"] = os.path.join(self.home_dir, self.learner_cache)
        return env

    def group_name(self) -> str:
        return f"{self.group_prefix}/{self.user.name}"

    async def start(self):
        if not self.mem_limit or not self.cpu_limit:
            raise CgroupError(
                "The room hub's spawner needs both mem_limit and cpu_limit.",
                "Set c.Spawner.mem_limit (e.g. '2G') and c.Spawner.cpu_limit (e.g. 1.0).",
            )
        self.group = limited_group(self.group_name(), int(self.mem_limit), float(self.cpu_limit))
        return await super().start()

    def make_preexec_fn(self, name):
        group, home = self.group, self.home_dir
        frozen = list(self.read_only_paths)

        def preexec():  # in the child, before exec: its children inherit all of it
            group.add(os.getpid())
            for path in frozen:
                read_only(path)
            os.makedirs(home, 0o700, exist_ok=True)
            os.chdir(home)

        return preexec

    async def stop(self, now=False):
        await super().stop(now=now)
        group: LimitedGroup = getattr(self, "group", None) or existing_group(self.group_name())
        group.remove()  # kernels the server left behind: they are in its group
