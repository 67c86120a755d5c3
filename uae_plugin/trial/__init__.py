"""Does UAE augmentation help *my* model? ``run_trial``: a controlled trial on the user's own model and data.

- :mod:`.arms`: none, copy, and per ε noise, nomi, pgd, uae; :mod:`.augment`: the augmentations, made once per ε;
- :mod:`.budget`: the equal fine-tuning budget and the default reconstruction fit and score;
- :mod:`.contrastive`: the SimCLR fit and kNN score of a contrastive trial; :mod:`.knn`: features and kNN;
- :mod:`.verdict`: the paired 95% t-interval rule; :mod:`.report`: ``TrialReport``;
- :mod:`.store`: the resumable folder; :mod:`.run`: ``run_trial``.
"""

from .arms import ARMS, DEFAULT_ARMS, DEFAULT_EPS
from .budget import AdamFit, default_steps, reconstruction_error
from .report import TrialReport
from .run import run_trial
from .verdict import HARMS, HELPS, NO_CHANGE, Paired, paired

__all__ = [
    "ARMS",
    "DEFAULT_ARMS",
    "DEFAULT_EPS",
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
