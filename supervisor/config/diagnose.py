"""``superd --check``'s look at the machine: what a valid config will still fail on.

:func:`diagnose` checks what only the run would otherwise find: a command
that does not exist or is not executable, a ``directory`` that does not exist,
a log file or folder superd cannot write (its own ``log_file`` too), a run
directory it cannot use. A program's command and directory are checked as the
user it will run as; log files as superd's own user (superd opens them). It
also warns about what is probably a mistake: a config with no programs, a
``$$`` that leaves a lone ``$`` where a shell variable was meant.

Nothing here changes the machine: no folder is created, nothing is run.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from .model import Config, InstanceConfig, ProgramConfig
from .problems import Problem, dotted, quote

__all__ = ["diagnose"]

# A "$$" (which superd turns into "$") followed by what cannot start a variable name.
_LONE_DOLLAR = re.compile(r"\$\$(?=[^A-Za-z0-9_{]|$)")


class _User(NamedTuple):
    name: str
    uid: int
    groups: frozenset[int]


def _superd_user() -> _User:
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return _User(name, uid, frozenset((os.getegid(), *os.getgroups())))


def _program_user(program: ProgramConfig, superd: _User) -> _User:
    if program.user is None:
        return superd
    entry = pwd.getpwnam(program.user)  # the config checked that it exists
    return _User(entry.pw_name, entry.pw_uid,
                 frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid)))


def _may(path: str, want: int, user: _User, superd: _User) -> bool:
    """Whether ``user`` may access ``path`` for ``want`` (os.R_OK | W_OK | X_OK)."""
    if user.uid == superd.uid:  # the kernel knows best: ACLs, read-only mounts
        return os.access(path, want, effective_ids=os.access in os.supports_effective_ids)
    try:  # another user (superd is root): the mode bits, and every folder on the way
        folders = [os.path.dirname(path)]
        while folders[-1] != os.path.dirname(folders[-1]):
            folders.append(os.path.dirname(folders[-1]))
        return all(_bits(os.stat(folder), os.X_OK, user) for folder in folders) and \
            _bits(os.stat(path), want, user)
    except OSError:
        return False


def _bits(st: os.stat_result, want: int, user: _User) -> bool:
    if user.uid == 0:
        return not want & os.X_OK or stat.S_ISDIR(st.st_mode) or bool(st.st_mode & 0o111)
    shift = 6 if st.st_uid == user.uid else 3 if st.st_gid in user.groups else 0
    return (st.st_mode >> shift) & want == want


def _who(user: _User, superd: _User) -> str:
    return f"superd (user {user.name})" if user is superd else f"user {user.name}"


def _executable_problem(argv0: str, inst: InstanceConfig, user: _User, superd: _User,
                        environ: Mapping[str, str]) -> str | None:
    """Why ``argv0`` cannot be executed by ``user`` in the instance's folder, or None."""
    if "/" in argv0:
        candidates = [os.path.join(inst.directory or os.getcwd(), argv0)]
    else:
        env = dict(environ) | dict(inst.environment)
        candidates = [os.path.join(folder or ".", argv0) for folder in os.get_exec_path(env)]
        candidates = [c for c in candidates if os.path.isfile(c)]
        if not candidates:
            return f"command {quote(argv0)} not found in PATH ({env.get('PATH', os.defpath)})"
    path = candidates[0]
    if not os.path.exists(path):
        return f"{quote(path)} does not exist"
    if not os.path.isfile(path):
        return f"{quote(path)} is not a file"
    if not any(_may(c, os.X_OK, user, superd) for c in candidates):
        return f"{quote(path)} is not executable by {_who(user, superd)}"
    return None


