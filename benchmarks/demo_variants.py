"""``uae demo`` (the trial on the bundled digits and autoencoders) with other UAE settings.

    python benchmarks/demo_variants.py [--variant NAME key=value ...]

Runs :func:`uae_plugin.experiments.demo.run_demo` (300 training digits, conv, dense and sparse autoencoders,
three fine-tuning seeds) once per variant and prints each model's trial table: every arm's paired change
against none with its 95% interval, and each UAE arm against its noise and no-MI controls. A variant is a set
of :class:`~uae_plugin.experiments.demo.DemoConfig` fields given as JSON values. The default variant is the
paper's settings (ε 1, c0 1e-3, δ₀ in ±0.5, T 80); ``uae demo`` itself runs the trial's defaults (ε 0.1
and 0.3, c0 10, T 40).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from uae_plugin.experiments.demo import DEFAULT, format_reports, run_demo

VARIANTS = {
    "the paper's settings (eps 1, c0 1e-3, delta_0 in ±0.5, T 80)": {
        "eps": [1.0],
        "attack_options": {"c0": 1e-3, "init_scale": 0.5, "steps": 80},
    },
}


def parse_variants(items: list[list[str]] | None) -> dict[str, dict]:
    """``--variant NAME key=value ...`` -> {NAME: {key: JSON value}}."""
    if not items:
        return VARIANTS
    return {name: {k: json.loads(v) for k, v in (p.split("=", 1) for p in pairs)} for name, *pairs in items}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", nargs="+", action="append", metavar="NAME key=value")
    args = parser.parse_args()
    for name, fields in parse_variants(args.variant).items():
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        start = time.perf_counter()
        reports = run_demo(replace(DEFAULT, **fields), progress=False)
        print(f"\n### {name}: {fields} ({time.perf_counter() - start:.0f} s)\n")
        print(format_reports(reports), flush=True)


if __name__ == "__main__":
    main()
