"""``uae generate`` on two CPU processes (torchrun, gloo) equals the one-process run, sample for sample.

The CLI is run as a user would, in subprocesses: once under ``torchrun --nproc_per_node=2`` and once alone,
on 16 real digits in 4 chunks. Also: a distributed rerun generates nothing new, a one-process run is finished
by two processes, a different run is refused by every rank, ``--distributed`` without torchrun exits 2 with
one line, and the part files a killed two-process run leaves are folded in by a one-process rerun.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from uae_plugin import MinMaxAttack, Reconstruction, generate_dataset, load_generated
from uae_plugin.distributed import TORCHRUN_ENV, Ranks
from uae_plugin.generation import FIELDS, MANIFEST, _sha256, part_name

N_SAMPLES, CHUNK = 16, 4
N_CHUNKS = N_SAMPLES // CHUNK
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def uae(*args, torchrun=False, wait=True):
    """``uae ...`` in a subprocess (its result, or with ``wait=False`` the running ``Popen``), under ``torchrun``
    with 2 processes if asked; one thread per process (the CPU is shared), never an inherited torchrun env."""
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV} | {"OMP_NUM_THREADS": "1"}
    command = [*(TORCHRUN if torchrun else [sys.executable]), "-m", "uae_plugin.cli", *map(str, args)]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def files(conv_ae, digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    torch.save(conv_ae.state_dict(), folder / "conv_ae.pt")
    torch.save(digits[:N_SAMPLES].clone(), folder / "digits.pt")
    return folder


def generate(files, out, *extra, seed=0, torchrun=False, wait=True):
    """The ``uae generate`` command of every CLI run in this file (only ``--out``, ``--seed`` and extras vary)."""
    model, data = files / "conv_ae.pt", files / "digits.pt"
    common = ("--steps", 2, "--mine-steps", 1, "--chunk-size", CHUNK, "--seed", seed, "--no-progress")
    args = ("generate", "--model", model, "--model-class", "conv", "--data", data, "--out", out, *common, *extra)
    return uae(*args, torchrun=torchrun, wait=wait)


@pytest.fixture(scope="module")
def runs(files):
    """The same command on two processes (``dist``) and on one (``one``), run side by side."""
    dist, one = generate(files, files / "dist", torchrun=True, wait=False), generate(files, files / "one", wait=False)
    (dist_out, dist_err), (_, one_err) = dist.communicate(timeout=300), one.communicate(timeout=300)
    assert dist.returncode == 0, dist_err[-3000:]
    assert one.returncode == 0, one_err[-3000:]
    return {"dist": files / "dist", "one": files / "one", "stdout": dist_out}


def assert_same_uaes(a, b):
    assert torch.equal(a["index"], torch.arange(N_SAMPLES)) and torch.equal(b["index"], a["index"])
    assert torch.equal(a["success"], b["success"])
    for field in ("adv", "mi", "gap"):  # one thread per process under torchrun, maybe more alone
        assert torch.allclose(a[field], b[field], atol=1e-5), field


def chunk_mtimes(out):
    return {p.name: p.stat().st_mtime_ns for p in out.glob("chunk-*.pt")}


def test_two_processes_write_what_one_process_writes(runs):
    assert_same_uaes(load_generated(runs["dist"]), load_generated(runs["one"]))
    assert runs["stdout"].count("UAEs in") == 1, "only rank 0 prints the summary"


def test_the_merged_manifest_holds_every_chunk_and_no_part_file_remains(runs):
    out = runs["dist"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["chunks"], key=int) == [str(k) for k in range(N_CHUNKS)]
    for key, entry in manifest["chunks"].items():
        assert entry["rows"] == [int(key) * CHUNK, (int(key) + 1) * CHUNK]
        assert _sha256(out / entry["file"]) == entry["sha256"]
    assert sorted(p.name for p in out.iterdir()) == [f"chunk-{k:05d}.pt" for k in range(N_CHUNKS)] + [MANIFEST]


def test_a_distributed_rerun_in_a_finished_folder_generates_nothing(files, runs):
    out = runs["dist"]
    before, manifest = chunk_mtimes(out), (out / MANIFEST).read_text()
    again = generate(files, out, torchrun=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert chunk_mtimes(out) == before
    assert (out / MANIFEST).read_text() == manifest


def test_two_processes_finish_what_one_process_started(files, runs):
    out = files / "resumed"
    shutil.copytree(runs["one"], out)
    for k in (1, 2):  # one missing chunk for each rank
        (out / f"chunk-{k:05d}.pt").unlink()
    kept = chunk_mtimes(out)
    done = generate(files, out, torchrun=True)
    assert done.returncode == 0, done.stderr[-3000:]
    after = chunk_mtimes(out)
    assert {name: after[name] for name in kept} == kept
    assert sorted(after) == [f"chunk-{k:05d}.pt" for k in range(N_CHUNKS)]
    assert not list(out.glob("manifest.rank-*.json"))
    assert_same_uaes(load_generated(out), load_generated(runs["one"]))


def test_a_different_run_is_refused_by_every_rank_and_changes_nothing(files, runs):
    out = runs["dist"]
    before, manifest = chunk_mtimes(out), (out / MANIFEST).read_text()
    refused = generate(files, out, seed=1, torchrun=True)
    assert refused.returncode != 0
    assert refused.stderr.count("error: ") >= 2 and refused.stderr.count("holds UAEs of a different run") == 2
    assert chunk_mtimes(out) == before and (out / MANIFEST).read_text() == manifest


def test_distributed_without_torchrun_exits_2_with_one_line(files, tmp_path):
    out = generate(files, tmp_path / "u", "--distributed")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert "--distributed" in out.stderr and "torchrun --nproc_per_node" in out.stderr
    assert not (tmp_path / "u").exists()


def test_chunk_k_belongs_to_rank_k_mod_world_size_and_to_no_other():
    owners = {k: [r for r in range(3) if k in Ranks(r, 3).shard(8)] for k in range(8)}
    assert owners == {k: [k % 3] for k in range(8)}
    assert list(Ranks().shard(3)) == [0, 1, 2]


def _attack(model):
    return MinMaxAttack(Reconstruction(model), steps=2, mine_steps=1, seed=0)


def test_part_files_of_a_killed_two_process_run_are_folded_in_by_one_process(conv_ae, digits, tmp_path):
    x = digits[:8]
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=2, progress=False)
    reference = load_generated(tmp_path)
    # What a 2-rank run killed mid-way leaves: an empty manifest.json, rank r's finished chunks in its
    # part file, and rank 1's last chunk (3) never written.
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    chunks = manifest.pop("chunks")
    for rank, keys in ((0, ("0", "2")), (1, ("1",))):
        part = {**manifest, "chunks": {k: chunks[k] for k in keys}}
        (tmp_path / part_name(rank)).write_text(json.dumps(part))
    (tmp_path / MANIFEST).write_text(json.dumps({**manifest, "chunks": {}}))
    (tmp_path / "chunk-00003.pt").unlink()
    kept = chunk_mtimes(tmp_path)
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=2, progress=False)
    assert {name: chunk_mtimes(tmp_path)[name] for name in kept} == kept, "a recorded chunk was redone"
    assert not list(tmp_path.glob("manifest.rank-*.json"))
    again = load_generated(tmp_path)
    assert all(torch.equal(again[k], reference[k]) for k in FIELDS)


def test_a_part_file_of_a_different_run_is_refused(conv_ae, digits, tmp_path):
    generate_dataset(_attack(conv_ae), digits[:2], tmp_path, chunk_size=2, progress=False)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    stranger = {**manifest, "fingerprint": {**manifest["fingerprint"], "attack": "another"}}
    (tmp_path / part_name(1)).write_text(json.dumps(stranger))
    with pytest.raises(ValueError, match=r"manifest\.rank-1\.json holds UAEs of a different run"):
        generate_dataset(_attack(conv_ae), digits[:2], tmp_path, chunk_size=2, progress=False)
    assert (tmp_path / part_name(1)).exists()
