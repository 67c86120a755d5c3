"""Adapters that put UAEs into existing frameworks (installed as ``uae_plugin.integrations``).

Adapters import the public core API of :mod:`uae_plugin`; the core never imports them.
"""
