"""The configuration: TOML in, frozen dataclasses out.

The model, the key tables and their checks, loading with includes, variable
expansion and numprocs instances, the dependency graph checks and the diff a
reload applies. A program's stop plan (its steps and total time) is built
here and nowhere else. Every problem is reported with its file and dotted key.
"""
