"""The ``superd`` and ``superctl`` commands' entry points.

superd's import package is named ``supervisor``, like supervisord's. When both
are installed in one environment (or a supervisord earlier on ``sys.path``
wins), importing superd fails; these entry points say so in one line instead
of an ImportError traceback. Kept tiny: superctl starts through it.
"""

import sys


def _load(module: str):
    try:
        return __import__(module, fromlist=["main"]).main
    except ImportError as exc:
        package = sys.modules.get("supervisor")
        where = getattr(package, "__file__", None) or "?"
        if package is not None and getattr(package, "__version__", None) is None:
            sys.stderr.write(
                f"{module.rsplit('.', 1)[-1]}: the Python package 'supervisor' found at {where} is "
                "supervisord's, not superd's (both use that import name): install superd in an "
                "environment of its own, e.g. with: pipx install superd\n")
            sys.exit(1)
        raise


def superd() -> None:
    _load("supervisor.cli.superd")()


def superctl() -> None:
    _load("supervisor.cli.superctl")()
