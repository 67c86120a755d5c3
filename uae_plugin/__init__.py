"""uae-plugin: unsupervised adversarial examples (UAEs) as a plug-in data augmentation.

A UAE ``x'`` carries little information about ``x`` (a per-sample mutual
information estimate: the exact Gaussian form by default, MINE as in the
paper) while the model handles it no worse than ``x``; it is found by a
MinMax algorithm with no labels (Hsu et al., AAAI 2022). ``run_trial``
measures whether UAEs help a given model, with controls.
"""

from .baselines import BinarySearchPenalty, UnsupervisedPGD, matched_gaussian_noise
from .criteria import Classification, Contrastive, Criterion, Evaluation, Reconstruction
from .generation import UAEDataset, generate_dataset, load_generated
from .measure import mutual_information
from .minmax import MinMaxAttack
from .result import AttackResult
from .settings import DEFAULT, PRESETS, REFERENCE, MinMaxSettings
from .trial import TrialReport, run_trial

__version__ = "0.1.0"

__all__ = [
    "AttackResult",
    "BinarySearchPenalty",
    "Classification",
    "Contrastive",
    "Criterion",
    "DEFAULT",
    "Evaluation",
    "MinMaxAttack",
    "MinMaxSettings",
    "PRESETS",
    "REFERENCE",
    "Reconstruction",
    "TrialReport",
    "UAEDataset",
    "UnsupervisedPGD",
    "__version__",
    "generate_dataset",
    "load_generated",
    "matched_gaussian_noise",
    "mutual_information",
    "run_trial",
]
