"""The attack's gradient in one backward pass (uae_plugin.iterate) equals autograd through the whole objective.

``ScoredIterate.gradient(c)`` hands autograd the criterion's closed-form output gradient (Reconstruction) and
the Gaussian MI's closed-form pair gradient, added in place where the pairs are the iterate itself. Here it is
checked against ``grad_x' sum_i (c_i max(f_i, 0) + s I_i)`` built the long way: the gap from ``task_loss``
and the MI from the estimator's autograd node (or MINE's graph), on real digits, for every path through it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from uae_plugin import Classification, Contrastive, Criterion, MinMaxAttack, Reconstruction
from uae_plugin.criteria import Evaluation
from uae_plugin.iterate import IterateScorer
from uae_plugin.rng import SampleRandom, content_keys


def _scorer(attack: MinMaxAttack, x: torch.Tensor, y=None, seed: int = 0) -> IterateScorer:
    return attack.scorer(x, y, SampleRandom(seed, content_keys(x)), seed)


def _long_way(scorer: IterateScorer, iterate: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``grad sum_i (c_i relu(f_i) + s I_i)`` by autograd through task_loss / evaluate and the MI's graph."""
    point = iterate.detach().requires_grad_(True)
    adv = point.to(scorer.dtype)
    crit = scorer.criterion
    if isinstance(crit, (Reconstruction, _CentreError)):
        gap = crit.task_loss(adv, scorer.state) - scorer.state["clean"]
    else:
        gap = crit.evaluate(adv, scorer.state).gap
    mi = scorer.estimator.bound(scorer.clean_pairs, scorer.pairs(adv), step=1)
    objective = (c * torch.relu(gap)).sum() + scorer.mi_sign * mi.sum()
    return torch.autograd.grad(objective, point)[0]


def _iterate(x: torch.Tensor, eps: float = 0.1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.clamp(x.float() + eps * (2 * torch.rand(x.shape, generator=g) - 1), 0, 1)


def _c(batch: int) -> torch.Tensor:
    return torch.linspace(0.5, 3.0, batch)


CASES = {
    "projection pairs (added in place)": lambda m: (Reconstruction(m["dense"]), {}),
    "conv pairs (through the convolution)": lambda m: (Reconstruction(m["conv"]), {"similarity": "conv"}),
    "no MI": lambda m: (Reconstruction(m["dense"]), {"mi_weight": 0.0}),
    "MI weight 0.3": lambda m: (Reconstruction(m["conv"]), {"mi_weight": 0.3}),
    "MINE (its graph)": lambda m: (Reconstruction(m["dense"]), {"estimator": "mine"}),
}


@pytest.fixture(scope="module")
def models(conv_ae, dense_ae):
    return {"conv": conv_ae.eval(), "dense": dense_ae.eval()}


@pytest.mark.parametrize("case", list(CASES))
def test_one_backward_pass_equals_autograd_through_the_objective(case, models, digits):
    crit, settings = CASES[case](models)
    x = digits[:12]
    scorer = _scorer(MinMaxAttack(crit, seed=0, **settings), x)
    iterate = _iterate(x)
    want = _long_way(scorer, iterate, _c(12))
    got = scorer(iterate, 0, graph=True).gradient(_c(12))
    assert got.shape == x.shape and got.dtype == torch.float32
    assert float(want.abs().max()) > 0
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_a_float64_model_and_channels_last_input_take_the_general_path(dense_ae, conv_ae, digits):
    wide = type(dense_ae)().double()
    wide.load_state_dict({k: v.double() for k, v in dense_ae.state_dict().items()})
    x = digits[:6].double()
    scorer = _scorer(MinMaxAttack(Reconstruction(wide.eval()), seed=0), x)
    iterate = _iterate(x)
    torch.testing.assert_close(
        scorer(iterate, 0, graph=True).gradient(_c(6)), _long_way(scorer, iterate, _c(6)), rtol=1e-4, atol=1e-6
    )
    x = digits[:6].contiguous(memory_format=torch.channels_last)
    scorer = _scorer(MinMaxAttack(Reconstruction(conv_ae.eval()), seed=0), x)
    iterate = _iterate(x).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(
        scorer(iterate, 0, graph=True).gradient(_c(6)), _long_way(scorer, iterate, _c(6)), rtol=1e-4, atol=1e-6
    )


def test_criteria_without_a_closed_form_are_differentiated_from_their_gap(classifier, digits, mnist):
    encoder = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 13 * 13, 8))
    for crit, y in ((Contrastive(encoder, n_views=3), None), (Classification(classifier.eval()), mnist["y_test"][:4])):
        x = digits[:4]
        scorer = _scorer(MinMaxAttack(crit, seed=0, estimator="gaussian"), x, y)
        iterate = _iterate(x)
        torch.testing.assert_close(
            scorer(iterate, 0, graph=True).gradient(_c(4)), _long_way(scorer, iterate, _c(4)), rtol=1e-4, atol=1e-6
        )


