"""The `nfv` command line.

Every user mistake ends in a message and a non-zero exit, never a Python
traceback: config problems print as `file:line:col: error: message` with the
source line and a caret (exit 1); a bug in nfv itself prints one line that
says so (exit 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nfv.errors import ConfigError, ConfigErrors, NfvError, render


def _load(path: str, defines: dict[str, str]):
    from nfv.graph import build_graph
    from nfv.lang.parser import parse_file

    config = parse_file(path)
    return config, build_graph(config, defines)


def _parse_defines(items: list[str]) -> dict[str, str]:
    defines = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise NfvError(f"'{item}': parameters are given as NAME=value")
        defines[name] = value
    return defines


def _report(errors: list[ConfigError], sources: dict[str, str]) -> None:
    for e in errors:
        print(render(e, sources), file=sys.stderr)


def _sources_for(path: str) -> dict[str, str]:
    try:
        return {path: Path(path).read_text(encoding="utf-8", errors="replace")}
    except OSError:
        return {}


def cmd_check(args) -> int:
    defines = _parse_defines(args.define)
    status = 0
    for path in args.files:
        try:
            _, graph = _load(path, defines)
        except ConfigErrors as e:
            _report(e.errors, _sources_for(path))
            n = len(e.errors)
            print(f"{path}: {n} error{'s' if n != 1 else ''}", file=sys.stderr)
            status = 1
            continue
        except ConfigError as e:
            _report([e], _sources_for(path))
            status = 1
            continue
        except NfvError as e:
            print(f"nfv: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: ok, {len(graph.elements)} elements, {len(graph.connections)} connections")
    return status


def cmd_graph(args) -> int:
    from nfv.graph.render import to_click, to_dot

    try:
        _, graph = _load(args.file, _parse_defines(args.define))
    except ConfigErrors as e:
        _report(e.errors, _sources_for(args.file))
        return 1
    except ConfigError as e:
        _report([e], _sources_for(args.file))
        return 1
    text = to_dot(graph) if args.format == "dot" else to_click(graph)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _guarded(path: str, action) -> int:
    """Run action(); config problems print like `nfv check` and give exit 1."""
    try:
        return action()
    except ConfigErrors as e:
        _report(e.errors, _sources_for(path))
        return 1
    except ConfigError as e:
        _report([e], _sources_for(path))
        return 1


def cmd_run(args) -> int:
    defines = _parse_defines(args.define + args.params)
    if args.nics:
        from nfv import live

        if args.inputs or args.outputs:
            raise NfvError("--nic runs on live interfaces; --in/--out run on pcap files: "
                           "use one or the other")
        live.parse_nics(args.nics)   # a mistyped --nic is reported before the compile
        return _guarded(args.config, lambda: live.run(args.config, defines, args.nics,
                                                      args.stats, args.boundscheck))
    from nfv.run import run

    return _guarded(args.config, lambda: run(args.config, defines, args.inputs, args.outputs,
                                             args.stats, args.boundscheck))


def cmd_compile(args) -> int:
    from nfv.compile import compile_graph

    def action():
        _, graph = _load(args.config, _parse_defines(args.define + args.params))
        pipeline = compile_graph(graph, "host")
        if args.emit == "source":
            sys.stdout.write(pipeline.source)
        else:
            print(f"{args.config}: compiled, entry at 0x{pipeline.address:x}, "
                  f"arena {pipeline.plan.arena_size} bytes")
        return 0

    return _guarded(args.config, action)


def cmd_bench(args) -> int:
    from nfv.bench import run

    defines = _parse_defines(args.define + args.params)
    return _guarded(args.config, lambda: run(args.config, defines, args.inputs, args.size,
                                             args.seconds, args.repeat, args.json, args.batch))


def cmd_build(args) -> int:
    from nfv.unikernel.commands import build

    defines = _parse_defines(args.define + args.params)
    return _guarded(args.config, lambda: build(args.config, defines, args.output, args.memory))


def cmd_boot(args) -> int:
    from nfv.unikernel.commands import boot

    return boot(args.image, args.nic, args.memory, args.timeout)


def cmd_up(args) -> int:
    from nfv.unikernel.commands import up

    defines = _parse_defines(args.define + args.params)
    return _guarded(args.config, lambda: up(args.config, defines, args.nic, args.memory,
                                            args.timeout))


def cmd_doc(args) -> int:
    from nfv.element import registry

    classes = registry()
    if not args.element:
        for name in sorted(classes):
            lines = [l.strip() for l in (classes[name].__doc__ or "").strip().splitlines()]
            summary = next((l for l in lines[1:] if l), "")
            print(f"{name:18} {summary}")
        return 0
    cls = classes.get(args.element)
    if cls is None:
        import difflib
        close = difflib.get_close_matches(args.element, list(classes), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise NfvError(f"no element class '{args.element}'{hint}")
    import inspect
    print(inspect.cleandoc(cls.__doc__ or f"{cls.class_name}: no documentation"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nfv", description="Click-language network functions, "
                                     "compiled for the host or a KVM unikernel.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="parse and check configs; errors as file:line:col")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME=value",
                   help="set a define()d parameter, as on Click's command line")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("graph", help="print the flattened graph (Click syntax or Graphviz DOT)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=("click", "dot"), default="click")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME=value")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("run", help="run a config on the host over pcap files or live NICs")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("params", nargs="*", metavar="NAME=value",
                   help="values for define()d parameters, as on Click's command line")
    p.add_argument("--in", dest="inputs", action="append", default=[], metavar="DEV=FILE",
                   help="feed device DEV (a number or name) from a pcap file")
    p.add_argument("--out", dest="outputs", action="append", default=[], metavar="DEV=FILE",
                   help="write what leaves by device DEV to a pcap file")
    p.add_argument("--nic", dest="nics", action="append", default=[],
                   metavar="DEV=tap:NAME|af_packet:IFNAME",
                   help="run live on an interface instead of pcaps: a TAP device (created if "
                        "missing) or an existing interface; stop with Ctrl-C or SIGTERM")
    p.add_argument("--stats", choices=("table", "json"), default="table")
    p.add_argument("--boundscheck", action="store_true",
                   help="compile with bounds checks (slower; for debugging)")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME=value")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compile", help="compile a config; --emit source shows the generated code")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("params", nargs="*", metavar="NAME=value")
    p.add_argument("--emit", choices=("source", "summary"), default="summary")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME=value")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("bench", help="packets/s and ns/packet of a config on the host")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("params", nargs="*", metavar="NAME=value")
    p.add_argument("--in", dest="inputs", action="append", default=[], metavar="DEV=FILE",
                   help="loop this pcap (default: generated UDP frames on the first device)")
    p.add_argument("--size", type=int, default=64, help="generated frame size (default 64)")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each run")
    p.add_argument("--repeat", type=int, default=5, help="runs; the median is reported")
    p.add_argument("--batch", type=int, default=256, help="packets per pipeline call")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME=value")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("build", help="build a config into a unikernel image (ELF, PVH boot)")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("params", nargs="*", metavar="NAME=value")
    p.add_argument("-o", "--output", metavar="IMAGE", help="image file (default CONFIG.elf here)")
    p.add_argument("--memory", default="8M", help="guest RAM it must fit in (default 8M)")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME=value")
    p.set_defaults(func=cmd_build)

    nic_help = ("NIC N of the VM (device N of the config): tcp:PORT (QEMU listens on "
                "127.0.0.1:PORT; frames are a 4-byte big-endian length and the bytes) or "
                "tap:NAME (QEMU creates the tap)")
    p = sub.add_parser("boot", help="boot a unikernel image under QEMU microvm (KVM if present)")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--nic", action="append", default=[], metavar="N=SPEC", help=nic_help)
    p.add_argument("--memory", default="8M", help="guest RAM (default 8M)")
    p.add_argument("--timeout", type=float, help="stop the VM after this many seconds")
    p.set_defaults(func=cmd_boot)

    p = sub.add_parser("up", help="build a config and boot it (nfv build + nfv boot)")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("params", nargs="*", metavar="NAME=value")
    p.add_argument("--nic", action="append", default=[], metavar="N=SPEC", help=nic_help)
    p.add_argument("--memory", default="8M", help="guest RAM (default 8M)")
    p.add_argument("--timeout", type=float, help="stop the VM after this many seconds")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME=value")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("doc", help="element manual: list classes, or show one")
    p.add_argument("element", nargs="?", metavar="ELEMENT")
    p.set_defaults(func=cmd_doc)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NfvError as e:
        print(f"nfv: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug in nfv, not the user's input: one line, exit 2
        print(f"nfv: internal error: {type(e).__name__}: {e} (please report this as a bug)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
