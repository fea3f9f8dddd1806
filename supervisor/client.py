"""The Python client's public name: ``from supervisor.client import Client``.

The client lives in :mod:`supervisor.control.client`; this module keeps the
import path the README documents.
"""

from .control.client import *  # noqa: F401,F403
from .control.client import __all__  # noqa: F401
