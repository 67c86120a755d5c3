"""Does UAE augmentation help *my* model? ``run_trial``: a controlled trial on the user's own model and data.

- :mod:`.arms`: none, copy, and per ε noise, nomi, pgd, uae; :mod:`.augment`: the augmentations, made once per ε;
- :mod:`.budget`: the equal fine-tuning budget and the default reconstruction fit and score;
- :mod:`.contrastive`: the SimCLR fit and kNN score of a contrastive trial; :mod:`.knn`: features and kNN;
- :mod:`.online`: the online arms' attacks in every training step; :mod:`.metrics`: clean, adversarial,
  corruption and kNN scores (:mod:`.probe`: the linear probe, :mod:`.corruptions`: the common corruptions);
- :mod:`.verdict`: the paired t-test with Holm's correction; :mod:`.report`: ``TrialReport``; :mod:`.wording`: its
  table and recommendation; :mod:`.pictures`: its pictures;
- :mod:`.plan`: the checks and the plan; :mod:`.generate`, :mod:`.fine_tune`: the phases; :mod:`.spread`: over
  torchrun ranks; :mod:`.store`: the resumable folder; :mod:`.run`: ``run_trial``.
"""

from .arms import ARMS, DEFAULT_ARMS, DEFAULT_EPS
from .budget import AdamFit, default_steps, reconstruction_error
from .metrics import DEFAULT_METRICS, DEFAULT_TEST_EPS, METRICS, Measured
from .plan import DEFAULT_SEEDS
from .report import MetricResult, TrialReport
from .run import run_trial
from .verdict import HARMS, HELPS, NO_CHANGE, Paired, corrected, paired

__all__ = [
    "ARMS",
    "DEFAULT_ARMS",
    "DEFAULT_EPS",
    "DEFAULT_METRICS",
    "DEFAULT_SEEDS",
    "DEFAULT_TEST_EPS",
    "METRICS",
    "Measured",
    "MetricResult",
    "corrected",
    "HARMS",
    "HELPS",
    "NO_CHANGE",
    "AdamFit",
    "Paired",
    "TrialReport",
    "default_steps",
    "paired",
    "reconstruction_error",
    "run_trial",
]
