"""run_trial on two CPU processes (torchrun, gloo, one thread each) gives the report of one process.

A script written into the test's folder runs a small trial (a dense autoencoder on 64 real digits; none, noise,
uae and the costlier online-pgd arm; clean and adversarial scores) alone and under ``torchrun --nproc_per_node=2``
inside ``uae_plugin.distributed.process_group()``, in subprocesses side by side. Also: the fine-tunes are assigned
by cost, a trial resumes across process counts both ways, a killed run's part file is folded in, and a fine-tune
that fails on one rank fails every rank.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from itertools import product

import pytest
import torch

from uae_plugin import run_trial
from uae_plugin.distributed import TORCHRUN_ENV
from uae_plugin.trial import AdamFit
from uae_plugin.trial.spread import assign
from uae_plugin.trial.store import SCORES, TrialFolder, part_name

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
SETTINGS = {
    "arms": ["noise", "uae", "online-pgd"],
    "eps": [0.3],
    "seeds": [0, 1],
    "steps": 5,
    "attack_options": {"steps": 3},
    "online_steps": 2,
    "metrics": ["clean", "adversarial"],
    "robust_rows": 16,
    "progress": False,
}
SCRIPT = """
import json, os, sys
import torch
import torch.distributed as dist
from uae_plugin.distributed import process_group
from uae_plugin.experiments.models import DenseAutoencoder
from uae_plugin.trial import AdamFit, run_trial

files, runs = sys.argv[1], json.loads(sys.argv[2])
model = DenseAutoencoder(hidden=32)
model.load_state_dict(torch.load(f"{files}/model.pt", weights_only=True))
data = torch.load(f"{files}/data.pt", weights_only=True)
rank = int(os.environ.get("RANK", "0"))

def say(line):  # one write: the ranks' lines never interleave
    os.write(1, (line + "\\n").encode())

class Failing(AdamFit):
    def __call__(self, model, data, **kw):
        raise ValueError(f"no fine-tune on rank {rank}")

def trial(out, fail_on_rank=None, **extra):
    settings = {**json.loads(open(f"{files}/settings.json").read()), **extra}
    if fail_on_rank == rank:
        settings["fit"] = Failing()
    try:
        report = run_trial(model, data["x_train"], data["x_test"], out=out, **settings)
        say("REPORT " + json.dumps({m: report.for_metric(m).scores for m in report.metrics}))
    except ValueError as err:
        say(f"rank {rank} raised ValueError: {err}")
        return 3
    return 0

if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    with process_group():
        code = max(trial(**run) for run in runs)
        dist.barrier()  # every rank has printed before any exits
    sys.exit(code)
