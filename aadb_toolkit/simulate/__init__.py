"""A synthetic AADB release generator: a TEST INSTRUMENT, never AADB itself.

:func:`simulate` writes a release in exactly the real format (docs/curation.md, "Input: the release") from a documented
generative model (docs/synthetic.md) and writes the planted truth beside it, so that curation,
consistency analysis and the models can be checked against what was planted.
"""

from ._generate import SimulationResult, simulate, truth_dir_for
from ._raters import AssignmentPlan, sample_assignment_plan

__all__ = ["AssignmentPlan", "SimulationResult", "sample_assignment_plan", "simulate", "truth_dir_for"]
