"""The variables a model's ``environment`` may not set for its worker: those that make a process load code
or change how Python or the dynamic linker start. Set them in the server's own environment instead,
which workers inherit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BLOCKED_PREFIXES = {
    "LD_": "the dynamic linker loads libraries named by LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT",
    "DYLD_": "macOS's dynamic linker loads libraries named by DYLD_INSERT_LIBRARIES, DYLD_LIBRARY_PATH",
    "PYTHON": "Python reads them at start-up: PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, PYTHONUSERBASE, "
    "PYTHONBREAKPOINT name code it imports or runs",
    "BASH_FUNC_": "bash defines functions from them, which can replace commands",
    "GIT_": "git runs the commands GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_CONFIG_* name",
}
BLOCKED_NAMES = {
    "PATH": "where the programs a worker starts are looked up",
    "HOME": "Python finds the user site-packages there (their .pth files run at start-up)",
    "GLIBC_TUNABLES": "tunes glibc's dynamic linker as it starts",
    "GCONV_PATH": "glibc's iconv loads converter modules from it",
    "OPENSSL_CONF": "an OpenSSL config can load engines and providers (shared libraries)",
    "OPENSSL_ENGINES": "OpenSSL loads engines from it",
    "OPENSSL_MODULES": "OpenSSL loads providers from it",
    "BASH_ENV": "bash runs this file before a script",
    "ENV": "sh runs this file as it starts",
    "SHELLOPTS": "with PS4, makes bash run a command on every line",
    "PS4": "bash expands (and runs commands in) it when tracing",
    "PERL5LIB": "Perl loads modules from it",
    "PERLLIB": "Perl loads modules from it",
    "PERL5OPT": "Perl takes options (-M: load a module) from it",
    "RUBYLIB": "Ruby loads libraries from it",
    "RUBYOPT": "Ruby takes options (-r: require a library) from it",
    "NODE_OPTIONS": "Node.js takes options (--require) from it",
    "NODE_PATH": "Node.js loads modules from it",
    "JAVA_TOOL_OPTIONS": "the JVM takes options (-javaagent) from it",
    "_JAVA_OPTIONS": "the JVM takes options (-javaagent) from it",
    "JDK_JAVA_OPTIONS": "the java launcher takes options (-javaagent) from it",
}


def refusal(name: str) -> str | None:
    """Why ``name`` may not be set in a model's ``environment``, or ``None`` when it may."""
    if not name or "=" in name or "\0" in name:
        return "not a valid variable name"
    upper = name.upper()  # Windows ignores case
    if upper in BLOCKED_NAMES:
        return BLOCKED_NAMES[upper]
    return next((reason for prefix, reason in BLOCKED_PREFIXES.items() if upper.startswith(prefix)), None)


def check_environment(environment: Mapping[Any, object]) -> tuple[str, str] | None:
    """The first variable of ``environment`` that may not be set, and why; ``None`` when all may.

    Keys of any type (a parsed YAML file's) are read as strings; ``Any`` because Mapping's key type is
    invariant, so ``Mapping[object, object]`` would not accept a ``dict[str, str]``."""
    for key, value in environment.items():
        name = str(key)
        if (reason := refusal(name)) is not None:
            return name, f"'{name}' may not be set for a worker: {reason} (see docs/security.md)"
        if isinstance(value, str) and "\0" in value:
            return name, f"'{name}': a value may not contain a NUL character"
    return None
