"""Fixtures for the agent's tests: the container drivers' harness (see drivers_harness.py)."""
from drivers_harness import docker_images, harness, image_archives, runc_data  # noqa: F401