def test_gaps_at_or_below_zero_contribute_nothing_and_a_constant_model_gives_the_mi_gradient_alone(digits):
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.full((1, 1, 28, 28), 0.5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand_as(x)

    x = digits[:5]
    scorer = _scorer(MinMaxAttack(Reconstruction(Constant()), seed=0), x)
    iterate = _iterate(x)
    scored = scorer(iterate, 0, graph=True)
    assert torch.equal(scored.evaluation.gap, torch.zeros(5))  # the output never moves: every gap is 0
    want = scorer.estimator.bound_and_gradient(scorer.clean_pairs, iterate.reshape(5, 1, -1), scale=1.0)[1](None)
    torch.testing.assert_close(scored.gradient(_c(5)), want.reshape(x.shape))


def test_the_last_iterate_is_scored_without_a_graph(models, digits):
    scorer = _scorer(MinMaxAttack(Reconstruction(models["conv"]), seed=0), digits[:4])
    scored = scorer(_iterate(digits[:4]), 3, graph=False)
    assert not scored.point.requires_grad and scored.mi_output is None and scored.mi_grad is None
    assert not scored.evaluation.output.requires_grad


class _CentreError(Criterion):
    """A user's own criterion: the squared error on the 14 x 14 centre of the image only. ``closed_form`` also
    hands over ``d gap / d output`` (2 (g(x') - x) on the centre, 0 elsewhere), as Reconstruction does."""

    def __init__(self, model: nn.Module, closed_form: bool) -> None:
        super().__init__(model)
        self.closed_form = closed_form

    def prepare(self, x, y, seed):
        with torch.no_grad():
            return {"x": x, "clean": self._centre_error(x, self._forward(x, first=True))}

    @staticmethod
    def _centre_error(x, out):
        return (out - x)[..., 7:21, 7:21].square().flatten(1).sum(1)

    def task_loss(self, x_adv, state):
        return self._centre_error(state["x"], self._forward(x_adv))

    def evaluate(self, x_adv, state):
        if not self.closed_form:
            gap = self.task_loss(x_adv, state) - state["clean"]
            return Evaluation(gap, gap.detach() <= 0)
        out = self._forward(x_adv)
        diff = torch.zeros_like(out.detach())
        diff[..., 7:21, 7:21] = (out.detach() - state["x"])[..., 7:21, 7:21]
        gap = diff.square().flatten(1).sum(1) - state["clean"]
        return Evaluation(gap, gap <= 0, output=out, output_grad=diff, output_grad_scale=2.0)


def test_a_criterion_of_ones_own_works_with_its_gap_alone_or_with_its_output_gradient(conv_ae, digits):
    x = digits[:10]
    plain = MinMaxAttack(_CentreError(conv_ae.eval(), closed_form=False), steps=15, seed=3)(x)
    closed = MinMaxAttack(_CentreError(conv_ae.eval(), closed_form=True), steps=15, seed=3)(x)
    assert plain.success.any()
    assert torch.equal(plain.success, closed.success)
    torch.testing.assert_close(closed.adv, plain.adv, rtol=0, atol=1e-4)
    torch.testing.assert_close(closed.gap, plain.gap, rtol=1e-3, atol=1e-5)
    for crit in (_CentreError(conv_ae.eval(), closed_form=False), _CentreError(conv_ae.eval(), closed_form=True)):
        scorer = _scorer(MinMaxAttack(crit, seed=0), x)
        iterate = _iterate(x)
        torch.testing.assert_close(
            scorer(iterate, 0, graph=True).gradient(_c(10)), _long_way(scorer, iterate, _c(10)), rtol=1e-4, atol=1e-6
        )


class _Linear(Criterion):
    """``gap = <v, h(x')> - <v, h(x)> + margin``: ``d gap / d h = v``, one tensor kept in the state and handed back
    at every step (``mode``: "autograd", "kept", or the malformed "flat" and "missing")."""

    def __init__(self, encoder: nn.Module, mode: str, margin: float = 10.0) -> None:
        super().__init__(encoder)
        self.mode, self.margin = mode, margin

    def prepare(self, x, y, seed):
        with torch.no_grad():
            h = self._forward(x, first=True)
        v = torch.randn(h.shape[1:], generator=torch.Generator().manual_seed(0))
        return {"v": v, "grad": v.expand_as(h).clone(), "clean": (h * v).flatten(1).sum(1)}

    def task_loss(self, x_adv, state):
        return (self._forward(x_adv) * state["v"]).flatten(1).sum(1)

    def evaluate(self, x_adv, state):
        h = self._forward(x_adv)
        gap = (h * state["v"]).flatten(1).sum(1) - state["clean"] + self.margin
        if self.mode == "autograd":
            return Evaluation(gap, gap.detach() <= 0)
        grad = {"kept": state["grad"], "flat": state["grad"].flatten(1), "missing": None}[self.mode]
        return Evaluation(gap.detach(), gap.detach() <= 0, output=h, output_grad=grad)


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3, 2, 1)).eval()


