"""The embedded default: an AWS emulator in this process and a local gateway that runs the app.

Release code asks `local_urls(project, env)` for an environment's API and site URLs: the
gateway's when the project talks to the emulator, None on AWS. Importing this package does
not import moto (an optional dependency).
"""

from __future__ import annotations

from .emulator import gateway_url, local_endpoint, local_urls

__all__ = ["gateway_url", "local_endpoint", "local_urls"]
