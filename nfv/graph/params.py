"""`$parameter` expansion in configuration strings, `define(...)` and compound formals.

Values are `ConfigArg`s, so text substituted into a configuration string keeps
the position where the value was written: an error in an expanded argument
points at the value, not at the `$name` that carried it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from nfv.errors import ConfigError, Pos
from nfv.lang.config import ConfigArg, concat, fixed_arg, make_arg, split_args

# A parameter reference, or a single-quoted stretch (skipped whole: no expansion inside).
_NAME_OR_QUOTE = re.compile(r"\$(?:([A-Za-z0-9_]+)|\{([A-Za-z0-9_]+)(?:-([^}]*))?\})|'[^']*'?")


@dataclass
class VarEnv:
    """A scope of parameters; lookups fall back to the enclosing scope."""

    values: dict[str, ConfigArg]
    parent: "VarEnv | None" = None

    def lookup(self, name: str) -> ConfigArg | None:
        env: VarEnv | None = self
        while env is not None:
            if name in env.values:
                return env.values[name]
            env = env.parent
        return None

    def names(self) -> list[str]:
        out, env = [], self
        while env is not None:
            out.extend(env.values)
            env = env.parent
        return out


def expand(arg: ConfigArg, env: VarEnv) -> ConfigArg:
    """Replace `$name`, `${name}` and `${name-default}` outside single quotes."""
    text = arg.text
    if "$" not in text:
        return arg
    pieces: list[ConfigArg] = []
    kept = 0  # text[kept:] not yet copied
    for m in _NAME_OR_QUOTE.finditer(text):
        if m.group(0).startswith("'"):
            continue  # a single-quoted stretch: no expansion inside
        name = "$" + (m.group(1) or m.group(2))
        value = env.lookup(name)
        if value is None and m.group(3) is not None:
            value = arg.slice(m.start(3), m.end(3))
        if value is None:
            known = ", ".join(sorted(set(env.names()))) or "none"
            raise ConfigError(f"undefined parameter {name}", arg.pos_at(m.start()),
                              f"define it with define({name} VALUE) or pass "
                              f"{name[1:]}=VALUE on the command line (defined here: {known})")
        pieces.append(arg.slice(kept, m.start()))
        # A value keeps its own map; one without (an empty value) maps to the `$name`.
        pieces.append(value if value.runs or not value.text else
                      fixed_arg(value.text, arg.pos_at(m.start())))
        kept = m.end()
    if kept == 0:
        return arg
    pieces.append(arg.slice(kept))
    return concat(pieces, arg.fallback)


def read_defines(config: ConfigArg, env: VarEnv, errors: list[ConfigError]):
    """`define($a 1, $b eth0)` -> [('$a', pos of $a, '1'), ...].

    Problems are appended to `errors` and the rest is still read, so one bad
    pair does not make every use of the others "undefined" too.
    """
    out: list[tuple[str, Pos, ConfigArg]] = []
    seen: dict[str, Pos] = {}
    for item in split_args(config):
        m = re.match(r"\$[A-Za-z0-9_]+", item.text)
        rest = item.text[m.end():] if m else ""
        if not m or (rest and not rest[0].isspace()):
            errors.append(ConfigError("define expects '$NAME value' pairs", item.pos,
                                      "write define($DEV 0, $RATE 1000); names are $ followed "
                                      "by letters, digits and '_'"))
            continue
        name = m.group(0)
        if name in seen:
            errors.append(ConfigError(f"parameter {name} defined twice", item.pos,
                                      f"first defined at {seen[name]}"))
            continue
        seen[name] = item.pos
        try:
            out.append((name, item.pos, expand(item.slice(m.end()).strip(), env)))
        except ConfigError as e:
            errors.append(e)
    return out


def command_line_defines(defines: dict[str, str]) -> dict[str, ConfigArg]:
    """NAME=value pairs from the command line, as parameters `$NAME`."""
    start = Pos("<command line>", 1, 1)
    return {("$" + k.lstrip("$")): make_arg(v, start) for k, v in defines.items()}
