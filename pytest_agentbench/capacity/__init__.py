"""Capacity: cost models, GPU sizing, and sweeps of N concurrent developers against one server."""
