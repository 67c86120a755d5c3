"""A trial in words: the markdown table and the one-paragraph recommendation of a :class:`~.report.TrialReport`.

The recommendation keeps the metrics apart: the first metric (clean error, unless the user's scores say otherwise)
says which augmentation helped it, and each robustness metric which augmentation lowered it and at what cost on the
first, e.g. ``online-pgd@0.1: 10.2% lower adversarial error, 25.1% higher clean error``.
"""

from __future__ import annotations

from typing import Any

import torch

from .verdict import ALPHA, CORRECTION, HARMS, HELPS, Paired

CONTROL_WORDS = {HELPS: "UAE better", HARMS: "UAE worse"}


def _cell(p: Paired) -> str:
    return f"{p.describe()} {p.verdict} (p_adj {p.p_adjusted:.2g})"


def _helping(versus: dict[str, Paired]) -> str | None:
    helping = [arm for arm, p in versus.items() if p.verdict == HELPS]
    return min(helping, key=lambda arm: versus[arm].mean) if helping else None


def _cost(first: str, p: Paired) -> str:
    if p.verdict == HARMS:
        return f"{p.mean_pct:.1f}% higher {first} error"
    if p.verdict == HELPS:
        return f"also {-p.mean_pct:.1f}% lower {first} error"
    return f"no measurable change in {first} error"


def recommendation(report: Any) -> str:
    """First metric: ``Recommended: <arm> (<change> against none).`` with a remark on the UAE's controls, or ``No
    augmentation measurably helped this model ...``; then, per further metric, the arm that lowered it most and its
    cost on the first metric (and on any other metric it measurably moved), or that none did."""
    n, names = len(report.seeds), report.metrics
    first = report.first
    if report.withheld:
        return f"No recommendation: {report.withheld}."
    label = "" if len(names) == 1 else f"{names[0]}: "
    best = _helping(first.versus_none)
    if best is None:
        line = (
            f"{label}No augmentation measurably helped this model ({CORRECTION}-corrected paired t-test at {ALPHA:g} "
            f"over {n} seeds): keep training on the clean data."
        )
    else:
        line = f"{label}Recommended: {best} ({first.versus_none[best].describe()} against none)."
        if best.startswith("uae"):
            controls = first.controls.get(best, {})
            missed = [c for c, p in controls.items() if p.verdict != HELPS]
            if missed:
                line += (
                    f" It is not measurably better than {', '.join(missed)}: the UAE's MI term did not earn its cost."
                )
            elif controls:
                line += f" It also beats its controls {', '.join(controls)}."
        else:
            uaes = [arm for arm, p in first.versus_none.items() if arm.startswith("uae") and p.verdict == HELPS]
            line += " UAEs " + (f"help less ({', '.join(uaes)})." if uaes else "did not measurably help.")
    lines = [line]
    for name in names[1:]:
        result = report.results[name]
        arm = _helping(result.versus_none)
        if arm is None:
            lines.append(f"{name}: no augmentation measurably lowered it.")
        else:
            p = result.versus_none[arm]
            costs = [_cost(names[0], first.versus_none[arm])] + [
                _cost(other, report.results[other].versus_none[arm])
                for other in names[1:]
                if other != name and report.results[other].versus_none[arm].verdict in (HELPS, HARMS)
            ]  # the first metric always; another robustness metric where this arm measurably moved it
            lines.append(f"{name}: {arm}: {-p.mean_pct:.1f}% lower {name} error, {', '.join(costs)}.")
    return " ".join(lines)


def _resolution(result: Any) -> str:
    if result.resolution is None:
        return f"{result.name}: continuous"
    none = result.scores["none"]
    scale = abs(sum(none) / len(none))
    pct = f" ({100 * result.resolution / scale:.2g}% of none's)" if scale > 0 else ""
    return f"{result.name}: {result.resolution:.3g}{pct}"


BUILTIN_WORDS = {
    "reconstruction": {
        "clean": "test MSE per element",
        "corruption": "MSE per element over {c} corruptions x 5 severities",
    },
    "contrastive": {
        "clean": "linear-probe error",
        "corruption": "linear-probe error over {c} corruptions x 5 severities",
    },
}


