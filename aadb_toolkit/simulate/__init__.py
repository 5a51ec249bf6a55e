"""Synthetic AADB releases and synthetic AVA folders: TEST INSTRUMENTS, never AADB or AVA themselves.

:func:`simulate` writes a release in exactly the real format (docs/curation.md, "Input: the release") from a documented
generative model (docs/synthetic.md) and writes the planted truth beside it, so that curation,
consistency analysis and the models can be checked against what was planted.
:func:`write_synthetic_ava` writes an AVA-format folder with images drawn by the same code.
"""

from ._ava import SyntheticAVA, write_synthetic_ava, write_synthetic_ava_report
from ._generate import SETTING_FILE, SimulationResult, simulate, truth_dir_for
from ._model import DEFAULT_SETTING, load_setting, parse_setting_override, setting_names
from ._raters import AssignmentPlan, sample_assignment_plan

__all__ = ["DEFAULT_SETTING", "SETTING_FILE", "AssignmentPlan", "SimulationResult", "load_setting",
           "parse_setting_override", "setting_names", "SyntheticAVA", "sample_assignment_plan", "simulate", "truth_dir_for",
           "write_synthetic_ava", "write_synthetic_ava_report"]
