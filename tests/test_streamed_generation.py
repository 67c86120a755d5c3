"""Generation from a torch Dataset to a torch Dataset: streamed, bit-identical to the tensor path, extendable.

Real digits and the session's trained conv autoencoder; tiny attacks (2 steps) on tens of rows.
"""

import json

import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, TensorDataset

from uae_plugin import MinMaxAttack, Reconstruction, UAEDataset, generate_dataset, load_generated
from uae_plugin.generation import FIELDS, MANIFEST


def _attack(model, seed=0, steps=2):
    return MinMaxAttack(Reconstruction(model), steps=steps, mine_steps=1, seed=seed)


class Digits(Dataset):
    """Items ``(x, label, name)`` over real digits, counting which rows were read."""

    def __init__(self, x, y):
        self.x, self.y, self.read = x, y, []

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.read.append(i)
        return self.x[i], int(self.y[i]), f"digit-{i}"


@pytest.fixture
def labelled(mnist):
    return mnist["x_test"][:12], mnist["y_test"][:12]


def test_a_dataset_gives_bit_identical_uaes_to_the_tensor_of_its_rows(conv_ae, labelled, tmp_path):
    x, y = labelled
    generate_dataset(_attack(conv_ae), x, tmp_path / "tensor", chunk_size=5, progress=False)
    generate_dataset(_attack(conv_ae), Digits(x, y), tmp_path / "dataset", chunk_size=5, progress=False)
    from_tensor, from_dataset = load_generated(tmp_path / "tensor"), load_generated(tmp_path / "dataset")
    for field in FIELDS:
        assert torch.equal(from_tensor[field], from_dataset[field]), field


def test_worker_processes_give_the_same_uaes_as_reading_in_this_process(conv_ae, labelled, tmp_path):
    x, y = labelled
    generate_dataset(_attack(conv_ae), Digits(x, y), tmp_path / "zero", chunk_size=6, progress=False)
    generate_dataset(_attack(conv_ae), Digits(x, y), tmp_path / "two", chunk_size=6, progress=False, num_workers=2)
    zero, two = load_generated(tmp_path / "zero"), load_generated(tmp_path / "two")
    assert all(torch.equal(zero[k], two[k]) for k in FIELDS)
    assert zero["rest"][1] == two["rest"][1]


def test_the_fields_after_x_are_carried_into_the_output_in_their_kind(conv_ae, labelled, tmp_path):
    x, y = labelled
    generate_dataset(_attack(conv_ae), Digits(x, y), tmp_path, chunk_size=5, progress=False)
    stored = load_generated(tmp_path)["rest"]
    assert torch.equal(stored[0], y) and stored[1] == [f"digit-{i}" for i in range(12)]
    uaes = UAEDataset(tmp_path)
    adv, label, name = uaes[7]
    assert torch.equal(adv, load_generated(tmp_path)["adv"][7])
    assert (label, name) == (int(y[7]), "digit-7") and isinstance(label, int)


def test_bare_tensor_items_come_back_as_bare_tensors_with_extras_on_request(conv_ae, digits, tmp_path):
    class Bare(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return digits[i]

    generate_dataset(_attack(conv_ae), Bare(), tmp_path, chunk_size=4, progress=False)
    whole = load_generated(tmp_path)
    assert "rest" not in whole
    assert torch.equal(UAEDataset(tmp_path)[5], whole["adv"][5])
    adv, success, index = UAEDataset(tmp_path, extra=("success", "index"))[5]
    assert torch.equal(adv, whole["adv"][5]) and bool(success) == bool(whole["success"][5]) and int(index) == 5


def test_only_successful_keeps_exactly_the_successful_uaes(conv_ae, digits, tmp_path):
    generate_dataset(_attack(conv_ae, steps=1), digits[:16], tmp_path, chunk_size=5, progress=False)
    whole = load_generated(tmp_path)
    kept = UAEDataset(tmp_path, extra=("index",), only_successful=True)
    assert len(kept) == int(whole["success"].sum())
    assert [int(kept[i][1]) for i in range(len(kept))] == whole["success"].nonzero().flatten().tolist()


def test_uaes_sit_next_to_the_training_set_in_a_dataloader_with_workers(conv_ae, digits, tmp_path):
    x = digits[:10]
    generate_dataset(_attack(conv_ae), TensorDataset(x), tmp_path, chunk_size=4, progress=False)
    both = ConcatDataset([TensorDataset(x), UAEDataset(tmp_path, cache_chunks=1)])
    batches = [b[0] for b in DataLoader(both, batch_size=7, num_workers=2)]
    seen = torch.cat(batches)
    assert seen.shape == (20, 1, 28, 28)
    assert torch.equal(seen[:10], x) and torch.equal(seen[10:], load_generated(tmp_path)["adv"])


def test_a_corrupted_chunk_is_named_when_the_uae_dataset_first_reads_it(conv_ae, digits, tmp_path):
    generate_dataset(_attack(conv_ae), digits[:8], tmp_path, chunk_size=4, progress=False)
    uaes = UAEDataset(tmp_path)
    uaes[0]
    path = tmp_path / "chunk-00001.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"chunk-00001\.pt is missing or corrupted"):
        uaes[5]


def test_more_rows_extend_a_finished_run_reusing_its_chunks(conv_ae, digits, tmp_path):
    generate_dataset(_attack(conv_ae), digits[:10], tmp_path, chunk_size=4, progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("chunk-*.pt")}
    generate_dataset(_attack(conv_ae), digits[:16], tmp_path, chunk_size=4, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("chunk-*.pt")}
    assert after["chunk-00000.pt"] == mtimes["chunk-00000.pt"] and after["chunk-00001.pt"] == mtimes["chunk-00001.pt"]
    assert after["chunk-00002.pt"] != mtimes["chunk-00002.pt"], "the old last chunk held rows 8-9 only"
    grown, fresh = load_generated(tmp_path), None
    generate_dataset(_attack(conv_ae), digits[:16], tmp_path / "fresh", chunk_size=4, progress=False)
    fresh = load_generated(tmp_path / "fresh")
    assert all(torch.equal(grown[k], fresh[k]) for k in FIELDS)


def test_changed_rows_are_regenerated_with_a_warning_never_reused(conv_ae, digits, tmp_path):
    x = digits[:8].clone()
    generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=4, progress=False)
    x[5] = digits[20]
    with pytest.warns(UserWarning, match=r"rows 4-7 of the data differ from those chunk-00001\.pt"):
        generate_dataset(_attack(conv_ae), x, tmp_path, chunk_size=4, progress=False)
    generate_dataset(_attack(conv_ae), x, tmp_path / "fresh", chunk_size=4, progress=False)
    assert torch.equal(load_generated(tmp_path)["adv"], load_generated(tmp_path / "fresh")["adv"])


