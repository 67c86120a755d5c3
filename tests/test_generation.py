import json

import pytest
import torch
from torch.utils.data import TensorDataset

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.generation import FIELDS, MANIFEST, generate_dataset, load_generated


def _attack(model, seed=0):
    return MinMaxAttack(Reconstruction(model), steps=4, mine_steps=2, seed=seed)


def test_chunked_generation_equals_one_run_with_global_indices(conv_ae, digits, tmp_path):
    x = digits[:20]
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=8, progress=False)
    got = load_generated(tmp_path)
    whole = _attack(conv_ae)(x, index=torch.arange(20))
    assert torch.equal(got["index"], torch.arange(20))
    assert torch.allclose(got["adv"], whole.adv, atol=1e-4)
    assert torch.equal(got["success"], whole.success)
    assert len(list(tmp_path.glob("chunk-*.pt"))) == 3


@pytest.mark.parametrize("streamed", [False, True], ids=["tensor", "Dataset"])
def test_rerun_generates_only_missing_chunks_bit_identically(conv_ae, digits, tmp_path, streamed):
    x = TensorDataset(digits[:20]) if streamed else digits[:20]
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=8, progress=False)
    first = load_generated(tmp_path)
    kept = (tmp_path / "chunk-00000.pt").stat().st_mtime_ns
    (tmp_path / "chunk-00001.pt").unlink()
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=8, progress=False)
    assert (tmp_path / "chunk-00000.pt").stat().st_mtime_ns == kept
    again = load_generated(tmp_path)
    assert all(torch.equal(first[k], again[k]) for k in FIELDS)


def test_corrupted_chunk_is_detected_named_and_regenerated(conv_ae, digits, tmp_path):
    x = digits[:16]
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=8, progress=False)
    first = load_generated(tmp_path)
    path = tmp_path / "chunk-00001.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="missing or corrupted"):
        load_generated(tmp_path)
    with pytest.warns(UserWarning, match="chunk-00001.pt"):
        generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=8, progress=False)
    again = load_generated(tmp_path)
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_a_different_run_in_the_same_folder_is_refused(conv_ae, digits, tmp_path):
    generate_dataset(_attack(conv_ae), digits[:8], tmp_path, chunk_size=8, progress=False)
    before = (tmp_path / MANIFEST).read_text()
    with pytest.raises(ValueError, match="different run"):
        generate_dataset(_attack(conv_ae, seed=1), digits[:8], tmp_path, chunk_size=8, progress=False)
    assert (tmp_path / MANIFEST).read_text() == before


def test_generation_needs_a_seed(conv_ae, digits, tmp_path):
    with pytest.raises(ValueError, match="seed must be an int"):
        generate_dataset(MinMaxAttack(Reconstruction(conv_ae), steps=2), digits[:4], tmp_path, progress=False)


def test_output_loads_with_weights_only_and_the_manifest_is_json(conv_ae, digits, tmp_path):
    generate_dataset(_attack(conv_ae), digits[:4], tmp_path, chunk_size=4, progress=False)
    record = torch.load(tmp_path / "chunk-00000.pt", weights_only=True)
    assert set(record) == {"adv", "success", "mi", "gap", "index"}
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["chunks"]["0"]["rows"] == [0, 4]
    assert not list(tmp_path.glob(".*.tmp"))


def test_stale_temporary_files_of_a_killed_run_are_deleted_on_the_next_run(conv_ae, digits, tmp_path):
    x = digits[:8]
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=4, progress=False)
    first = load_generated(tmp_path)
    kept = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("chunk-*.pt")}
    stale = [".chunk-00001.pt.k1ll3d.tmp", ".manifest.json.k1ll3d.tmp", ".manifest.rank-1.json.k1ll3d.tmp"]
    for name in stale:  # what SIGKILL during _atomic_write leaves behind
        (tmp_path / name).write_bytes(b'{"half": ')
    (tmp_path / ".notes.tmp").write_text("not ours")
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=4, progress=False)
    assert not [name for name in stale if (tmp_path / name).exists()]
    assert (tmp_path / ".notes.tmp").read_text() == "not ours", "only this module's temporaries are removed"
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("chunk-*.pt")} == kept
    again = load_generated(tmp_path)
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_a_full_disk_names_the_file_says_how_to_resume_and_leaves_no_temporary(
    conv_ae, digits, tmp_path, capsys, monkeypatch
):
    import errno

    import uae_plugin.generation.files as files
    from uae_plugin.cli import main
    from uae_plugin.generation import DiskFullError, atomic_write

    def no_space(fh):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=r"could not write .*chunk-00007\.pt: the disk is full.*rerun"):
        atomic_write(tmp_path / "chunk-00007.pt", no_space)
    assert list(tmp_path.iterdir()) == []

    # the command line: one line, exit status 2, the chunks before intact, and the same command completes the run
    model_file = tmp_path / "ae.pt"
    torch.save(conv_ae.state_dict(), model_file)
    out = tmp_path / "uaes"
    argv = ["generate", "--model", str(model_file), "--model-class", "conv", "--limit", "8", "--chunk-size", "4"]
    argv += ["--steps", "2", "--out", str(out), "--no-progress"]
    real_save, real_usage, calls = torch.save, files.shutil.disk_usage, []

    def save_once_then_full(obj, fh):  # what torch.save raises when the disk fills during a write
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1024 vs 918")
        real_save(obj, fh)

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", save_once_then_full)
        patch.setattr(files.shutil, "disk_usage", lambda folder: real_usage(folder)._replace(free=0))
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the disk is full" in err[0] and "chunk-00001.pt" in err[0]
    assert not list(out.glob(".*.tmp")) and (out / "chunk-00000.pt").exists()
    assert main(argv) == 0
    assert load_generated(out)["adv"].shape[0] == 8


def test_a_resumed_run_says_what_it_kept(conv_ae, digits, tmp_path, capsys):
    x = digits[:20]
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=8, progress=False)
    (tmp_path / "chunk-00001.pt").unlink()
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=8, progress=True)
    assert f"resuming {tmp_path}: 2 of 3 chunks (12 samples) kept from the last run" in capsys.readouterr().out
