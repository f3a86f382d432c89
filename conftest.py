"""Repo-root conftest for running the built-in packet suite from a checkout.

The plugin itself is registered through the ``pytest11`` entry point; nothing
here is needed by users, whose folders hold only packets and a models.yaml.
"""