def _writable_problem(path: str, superd: _User) -> str | None:
    """Why superd could not write (or create, with its folders) the file or folder ``path``."""
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if existing != path and not os.path.isdir(existing):
        return f"cannot create {quote(path)}: {quote(existing)} is not a folder"
    if not _may(existing, os.W_OK | (os.X_OK if os.path.isdir(existing) else 0), superd, superd):
        what = "create" if existing != path else "write"
        return f"superd (user {superd.name}) cannot {what} {quote(path)}" + (
            f" ({quote(existing)} is not writable)" if existing != path else "")
    return None


def _log_paths(inst: InstanceConfig, logs_dir: str) -> Iterator[tuple[str, str]]:
    for which in ("stdout", "stderr"):
        target = getattr(inst, which)
        if target == "auto":
            yield which, os.path.join(logs_dir, f"{inst.name}-{which}.log")
        elif target not in ("console", "null", "stdout", "inherit"):
            yield which, target


def _dollar_warnings(program: ProgramConfig) -> Iterator[Problem]:
    where = f"program.{dotted(program.name)}"
    texts = [(f"command[{i}]", arg) for i, arg in enumerate(program.command)]
    texts += [(f"environment.{dotted(k)}", v) for k, v in program.environment]
    texts += [(f"stop_command[{i}]", arg) for i, arg in enumerate(program.stop_command)]
    for key, text in texts:
        if _LONE_DOLLAR.search(text):
            yield Problem(program.source, f"{where}.{key}", f'{quote(text)}: "$$" becomes a lone "$" '
                          '(superd reads "$$" as a literal "$"); for the shell\'s own $$, write "$$$$"')


def diagnose(cfg: Config, environ: Mapping[str, str] | None = None) -> tuple[list[Problem], list[Problem]]:
    """The problems a run of ``cfg`` would meet on this machine, and the warnings."""
    environ = os.environ if environ is None else environ
    superd = _superd_user()
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if not cfg.programs:
        warnings.append(Problem(cfg.path, "", "no programs: superd would supervise nothing "
                                "(add a [program.NAME] table with a command)"))
    for program in cfg.programs:
        warnings += _dollar_warnings(program)
    logs: dict[str, tuple[str | None, str]] = {}  # path -> where it is set
    for inst in cfg.instances:
        program = inst.program
        where = f"program.{dotted(program.name)}"
        user = _program_user(program, superd)
        if inst.directory is not None:
            if not os.path.isdir(inst.directory):
                problems.append(Problem(program.source, f"{where}.directory",
                                        f"the folder {quote(inst.directory)} does not exist"))
                continue  # the command is looked for in it
            if not _may(inst.directory, os.X_OK, user, superd):
                problems.append(Problem(program.source, f"{where}.directory",
                                        f"{_who(user, superd)} cannot enter {quote(inst.directory)}"))
                continue
        why = _executable_problem(inst.command[0], inst, user, superd, environ)
        if why:
            problems.append(Problem(program.source, f"{where}.command", why))
        for which, path in _log_paths(inst, cfg.daemon.logs_dir):
            if getattr(inst, which) == "auto":  # one check of the folder for them all
                logs.setdefault(cfg.daemon.logs_dir, (cfg.path, "superd.logs_dir"))
            else:
                logs.setdefault(path, (program.source, f"{where}.{which}"))
    for path, (file, key) in logs.items():
        why = _writable_problem(path, superd)
        if why:
            problems.append(Problem(file, key, why))
    if cfg.path is not None:
        why = _writable_problem(cfg.daemon.run_dir, superd)
        if why:
            problems.append(Problem(cfg.path, "superd.run_dir", why))
    if cfg.daemon.log_file:
        why = _log_file_problem(cfg.daemon.log_file, superd)
        if why:
            problems.append(Problem(cfg.path, "superd.log_file", why))
    return problems, warnings


def _log_file_problem(path: str, superd: _User) -> str | None:
    """Why superd could not write its own log file (it creates the file, not its folder)."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        return f"the folder {quote(folder)} does not exist (superd creates the file, not its folder)"
    if os.path.isdir(path):
        return f"{quote(path)} is a folder: expected a file path"
    return _writable_problem(path, superd)
