"""Options shared by the ``uae`` commands that read a model and data and attack them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from ..settings import DEFAULT, REFERENCE
from .loading import add_model_arguments

T = TypeVar("T")


def model_options(p: argparse.ArgumentParser, what: str = "the model") -> None:
    """``--model``, ``--model-class``, ``--model-kwargs`` (:func:`add_model_arguments`) and ``--task``."""
    add_model_arguments(p, what)
    p.add_argument(
        "--task",
        choices=("reconstruction", "contrastive"),
        default="reconstruction",
        help="the model is an autoencoder (reconstruction, default) or an encoder (contrastive, NT-Xent over views)",
    )


def image_options(p: argparse.ArgumentParser) -> None:
    """``--image-size``, ``--channels``: how an image folder is read."""
    p.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="image folders: resize every image to H x W (bilinear, antialiased); without it sizes must agree",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="image folders: convert every image to 1 (luma) or 3 channels; without it channels must agree",
    )


def attack_options(p: argparse.ArgumentParser, title: str = "attack", budget: bool = True) -> None:
    """The MinMax attack's settings; ``budget=False`` leaves out ``--eps`` and ``--seed`` (a trial takes several
    ε and names its seeds otherwise)."""
    g = p.add_argument_group(title)
    if budget:
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
    if budget:
        g.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")


def as_option(check: Callable[[], T], options: dict[str, str]) -> T:
    """``check()``, its ValueError or TypeError made to name the command-line option instead of the Python argument
    (``options`` maps argument names to options): ``test_eps must be ...`` becomes ``--test-eps must be ...``; an
    error that starts with no argument's name is prefixed with the first option's."""
    try:
        return check()
    except (ValueError, TypeError) as err:
        text = str(err)
        named = [name for name in options if text.startswith((f"{name} ", f"{name}:"))]
        name = named[0] if named else next(iter(options))
        if named:
            raise type(err)(options[name] + text[len(name) :]) from err
        raise type(err)(f"{options[name]}: {text}") from err