def test_a_run_refused_for_a_changed_option_names_the_field_and_both_values(conv_ae, digits, tmp_path):
    generate_dataset(_attack(conv_ae, steps=2), digits[:4], tmp_path, chunk_size=4, progress=False)
    before = (tmp_path / MANIFEST).read_text()
    with pytest.raises(ValueError, match=r"different run: config\.settings\.steps: 2 there, 3 now"):
        generate_dataset(_attack(conv_ae, steps=3), digits[:4], tmp_path, chunk_size=4, progress=False)
    with pytest.raises(ValueError, match=r"different run: chunk_size: 4 there, 2 now"):
        generate_dataset(_attack(conv_ae, steps=2), digits[:4], tmp_path, chunk_size=2, progress=False)
    assert (tmp_path / MANIFEST).read_text() == before


def test_the_manifest_records_each_chunks_input_digest_and_no_digest_of_the_whole_data(conv_ae, digits, tmp_path):
    generate_dataset(_attack(conv_ae), digits[:8], tmp_path, chunk_size=4, progress=False)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["n"] == 8 and "n" not in manifest["fingerprint"] and "data_sha256" not in manifest["fingerprint"]
    assert manifest["fingerprint"]["data"] == {
        "items": {"shape": [1, 28, 28], "dtype": "torch.float32", "tuple": False, "rest": []}
    }
    digests = [entry["input_sha256"] for entry in manifest["chunks"].values()]
    assert len(set(digests)) == 2 and all(len(d) == 64 for d in digests)


class _Items(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.mark.parametrize(
    "items, error, message",
    [
        ([], ValueError, r"data is an empty Dataset \(len 0\)"),
        (["a", "b"], TypeError, r"data\[0\] must be a tensor x or a tuple \(x, \*rest\) starting with one, got str"),
        ([(3, "x")], TypeError, r"data\[0\] must be .* got a tuple whose first element is a int"),
        ("shapes", ValueError, r"data\[5\] differs from data\[0\] in its shape: \[1, 27, 28\] against \[1, 28, 28\]"),
    ],
    ids=["empty", "strings", "tuple without a tensor first", "a different shape"],
)
def test_a_bad_dataset_is_refused_with_one_clear_error_before_any_attack(
    conv_ae, digits, tmp_path, items, error, message
):
    if items == "shapes":
        items = [digits[i] for i in range(8)]
        items[5] = digits[5][:, :27]
    with pytest.raises(error, match=message):
        generate_dataset(_attack(conv_ae), _Items(items), tmp_path / "out", chunk_size=8, progress=False)
    assert not list(tmp_path.rglob("chunk-*.pt"))


def test_an_iterable_dataset_or_a_list_is_refused_naming_what_is_expected(conv_ae, digits, tmp_path):
    with pytest.raises(TypeError, match=r"data must be a tensor \[N, \.\.\.\] or a map-style .*Dataset.*got list"):
        generate_dataset(_attack(conv_ae), [digits[0]], tmp_path, progress=False)
