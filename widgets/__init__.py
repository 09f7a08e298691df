"""llamalab.widgets: Jupyter widgets that learners drive. Composition and wiring only: every number
comes from the library (`llamalab.estimate`, `load`, `generate`, `Monitor`), long work runs in a
worker thread so Stop stays clickable, and library errors show inline with their fix,
never as a traceback.

    from llamalab.widgets import ModelPicker, Playground, LiveMonitor, MemoryCalculator, Arena
    from llamalab.widgets import TrainerPanel, DeploymentBuilder, CostCalculator, TokenInspector
    from llamalab.widgets import BlindArena, EvaluationPanel
"""

from .arena import Arena
from .blind_arena import BlindArena
from .calculator import MemoryCalculator
from .cost import CostCalculator
from .deploy import DeploymentBuilder
from .evaluation import EvaluationPanel
from .inspector import TokenInspector
from .monitor import LiveMonitor
from .picker import ModelPicker
from .playground import Playground
from .trainer import TrainerPanel

__all__ = [
    "Arena",
    "BlindArena",
    "CostCalculator",
    "DeploymentBuilder",
    "EvaluationPanel",
    "LiveMonitor",
    "MemoryCalculator",
    "ModelPicker",
    "Playground",
    "TokenInspector",
    "TrainerPanel",
]