def test_an_output_gradient_the_criterion_keeps_and_hands_back_every_step_is_not_changed(encoder, digits):
    x = digits[:8]
    kept = _Linear(encoder, "kept")
    state = {}
    prepare = kept.prepare
    kept.prepare = lambda *args: state.update(prepare(*args)) or state
    by_output = MinMaxAttack(kept, seed=0, steps=20)(x)
    by_gap = MinMaxAttack(_Linear(encoder, "autograd"), seed=0, steps=20)(x)
    assert torch.equal(state["grad"], state["v"].expand_as(state["grad"]))
    assert torch.equal(by_output.success, by_gap.success)
    torch.testing.assert_close(by_output.adv, by_gap.adv, rtol=0, atol=1e-4)


def test_a_malformed_output_gradient_is_refused_naming_the_field(encoder, digits):
    with pytest.raises(ValueError, match=r"output_grad has shape \(4, 196\) and output \(4, 4, 7, 7\)"):
        MinMaxAttack(_Linear(encoder, "flat"), seed=0, steps=2)(digits[:4])
    with pytest.raises(ValueError, match="output is set but output_grad is not"):
        MinMaxAttack(_Linear(encoder, "missing"), seed=0, steps=2)(digits[:4])


def test_a_gap_without_a_graph_is_warned_about(encoder, digits):
    class Detached(_Linear):
        def evaluate(self, x_adv, state):
            ev = super().evaluate(x_adv, state)
            return Evaluation(ev.gap.detach(), ev.success)

    with pytest.warns(UserWarning, match="carries no graph back to x'"):
        MinMaxAttack(Detached(encoder, "autograd"), seed=0, steps=2)(digits[:4])
