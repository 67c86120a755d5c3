"""A generation run killed without warning (SIGKILL) and rerun ends with exactly the uninterrupted result.

``uae generate`` is run as a user would, in a subprocess, killed with SIGKILL once at least two chunks are
recorded in ``manifest.json`` but before the last one, then rerun to completion with the same command. The
result must equal an uninterrupted run of that command: no sample lost, none duplicated, every tensor
bit-identical, chunks finished before the kill reused rather than redone, and no temporary file left behind.
A chunk file truncated on disk is named in a warning, regenerated, and the result again equals the
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from uae_plugin import MinMaxAttack, Reconstruction, generate_dataset, load_generated
from uae_plugin.generation import FIELDS, MANIFEST

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

N_SAMPLES, CHUNK = 40, 4
N_CHUNKS = N_SAMPLES // CHUNK
STEPS_TO_TRY = (3, 12, 48)  # more steps per chunk widen the window in which the kill lands mid-run
POLL_S = 0.001
TIMEOUT_S = 120


def generate_command(model_file, data_file, out, steps):
    """The ``uae generate`` command line of every run in this file (only ``--out`` and ``--steps`` vary)."""
    return [
        sys.executable, "-m", "uae_plugin.cli", "generate",
        "--model", str(model_file), "--model-class", "conv", "--data", str(data_file), "--out", str(out),
        "--steps", str(steps), "--mine-steps", "1", "--chunk-size", str(CHUNK), "--seed", "0", "--no-progress",
    ]  # fmt: skip


def child_env():
    """One intra-op thread in every child: the runs share two cores with the test, and compare bit for bit."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def recorded_chunks(out) -> dict:
    """The chunks ``manifest.json`` in ``out`` records (empty before it exists); it is replaced atomically."""
    try:
        return json.loads((out / MANIFEST).read_text())["chunks"]
    except FileNotFoundError:
        return {}


def kill_mid_run(command, out) -> bool:
    """Start ``command``, SIGKILL it once 2 <= recorded chunks < N_CHUNKS; False if it finished first."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if 2 <= len(recorded_chunks(out)) < N_CHUNKS:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                return proc.returncode == -signal.SIGKILL and len(recorded_chunks(out)) < N_CHUNKS
            time.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    return False


def run_to_completion(command):
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=child_env())
    assert done.returncode == 0, done.stderr[-2000:]


def plant_stale_temp_files(out):
    """What a kill during ``_atomic_write`` leaves: half-written temporaries beside a chunk and the manifest."""
    (out / ".chunk-00009.pt.k1ll3d.tmp").write_bytes((out / "chunk-00000.pt").read_bytes()[:1000])
    (out / ".manifest.json.k1ll3d.tmp").write_bytes(b'{"format": "uae-plugin/gen')


@pytest.fixture(scope="module")
def files(conv_ae, digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("interruption")
    torch.save(conv_ae.state_dict(), folder / "conv_ae.pt")
    torch.save(digits[:N_SAMPLES].clone(), folder / "digits.pt")
    return folder, folder / "conv_ae.pt", folder / "digits.pt"


@pytest.fixture(scope="module")
def killed_and_resumed(files):
    """A run SIGKILLed mid-run then rerun, and the same command run once without interruption."""
    folder, model_file, data_file = files
    for steps in STEPS_TO_TRY:
        resumed, reference = folder / f"resumed-{steps}", folder / f"reference-{steps}"
        uninterrupted = subprocess.Popen(  # runs beside the killed one: same work, less wall time
            generate_command(model_file, data_file, reference, steps),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        interrupted = kill_mid_run(generate_command(model_file, data_file, resumed, steps), resumed)
        assert uninterrupted.wait(timeout=TIMEOUT_S) == 0, uninterrupted.stderr.read().decode()[-2000:]
        if interrupted:
            break
    else:
        pytest.fail(f"every run finished before it could be killed (steps tried: {STEPS_TO_TRY})")
    before = recorded_chunks(resumed)
    mtimes = {key: (resumed / entry["file"]).stat().st_mtime_ns for key, entry in before.items()}
    plant_stale_temp_files(resumed)
    run_to_completion(generate_command(model_file, data_file, resumed, steps))
    return {"resumed": resumed, "reference": reference, "before": before, "mtimes": mtimes}


def test_the_kill_landed_between_the_second_and_the_last_chunk(killed_and_resumed):
    assert 2 <= len(killed_and_resumed["before"]) < N_CHUNKS


def test_rerun_after_sigkill_equals_the_uninterrupted_run(killed_and_resumed):
    resumed = load_generated(killed_and_resumed["resumed"])
    reference = load_generated(killed_and_resumed["reference"])
    assert torch.equal(resumed["index"], torch.arange(N_SAMPLES)), "a sample was lost or duplicated"
    for field in FIELDS:
        assert torch.equal(resumed[field], reference[field]), field
    assert resumed["adv"].shape == (N_SAMPLES, 1, 28, 28)


def test_rerun_after_sigkill_reuses_the_chunks_finished_before_the_kill(killed_and_resumed):
    out, before = killed_and_resumed["resumed"], killed_and_resumed["before"]
    after = recorded_chunks(out)
    assert sorted(after, key=int) == [str(i) for i in range(N_CHUNKS)]
    for key, entry in before.items():
        assert after[key] == entry
        assert (out / entry["file"]).stat().st_mtime_ns == killed_and_resumed["mtimes"][key], entry["file"]


def test_rerun_after_sigkill_leaves_no_temporary_file(killed_and_resumed):
    out = killed_and_resumed["resumed"]
    left = sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))
    assert left == []
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST] + [f"chunk-{i:05d}.pt" for i in range(N_CHUNKS)])


def test_a_truncated_chunk_is_named_regenerated_and_the_result_equals_the_uninterrupted_run(conv_ae, digits, tmp_path):
    x = digits[:N_SAMPLES]

    def attack():
        return MinMaxAttack(Reconstruction(conv_ae), steps=3, mine_steps=1, seed=0)

    generate_dataset(attack(), x, tmp_path / "reference", chunk_size=CHUNK, progress=False)
    shutil.copytree(tmp_path / "reference", tmp_path / "torn")
    torn = tmp_path / "torn" / "chunk-00003.pt"
    raw = torn.read_bytes()
    torn.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="missing or corrupted"):
        load_generated(tmp_path / "torn")
    with pytest.warns(UserWarning, match="chunk-00003.pt"):
        generate_dataset(attack(), x, tmp_path / "torn", chunk_size=CHUNK, progress=False)
    assert torn.stat().st_size == len(raw)
    repaired, reference = load_generated(tmp_path / "torn"), load_generated(tmp_path / "reference")
    assert torch.equal(repaired["index"], torch.arange(N_SAMPLES))
    for field in FIELDS:
        assert torch.equal(repaired[field], reference[field]), field
