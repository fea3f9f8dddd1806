"""``superd import-supervisord``: a supervisord.conf (with includes and groups)
read, converted to superd's keys with a warning for what cannot carry over,
and written out as TOML. Stdlib only, plus superd's own config checks, which
every value written must pass."""

from .cli import main
from .conversion import Conversion, convert
from .ini import InputError
from .tomlwrite import to_toml

__all__ = ["Conversion", "InputError", "convert", "main", "to_toml"]