sys.exit(max(trial(**run) for run in runs))
"""


@pytest.fixture(scope="module")
def files(model, split, tmp_path_factory):
    folder = tmp_path_factory.mktemp("trial_distributed")
    torch.save(model.state_dict(), folder / "model.pt")
    torch.save({"x_train": split["x_train"], "x_test": split["x_test"]}, folder / "data.pt")
    (folder / "settings.json").write_text(json.dumps(SETTINGS))
    (folder / "script.py").write_text(SCRIPT)
    return folder


def trial(files, *runs, torchrun=False, wait=True):
    """The script in a subprocess: ``run_trial`` once per run (``{"out": folder or None, **changed settings}``), in
    one process or under torchrun with 2; returns its result, or with ``wait=False`` the running ``Popen``. One
    thread per process (the CPU is shared), no GPU, never an inherited torchrun env."""
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV} | {"OMP_NUM_THREADS": "1"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # on the CPU, as the one-process run (with CUDA each rank would use its GPU)
    runs = [{**run, "out": None if run["out"] is None else str(run["out"])} for run in runs]
    command = [*(TORCHRUN if torchrun else [sys.executable]), str(files / "script.py"), str(files), json.dumps(runs)]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def runs(files):
    """The same trial on two processes (``dist``) and on one (``one``), each with ``out``, run side by side."""
    dist = trial(files, {"out": files / "dist"}, torchrun=True, wait=False)
    one = trial(files, {"out": files / "one"}, wait=False)
    (dist_out, dist_err), (one_out, one_err) = dist.communicate(timeout=300), one.communicate(timeout=300)
    assert dist.returncode == 0, dist_err[-3000:]
    assert one.returncode == 0, one_err[-3000:]
    return {"dist": files / "dist", "one": files / "one", "dist_stdout": dist_out, "one_stdout": one_out}


def saved(out):
    return json.loads((out / "report.json").read_text())


def assert_same_scores(a, b):
    """Two report.json: the same scores, baselines and generation stats, bit for bit (one thread per process)."""
    assert a["metrics"] == b["metrics"]
    for m in a["metrics"]:
        assert a["by_metric"][m]["scores"] == b["by_metric"][m]["scores"], m
        assert a["by_metric"][m]["baseline"] == b["by_metric"][m]["baseline"], m
    assert a["stats"] == b["stats"]


def reported(stdout):
    return [json.loads(line.removeprefix("REPORT ")) for line in stdout.splitlines() if line.startswith("REPORT ")]


def test_two_processes_give_the_report_of_one_process(runs):
    dist, one = saved(runs["dist"]), saved(runs["one"])
    assert_same_scores(dist, one)
    assert dist["verdict"] == one["verdict"] and dist["recommendation"] == one["recommendation"]
    assert (dist["config"].pop("processes"), one["config"].pop("processes")) == (2, 1)
    assert dist["config"] == one["config"]


def test_every_rank_returns_the_same_full_report(runs):
    dist, one = reported(runs["dist_stdout"]), reported(runs["one_stdout"])
    assert len(dist) == 2 and dist[0] == dist[1] == one[0]
    assert sorted(one[0]["clean"]) == ["noise@0.3", "none", "online-pgd@0.3", "uae@0.3"]


def test_the_process_count_is_not_part_of_the_identity_and_rank_0_alone_writes(runs):
    assert (runs["dist"] / "trial.json").read_text() == (runs["one"] / "trial.json").read_text()
    names = lambda out: sorted(str(p.relative_to(out)) for p in out.rglob("*") if "uaes" not in p.parts)  # noqa: E731
    assert names(runs["dist"]) == names(runs["one"])  # no part file is left, nothing else is written
    assert not list(runs["dist"].glob("scores.rank-*.json"))


def test_a_two_process_trial_resumes_with_one_process_without_fine_tuning(runs, model, split, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(runs["dist"], out)

    class Counting(AdamFit):  # the same repr, so the same identity, as the default fit
        calls = 0

        def __call__(self, *args, **kw):
            Counting.calls += 1
            return super().__call__(*args, **kw)

    report = run_trial(model, split["x_train"], split["x_test"], out=out, fit=Counting(), **SETTINGS)
    assert Counting.calls == 0
    assert report.config["processes"] == 1
    assert_same_scores(saved(out), saved(runs["one"]))


def test_a_one_process_trial_is_finished_by_two_processes(files, runs):
    out = files / "finished"
    shutil.copytree(runs["one"], out)
    state = json.loads((out / SCORES).read_text())
    for by_arm in state["scores"].values():  # seed 1 of every arm still to run
        for by_seed in by_arm.values():
            del by_seed["1"]
    (out / SCORES).write_text(json.dumps(state))
    (out / "report.json").unlink()
    chunks = {p: p.stat().st_mtime_ns for p in (out / "uaes").rglob("*") if p.is_file()}
    done = trial(files, {"out": out, "progress": True}, torchrun=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in chunks} == chunks, "the augmentations were made again"
    assert done.stdout.count("4 fine-tunes spread over 2 processes by cost") == 1, "rank 0 alone speaks"
    assert not list(out.glob("scores.rank-*.json")), "rank 1's part file is folded into scores.json"
    assert_same_scores(saved(out), saved(runs["one"]))


def test_without_out_and_after_a_failure_on_one_rank(files, runs):
    """Without ``out`` (rank 0 makes the augmentations in memory and broadcasts them) the report is one process's;
    a fine-tune failing on rank 1 makes every rank raise it (none hangs), and the group is still usable."""
    failing = {"out": None, "arms": ["copy"], "fail_on_rank": 1}
    done = trial(files, {"out": None}, failing, {"out": None, "arms": ["copy"]}, torchrun=True)
    assert done.returncode != 0
    reports = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert len(reports) == 4, done.stderr[-3000:]
    without_out = json.loads(reports[0].removeprefix("REPORT "))
    assert without_out == {m: saved(runs["one"])["by_metric"][m]["scores"] for m in without_out}
    assert "rank 1 raised ValueError: rank 1: no fine-tune on rank 1" in done.stdout
    assert "rank 0 raised ValueError: rank 1: no fine-tune on rank 1" in done.stdout


def test_fine_tunes_are_assigned_longest_first_to_the_least_loaded_rank():
    costs = [1.0, 1.0, 1.0, 4.5, 4.5, 1.0]  # none, copy, uae at two seeds, and an online arm at both
    assert assign(costs, 1) == [0] * 6
    assert assign(costs, 2) == [0, 1, 0, 0, 1, 1]  # 4.5 + 1 + 1 and 4.5 + 1 + 1
    assert assign(costs, 2) == assign(list(costs), 2), "deterministic"
    for n, world in product(range(1, 8), (2, 3)):  # within Graham's 4/3 of the best split, found by brute force
        jobs = [float(1 + (7 * i) % 5) for i in range(n)]
        owner = assign(jobs, world)
        busiest = max(sum(c for c, o in zip(jobs, owner, strict=True) if o == r) for r in range(world))
        best = min(
            max(sum(c for c, o in zip(jobs, split, strict=True) if o == r) for r in range(world))
            for split in product(range(world), repeat=n)
        )
        assert busiest <= 4 / 3 * best + 1e-9


def test_the_part_file_of_a_killed_run_is_folded_in_when_the_folder_is_opened(tmp_path):
    TrialFolder(tmp_path, {"model": "m"}).record(None, None, {"clean": 0.5})
    other = TrialFolder(tmp_path, {"model": "m"}, rank=1)  # what rank 1 of a killed run left
    other.record("uae@0.3", 1, {"clean": 0.25})
    assert (tmp_path / part_name(1)).exists()
    assert json.loads((tmp_path / SCORES).read_text())["scores"] == {}, "rank 1 never writes scores.json"
    opened = TrialFolder(tmp_path, {"model": "m"})
    assert opened.scores == {"clean": {"uae@0.3": {"1": 0.25}}} and opened.baseline == {"clean": 0.5}
    assert json.loads((tmp_path / SCORES).read_text())["scores"] == opened.scores
    assert not (tmp_path / part_name(1)).exists()


def test_uae_trial_under_torchrun_gives_the_report_of_one_process(files):
    """The command line, as a user launches it: ``torchrun --nproc_per_node=2 -m uae_plugin.cli trial ...``."""
    np_data = files / "digits.pt"
    torch.save({"x": torch.load(files / "data.pt", weights_only=True)["x_train"]}, np_data)
    (files / "ae_module.py").write_text(
        "from uae_plugin.experiments.models import DenseAutoencoder\n\n\n"
        "class SmallAE(DenseAutoencoder):\n    def __init__(self):\n        super().__init__(hidden=32)\n"
    )
    options = ["trial", "--model", files / "model.pt", "--model-class", "ae_module:SmallAE", "--data", np_data,
               "--arms", "noise", "uae", "--eps", "0.3", "--seeds", "0", "1", "--fit-steps", "5", "--steps", "3",
               "--metrics", "clean", "--no-progress"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV} | {"OMP_NUM_THREADS": "1"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    done = {}
    for name, launcher in (("cli-dist", TORCHRUN), ("cli-one", [sys.executable])):
        command = [*launcher, "-m", "uae_plugin.cli", *map(str, options), "--out", str(files / name)]
        done[name] = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=files)
        assert done[name].returncode == 0, done[name].stderr[-3000:]
    assert done["cli-dist"].stdout.count("uae trial: SmallAE on") == 1  # rank 0 alone prints
    assert_same_scores(saved(files / "cli-dist"), saved(files / "cli-one"))
    assert saved(files / "cli-dist")["config"]["processes"] == 2
