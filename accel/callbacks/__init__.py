"""Lightning callbacks that measure what the chapters discuss, one module each."""
from .accuracy_probe import AccuracyProbe
from .agc import AdaptiveGradientClipping, unitwise_clip
from .batch_size import BatchSizeSchedule, batch_size_at
from .curvature import TopHessianEigenvalue, edge_of_stability
from .dead_units import DeadUnitMonitor, dead_fractions
from .divergence_guard import DivergenceError, DivergenceGuard
from .grad_norm import GradNormMonitor, layer_grad_norms, total_grad_norm
from .history import History, StepHistory
from .landscape import LandscapeProbe, probe_landscape
from .schedule_free import ScheduleFreeMode
from .step_size import StepSizeMonitor
from .trust_ratio import TrustRatioMonitor, lars_local_lr, trust_ratio_table

__all__ = ["AccuracyProbe", "AdaptiveGradientClipping", "unitwise_clip", "BatchSizeSchedule", "batch_size_at",
           "TopHessianEigenvalue", "edge_of_stability", "DeadUnitMonitor", "dead_fractions",
           "DivergenceError", "DivergenceGuard", "GradNormMonitor", "layer_grad_norms",
           "total_grad_norm", "History", "StepHistory", "LandscapeProbe", "probe_landscape", "StepSizeMonitor",
           "TrustRatioMonitor", "lars_local_lr", "trust_ratio_table"]
__all__ += ["ScheduleFreeMode"]
