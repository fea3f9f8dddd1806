"""``superd import-supervisord``: a supervisord.conf (with includes and groups)
read, converted to superd's keys with a warning for what cannot carry over,
and written out as TOML."""
