"""What AZR programs may not use: the one list of forbidden modules, calls, names and attributes.

AZR tasks must be deterministic, pure functions: no randomness, clock, I/O, processes, introspection or
escape hatches. The reference implementation only checks imports, against ``logging, random, multiprocessing,
pebble, subprocess, threading, datetime, time, hashlib, hmac, bcrypt, os.sys, os.path, sys.exit, os.environ,
calendar`` (``azr_ppo_trainer.yaml``). We check the whole AST (imports, calls, names and dunder attributes),
which is stricter. The sandbox still contains whatever slips through: this list is about task quality
(determinism, no side effects), the sandbox is about safety.

>>> find_forbidden("import os\\ndef f(x): return x")
'import os'
>>> find_forbidden("def f(x): return x.__class__")
'attribute __class__'
>>> find_forbidden("from collections import Counter\\ndef f(s): return Counter(s).most_common(1)") is None
True
"""

from __future__ import annotations

import ast

__all__ = ["FORBIDDEN_ATTRIBUTES", "FORBIDDEN_CALLS", "FORBIDDEN_MODULES", "find_forbidden"]

# Top-level module names (``os.path`` is caught by ``os``). Any module whose name starts with "_" is also
# forbidden (``_thread``, ``_posixsubprocess``, ...), except ``__future__``.
FORBIDDEN_MODULES: frozenset[str] = frozenset(
    {
        # the reference's list (azr_ppo_trainer.yaml), by top-level module
        "logging", "random", "multiprocessing", "pebble", "subprocess", "threading", "datetime", "time",
        "hashlib", "hmac", "bcrypt", "os", "sys", "calendar",
        # processes, threads, async, signals
        "concurrent", "asyncio", "signal", "sched", "selectors", "select", "pty", "resource", "faulthandler",
        # files, I/O, persistence
        "io", "shutil", "pathlib", "tempfile", "glob", "fnmatch", "fileinput", "filecmp", "pickle", "marshal",
        "shelve", "dbm", "sqlite3", "csv", "zipfile", "tarfile", "gzip", "bz2", "lzma", "zlib", "mmap", "fcntl",
        "posix", "nt", "pwd", "grp", "getpass", "platform", "sysconfig", "site", "atexit", "tracemalloc",
        # network
        "socket", "ssl", "urllib", "http", "ftplib", "smtplib", "poplib", "imaplib", "telnetlib", "socketserver",
        "xmlrpc", "email", "webbrowser", "requests", "uuid",
        # nondeterminism, clocks
        "secrets", "timeit", "zoneinfo",
        # introspection and code execution
        "ctypes", "cffi", "importlib", "imp", "pkgutil", "runpy", "inspect", "gc", "builtins", "code", "codeop",
        "pdb", "bdb", "trace", "dis", "types", "weakref", "ast", "traceback", "warnings",
    }
)  # fmt: skip

# Builtins that read or write the outside world, execute strings, or open introspection escape hatches.
FORBIDDEN_CALLS: frozenset[str] = frozenset(
    {
        "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "input", "breakpoint",
        "exit", "quit", "help", "memoryview", "getattr", "setattr", "delattr", "id", "hash",
    }
)  # fmt: skip
# getattr/setattr/delattr/hasattr are allowed only when called with a constant, non-dunder attribute name.
_ATTR_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
# Forbidden only when called: their values differ between machines (id) or depend on the hash seed (hash of
# str/bytes), so a solver could not predict them.
_CALL_ONLY = frozenset({"id", "hash"})
# Harmless names that programs often use as variables (``def f(input): ...``): allowed when the program binds them.
_SHADOWABLE = frozenset({"input", "id", "hash", "help", "exit", "quit"})

# Attributes that lead from any object to globals, frames, code or the class hierarchy.
FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "__class__", "__bases__", "__base__", "__mro__", "__subclasses__", "__globals__", "__builtins__",
        "__code__", "__closure__", "__func__", "__self__", "__dict__", "__getattribute__", "__reduce__",
        "__reduce_ex__", "__loader__", "__spec__", "__import__", "__module__", "__qualname__", "__defaults__",
        "__kwdefaults__", "__traceback__", "__wrapped__", "__init_subclass__", "__subclasshook__", "__new__",
        "__del__", "__setattr__", "__delattr__", "__get__", "__set__", "__file__", "__path__",
        "f_globals", "f_locals", "f_back", "f_builtins", "f_code", "tb_frame", "tb_next", "gi_frame", "gi_code",
        "cr_frame", "cr_code", "ag_frame", "ag_code", "co_code", "func_globals", "mro",
    }
)  # fmt: skip
_FORBIDDEN_NAMES = frozenset({"__builtins__", "__loader__", "__spec__", "__import__", "__file__"})


def _module_forbidden(name: str) -> bool:
    top = name.split(".")[0]
    return top in FORBIDDEN_MODULES or (top.startswith("_") and top != "__future__")


def _bound_names(tree: ast.AST) -> set[str]:
    """Names the program itself binds anywhere (parameters, assignments, loop targets, imports, defs, ...)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def find_forbidden(code: str | ast.AST) -> str | None:
    """The first forbidden construct in ``code`` (e.g. ``'import os'``, ``'call open()'``), or ``None``.

    Raises ``SyntaxError`` (or ``ValueError`` for NUL bytes) when ``code`` does not parse.

    >>> find_forbidden("def f(x):\\n    return eval(x)")
    'call eval()'
    >>> find_forbidden("def f(o):\\n    return getattr(o, '__globals__')")
    "getattr(..., '__globals__')"
    >>> find_forbidden("def f(o):\\n    return getattr(o, 'real')") is None
    True
    >>> find_forbidden("def f(input):\\n    return input + 1") is None  # a parameter, not the builtin
    True
    """
    tree = ast.parse(code) if isinstance(code, str) else code
    shadowed = _SHADOWABLE & _bound_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _module_forbidden(alias.name):
                    return f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                return "relative import"
            if _module_forbidden(node.module or ""):
                return f"import {node.module}"
        elif isinstance(node, ast.Name):
            if node.id in _FORBIDDEN_NAMES:
                return f"name {node.id}"
            if node.id in shadowed:
                continue
            if node.id in FORBIDDEN_CALLS and node.id not in _ATTR_BUILTINS and node.id not in _CALL_ONLY:
                return f"call {node.id}()"
        elif isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_ATTRIBUTES:
                return f"attribute {node.attr}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALL_ONLY:
            if node.func.id not in shadowed:
                return f"call {node.func.id}()"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _ATTR_BUILTINS:
            attr = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                return f"{node.func.id}() with a computed attribute name"
            if attr.value in FORBIDDEN_ATTRIBUTES or attr.value.startswith("__"):
                return f"{node.func.id}(..., {attr.value!r})"
    # getattr & co. used as a value rather than called (e.g. `g = getattr`)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _ATTR_BUILTINS and id(node) not in called:
            return f"name {node.id} (only direct calls are allowed)"
    return None
