import pytest
import torch
from torch import nn

from uae_plugin import Classification, MinMaxAttack, Reconstruction
from uae_plugin.experiments.models import ConvAutoencoder


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_attack_leaves_model_parameters_bit_identical(conv_ae, digits):
    before = _snapshot(conv_ae)
    MinMaxAttack(Reconstruction(conv_ae), steps=5, seed=0)(digits[:8])
    after = conv_ae.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_attack_leaves_existing_gradients_untouched(digits):
    model = ConvAutoencoder()
    model(digits[:2]).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    MinMaxAttack(Reconstruction(model), steps=3, seed=0)(digits[:4])
    assert all(torch.equal(p.grad, grads[n]) for n, p in model.named_parameters())


def test_attack_creates_no_gradients(digits):
    model = ConvAutoencoder()
    MinMaxAttack(Reconstruction(model), steps=3, seed=0)(digits[:4])
    assert all(p.grad is None for p in model.parameters())


def test_attack_restores_mixed_training_and_requires_grad_flags(digits):
    model = ConvAutoencoder().train()
    model.decoder.eval()
    model.encoder[0].weight.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    MinMaxAttack(Reconstruction(model), steps=3, seed=0)(digits[:4])
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags


class _FailsOnSecondCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = ConvAutoencoder()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("model failure")
        return self.inner(x)


def test_flags_are_restored_when_the_attack_raises(digits):
    model = _FailsOnSecondCall().train()
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(RuntimeError, match="model failure"):
        MinMaxAttack(Reconstruction(model), steps=3, seed=0)(digits[:4])
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags


def test_model_runs_in_eval_mode_during_the_attack_by_default(digits):
    seen = []
    model = ConvAutoencoder().train()
    model.register_forward_pre_hook(lambda m, inp: seen.append(m.training))
    MinMaxAttack(Reconstruction(model), steps=2, seed=0)(digits[:2])
    assert seen and not any(seen)
    assert model.training


def test_supervised_attack_leaves_classifier_bit_identical(classifier, mnist):
    before = _snapshot(classifier)
    MinMaxAttack(Classification(classifier), eps=0.3, steps=5, seed=0)(mnist["x_test"][:8], mnist["y_test"][:8])
    assert all(torch.equal(before[k], v) for k, v in classifier.state_dict().items())


def test_attack_runs_under_cpu_autocast_and_keeps_bounds(conv_ae, digits):
    x = digits[:8]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        res = MinMaxAttack(Reconstruction(conv_ae), eps=0.3, steps=5, seed=0)(x)
    assert res.adv.dtype == x.dtype and res.mi.dtype == torch.float32
    assert torch.isfinite(res.mi).all() and torch.isfinite(res.gap).all()
    assert float((res.adv - x).abs().max()) <= 0.3 + 1e-6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_follows_the_input_on_cuda(conv_ae, digits):
    model = ConvAutoencoder().cuda()
    res = MinMaxAttack(Reconstruction(model), steps=3, seed=0)(digits[:4].cuda())
    assert res.adv.device.type == "cuda" and res.success.device.type == "cuda"
    cpu = MinMaxAttack(Reconstruction(model.cpu()), steps=3, seed=0)(digits[:4])
    assert torch.allclose(res.adv.cpu(), cpu.adv, atol=1e-3)


def test_train_mode_attack_restores_batch_norm_running_statistics(digits):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 3, padding=1), nn.Sigmoid())
    before = _snapshot(model)
    MinMaxAttack(Reconstruction(model), steps=3, seed=0, model_training=True)(digits[:4])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
