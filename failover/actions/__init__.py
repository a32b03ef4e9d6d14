"""Playbook actions, one module each, registered by name in ``ACTIONS``."""
