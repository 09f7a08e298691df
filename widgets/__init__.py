"""llamalab.widgets: Jupyter widgets that learners drive. Composition and wiring only: every number
comes from the library (`llamalab.estimate`, `load`, `generate`, `Monitor`), long work runs in a worker
thread so Stop stays clickable, and library errors show inline with their fix, never as a traceback.

    from llamalab.widgets import ModelPicker, Playground, LiveMonitor, MemoryCalculator, Arena
"""
from .arena import Arena
from .calculator import MemoryCalculator
from .monitor import LiveMonitor
from .picker import ModelPicker
from .playground import Playground
# --- fine-tuning (issue 8) ---
# --- end fine-tuning ---
# --- deployment (issue 9) ---
# --- end deployment ---
# --- course (issue 10) ---
# --- end course ---

__all__ = ["Arena", "LiveMonitor", "MemoryCalculator", "ModelPicker", "Playground"]
