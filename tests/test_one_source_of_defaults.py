"""The core's settings are the one source of defaults: every adapter and the command line use them."""

from dataclasses import fields

import pytest

from uae_plugin import DEFAULT, MinMaxAttack, Reconstruction
from uae_plugin.cli import build_parser
from uae_plugin.integrations.kornia import RandomUAE
from uae_plugin.integrations.lightly import UAETransform
from uae_plugin.integrations.torchattacks import UAE, MINEAttack


def _same_as_core(settings, maximize_mi=False):
    differ = {
        f.name: (getattr(settings, f.name), getattr(DEFAULT, f.name))
        for f in fields(DEFAULT)
        if f.name != "estimator" and getattr(settings, f.name) != getattr(DEFAULT, f.name)
    }
    assert differ == {}
    assert settings.estimator == ("mine" if maximize_mi else "gaussian")


def test_the_core_attack(conv_ae):
    _same_as_core(MinMaxAttack(Reconstruction(conv_ae)).settings)


def test_torchattacks_adapters(conv_ae, classifier):
    uae = UAE(conv_ae)
    _same_as_core(uae._minmax.settings)
    assert (uae.eps, uae.steps, uae.mine_steps) == (DEFAULT.eps, DEFAULT.steps, DEFAULT.mine_steps)
    _same_as_core(MINEAttack(classifier)._minmax.settings, maximize_mi=True)


def test_kornia_and_lightly_adapters(conv_ae):
    import timm

    _same_as_core(RandomUAE(conv_ae)._attack.settings)
    encoder = timm.create_model("resnet10t", in_chans=1, num_classes=0, pretrained=False)
    _same_as_core(UAETransform(encoder).attack.settings)


@pytest.mark.parametrize("option", ["--eps", "--steps", "--mine-steps", "--mi-weight"])
def test_the_command_line_states_the_core_default(option):
    gen = build_parser()._subparsers._group_actions[0].choices["generate"]
    action = next(a for a in gen._actions if option in a.option_strings)
    assert action.default is None  # None: the preset's value
    value = getattr(DEFAULT, option.lstrip("-").replace("-", "_"))
    assert f"{value:g}" in action.help
