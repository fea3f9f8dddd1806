"""supervisord's process names: ``process_name`` templates and ``numprocs_start``.

A template is Python %-formatting, as supervisord reads it, with
supervisord's fields: ``program_name``, ``process_num`` (from
``numprocs_start``), ``numprocs``, ``group_name`` (the program's group),
``host_node_name``, ``here`` (the folder of the file the program is in) and
``ENV_X`` for a variable of the program's ``environment`` or of superd's own
environment. What the template gives is then ``${}``-expanded like the rest
of the config (:mod:`.instances`), so ``${SUPERD_PROCESS_NUM}`` works too.

Without a template, an instance is named after its program, or
``{program}_{num}`` when there are several.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .checks import string
from .model import ProgramConfig
from .problems import Invalid, Problem, quote

#: The fields a template may name besides ``ENV_X``; the first two are numbers.
FIELDS = ("process_num", "numprocs", "program_name", "group_name", "host_node_name", "here")
NUMBERS = FIELDS[:2]
#: How a template, or its ${} form, varies by the instance's number.
NUMBER_REFERENCES = ("%(process_num)", "${SUPERD_PROCESS_NUM}", "${SUPERD_PROCESS_NUM:-")

# A "%" as Python's % operator reads it: "%%", "%(key)...", or anything else (refused).
_PERCENT_RE = re.compile(r"%(?:(?P<percent>%)|\((?P<key>[^()]*)\))?")


class _Fields(dict):
    """The values a template is formatted with; ``ENV_X`` looked up in ``env``."""

    def __init__(self, values: Mapping[str, Any], env: Mapping[str, str]) -> None:
        super().__init__(values)
        self.env = env

    def __missing__(self, key: str) -> str:
        if key.startswith("ENV_") and key[4:] in self.env:
            return self.env[key[4:]]
        raise KeyError(key)


class _AnyVariable(dict):
    """Every ``ENV_X`` exists, as a string: what a template is checked with."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return "x"


def check_template(value: Any) -> str:
    """The ``process_name`` key: a template whose fields exist and whose formats fit them."""
    text = string(value)
    if "${SUPERD_PROCESS_NAME" in text:
        raise Invalid("${SUPERD_PROCESS_NAME} is the name process_name gives: it cannot be part of it")
    for match in _PERCENT_RE.finditer(text):
        key = match["key"]
        if match["percent"]:
            continue
        if key is None:
            raise Invalid(f'a lone "%" in {quote(text)}: write "%%" for a literal "%", or '
                          "%(field)s for a field")
        if key not in FIELDS and not (key.startswith("ENV_") and len(key) > 4):
            raise Invalid(f"unknown field %({key}) in {quote(text)}: expected "
                          + ", ".join(f"%({field})" for field in FIELDS) + " or %(ENV_NAME)")
    sample = _Fields({field: 0 if field in NUMBERS else "x" for field in FIELDS}, _AnyVariable())
    try:
        text % sample
    except (TypeError, ValueError) as e:
        raise Invalid(f"cannot format {quote(text)}: {e} (process_num and numprocs are numbers, "
                      "the other fields strings)") from None
    return text


def varies_by_number(template: str) -> bool:
    """Whether the template names the instance's number (supervisord's own test)."""
    return any(reference in template for reference in NUMBER_REFERENCES)


def check_naming(values: Mapping[str, Any], where: str, file: str | None, problems: list[Problem]) -> None:
    """Several instances need a ``process_name`` that differs from one to the next; one
    that does not is reported and dropped (the names clash once, not once an instance)."""
    template = values.get("process_name")
    if template is not None and values.get("numprocs", 1) > 1 and not varies_by_number(template):
        del values["process_name"]
        problems.append(Problem(file, f"{where}.process_name", f"{quote(template)} does not vary by process "
                                "number, so every one of the numprocs instances would have the same name: "
                                "put %(process_num)d (or ${SUPERD_PROCESS_NUM}) in it"))


def escape(text: str) -> str:
    """Literal text as a ${}-expanded string says it."""
    return text.replace("$", "$$")


def fill(program: ProgramConfig, num: int, group: str, here: str, environ: Mapping[str, str]) -> str:
    """Instance ``num``'s ``process_name``, formatted: a string to ${}-expand
    (the literal values in it escaped, the program's environment as written).

    Raises :class:`Invalid` for an ``ENV_X`` that names no variable."""
    fields = {"process_num": num, "numprocs": program.numprocs, "program_name": escape(program.name),
              "group_name": escape(group), "host_node_name": escape(os.uname().nodename), "here": escape(here)}
    try:
        return str(program.process_name) % _Fields(fields, _Variables(dict(program.environment), environ))
    except KeyError as e:
        raise Invalid(f"%({e.args[0]}) names no variable: {quote(str(e.args[0])[4:])} is neither in the "
                      "program's environment nor in superd's") from None


class _Variables(Mapping[str, str]):
    """``ENV_X``: the program's environment as written, else superd's, escaped."""

    def __init__(self, program: Mapping[str, str], environ: Mapping[str, str]) -> None:
        self.program, self.environ = program, environ

    def __getitem__(self, name: str) -> str:
        if name in self.program:
            return self.program[name]
        return escape(self.environ[name])

    def __contains__(self, name: object) -> bool:
        return name in self.program or name in self.environ

    def __iter__(self):
        return iter({**self.environ, **self.program})

    def __len__(self) -> int:
        return len({**self.environ, **self.program})