def _metric_words(report: Any, name: str) -> str:
    """What metric ``name`` measures, from the trial's config."""
    from .corruptions import CORRUPTIONS

    c = report.config
    settings = c.get("metric_settings", {})
    if name in settings and name != "robustness":
        return f"{name} ({settings[name]})"
    robust = settings.get("robustness", {})
    rows = f"{robust.get('rows')} test rows" if robust.get("rows") else "every test row"
    task = c.get("task", "reconstruction")
    if name == "adversarial":
        attack = "AutoAttack" if robust.get("attack") == "autoattack" else f"PGD-{robust.get('steps')}, random start"
        eps = robust.get("test_eps", 0)
        return f"adversarial (the {BUILTIN_WORDS[task]['clean']} under {attack} at ε {eps:.4g}, on {rows})"
    if name == "corruption":
        return f"corruption ({BUILTIN_WORDS[task]['corruption'].format(c=len(CORRUPTIONS))}, on {rows})"
    if name == "knn":
        return "knn (1 - cosine 10-NN accuracy, the training rows as the bank)"
    return f"{name} ({BUILTIN_WORDS.get(task, {}).get(name, 'the user’s score')})"


def context(report: Any) -> list[str]:
    """The trial in a few lines: data, sizes, task, fit budget, metrics and what they measure, attack options;
    what the folder holds beyond what was asked; the warnings."""
    c = report.config
    data = f" ({c['data']})" if c.get("data") else ""
    lines = [
        f"Trial: task {c.get('task')}, model {c.get('model')}; {c.get('n_train')} training rows, {c.get('n_test')} "
        f"test rows{data}; fit {c.get('fit')} for {c.get('steps')} steps; seeds {c.get('seeds')}; target "
        f"{c.get('target')}; attack options {c.get('attack_options') or 'default'}, seed {c.get('attack_seed')}.",
        "Metrics (lower is better): " + "; ".join(_metric_words(report, m) for m in report.metrics) + ".",
    ]
    more = c.get("folder_holds")
    if more:
        held = "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in more.items())
        lines.append(f"The folder also holds {held}: rerun with them to report them.")
    if report.warnings:
        lines += ["", "Warnings:"] + [f"- {w}" for w in report.warnings]
    return lines + [""]


def table(report: Any) -> str:
    """Markdown: the correction used; one row per arm with, per metric, the score (mean ± sd) and the change
    against none with its 95% interval and corrected verdict; each metric's resolution and the given model's
    scores; for undecided arms, what this trial could have detected; the UAE controls; the recommendation."""
    n, names = len(report.seeds), report.metrics
    compared = len(report.first.versus_none)
    arms = f"{compared} arm{'s' if compared != 1 else ''}"
    lines = context(report) + [
        f"Verdicts: paired t-test over {n} seeds, {CORRECTION}-corrected over the {arms} compared with none "
        f"within each metric (family-wise error {ALPHA:g}); intervals are the unadjusted 95% paired t-intervals.",
        "",
        "| arm | " + " | ".join(f"{m} (mean ± sd) | {m}: change vs none" for m in names) + " | mean L2 |",
        "|---|" + "---|---|" * len(names) + "---|",
    ]
    for arm in report.scores:
        cells = []
        for m in names:
            result = report.results[m]
            t = torch.tensor(result.scores[arm], dtype=torch.float64)
            cells.append(f"{float(t.mean()):.6g} ± {float(t.std()):.2g}")
            cells.append("reference" if arm == "none" else _cell(result.versus_none[arm]))
        kind, _, eps = arm.partition("@")
        l2 = report.stats.get(eps, {}).get("l2", {}).get(kind)
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {'—' if l2 is None else f'{l2:.3g}'} |")
    lines += [
        "",
        "Resolution (smallest change a score can show): " + "; ".join(map(_resolution, report.results.values())) + ".",
    ]
    baselines = [f"{m} {r.baseline:.6g}" for m, r in report.results.items() if r.baseline is not None]
    if baselines:
        lines.append(f"Scores of the given model before fine-tuning: {', '.join(baselines)}.")
    for eps, s in report.stats.items():
        lines.append(f"UAEs at ε {eps}: success rate {s['uae_success_rate']:.1%}, mean MI {s['uae_mean_mi']:.3g} nats.")
    undecided = [
        f"- {m}, {arm}: {p.undecided_note()}"
        for m, r in report.results.items()
        for arm, p in r.versus_none.items()
        if p.verdict not in (HELPS, HARMS)
    ]
    if undecided:
        lines += ["", "Undecided arms (the smallest change this trial could detect; seeds that would settle it):"]
        lines += undecided
    if any(r.controls for r in report.results.values()):
        lines += [
            "",
            f"| metric | UAE arm | against | UAE − control [% of none's score] | ({CORRECTION} over these pairs) |",
            "|---|---|---|---|---|",
        ]
        for m, r in report.results.items():
            for arm, controls in r.controls.items():
                for control, p in controls.items():
                    word = CONTROL_WORDS.get(p.verdict, "no measurable difference")
                    lines.append(f"| {m} | {arm} | {control} | {p.describe()} | {word} |")
    lines += ["", report.recommendation]
    return "\n".join(lines)
