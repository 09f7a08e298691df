"""The ground floor: errors that say what to do, argument checks, settings with help text, the
metrics vocabulary, paths and atomic writes, this machine (hardware), the one memory probe (memory),
the one torch thread, and the one lifecycle for long work (tasks)."""
