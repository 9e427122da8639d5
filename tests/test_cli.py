"""The `nfv` command line, run as a user runs it (a subprocess).

No stderr may ever contain a Python traceback (`run_nfv` checks every call).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import CONFIGS, ROOT, VALID_FILES, build, conns, locate, run_nfv

OK_LINE = re.compile(r"^(?P<file>.+): ok, (?P<n>\d+) elements, (?P<m>\d+) connections$")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- nfv check -------------------------------------------------------------------------


def test_shipped_configs_exist():
    assert len(CONFIGS) >= 2


def test_check_shipped_configs_ok():
    rel = [str(p.relative_to(ROOT)) for p in CONFIGS]
    proc = run_nfv("check", *rel)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == len(rel)
    for path, line in zip(rel, lines):
        m = OK_LINE.match(line)
        assert m, line
        assert m["file"] == path
        g = build(Path(ROOT, path).read_text(), file=path)
        assert (int(m["n"]), int(m["m"])) == (len(g.elements), len(g.connections))


def test_check_summary_counts_by_hand(tmp_path):
    # 3 named + 2 anonymous elements; 4 connections, counted by hand.
    path = write(tmp_path, "small.click",
                 "a :: FromDevice(0); c :: Classifier(12/0800, -); d :: ToDevice(1);\n"
                 "a -> c -> Counter -> d; c [1] -> Discard;\n")
    proc = run_nfv("check", path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{path}: ok, 5 elements, 4 connections\n"


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: p.name)
def test_check_valid_examples(path):
    proc = run_nfv("check", path)
    assert proc.returncode == 0, proc.stderr
    assert OK_LINE.match(proc.stdout.strip())


def _render_parts(stderr: str):
    return stderr.splitlines()


def test_broken_file_is_rendered_like_a_compiler(tmp_path):
    text, at = locate("// a broken config\n"
                      "src :: FromDevice(0);\n"
                      "src -> Strip(⟨here⟩fourteen) -> Discard;\n")
    path = write(tmp_path, "broken.click", text)
    line, col = at["here"]
    proc = run_nfv("check", path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"{path}:{line}:{col}: error: ")
    assert "byte count" in lines[0]
    source_line = text.splitlines()[line - 1]
    assert lines[1].strip() == source_line.strip()
    # the caret sits under the column, whatever the indentation of the quoted line
    indent = lines[1].index(source_line)
    assert lines[2].rstrip() == " " * (indent + col - 1) + "^"
    assert lines[1][indent + col - 1] == "f"
    assert lines[3].startswith("  hint: ")
    assert "1 error" in proc.stderr


def test_caret_under_the_right_column_after_tabs_and_unicode(tmp_path):
    text, at = locate("\t/* é → */ FromDevice(0) ->\tStrip(⟨here⟩x) -> Discard\n")
    path = write(tmp_path, "tabs.click", text)
    proc = run_nfv("check", path)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    line, col = at["here"]
    assert lines[0].startswith(f"{path}:{line}:{col}: error:")
    quoted, caret = lines[1], lines[2]
    assert len(caret.rstrip()) - 1 < len(quoted)
    assert quoted[len(caret.rstrip()) - 1] == "x"


def test_several_errors_all_rendered_with_count(tmp_path):
    text, at = locate("FromDevice(0) -> Strip(⟨1⟩abc) -> Discard;\n"
                      "FromDevice(1) -> ⟨2⟩nope -> Discard;\n")
    path = write(tmp_path, "two.click", text)
    proc = run_nfv("check", path)
    assert proc.returncode == 1
    heads = [l for l in proc.stderr.splitlines() if ": error: " in l]
    assert [h.split(": error:")[0] for h in heads] == \
        [f"{path}:{at['1'][0]}:{at['1'][1]}", f"{path}:{at['2'][0]}:{at['2'][1]}"]
    assert proc.stderr.rstrip().endswith(f"{path}: 2 errors")


def test_syntax_error_rendered(tmp_path):
    text, at = locate("a :: FromDevice(0)\na -> ⟨here⟩]\n")
    path = write(tmp_path, "syntax.click", text)
    proc = run_nfv("check", path)
    assert proc.returncode == 1
    line, col = at["here"]
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"{path}:{line}:{col}: error: ")


def test_good_and_bad_files_together(tmp_path):
    good = write(tmp_path, "good.click", "FromDevice(0) -> Discard\n")
    bad = write(tmp_path, "bad.click", "FromDevice(0) -> nope\n")
    proc = run_nfv("check", good, bad, good)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [f"{good}: ok, 2 elements, 1 connections"] * 2
    assert f"{bad}:1:18: error: " in proc.stderr


def test_missing_file_is_one_line(tmp_path):
    missing = tmp_path / "nope.click"
    proc = run_nfv("check", missing)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert str(missing) in lines[0]
    assert "no such file" in lines[0].lower()


def test_directory_is_a_clear_error(tmp_path):
    proc = run_nfv("check", tmp_path)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1
    assert str(tmp_path) in proc.stderr
    assert "directory" in proc.stderr.lower()


def test_binary_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bin.click"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x00")
    proc = run_nfv("check", path)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1
    assert str(path) in proc.stderr
    assert "text" in proc.stderr.lower() or "utf-8" in proc.stderr.lower()


def test_nul_byte_in_text_is_a_config_error(tmp_path):
    path = tmp_path / "nul.click"
    path.write_bytes(b"FromDevice(0) -> \x00 Discard\n")
    proc = run_nfv("check", path)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{path}:1:18: error: ")


def test_unreadable_file_is_a_clear_error(tmp_path):
    import os
    if os.geteuid() == 0:
        pytest.skip("root can read anything")
    path = write(tmp_path, "secret.click", "FromDevice(0) -> Discard\n")
    path.chmod(0)
    proc = run_nfv("check", path)
    assert proc.returncode == 1
    assert str(path) in proc.stderr


def test_empty_file_is_ok(tmp_path):
    path = write(tmp_path, "empty.click", "")
    proc = run_nfv("check", path)
    assert proc.returncode == 0
    assert proc.stdout == f"{path}: ok, 0 elements, 0 connections\n"


def test_usage_errors_exit_nonzero_without_traceback():
    for args in ([], ["check"], ["frobnicate"], ["graph"], ["graph", "x", "--format", "svgz"]):
        proc = run_nfv(*args)
        assert proc.returncode != 0
        assert proc.returncode != 1 or proc.stderr
        assert "usage" in proc.stderr.lower()


@pytest.mark.parametrize("text", [
    "FromDevice(0) -> [99999999999999999999] Idle -> Discard\n",
    "FromDevice(0) -> ( input [99999999999999999999] -> output ) -> Discard\n",
    "FromDevice(0) -> ( input [10000000] -> output ) -> Discard\n",
], ids=["element-port", "group-port-overflow", "group-port-large"])
def test_huge_port_numbers_are_quick_errors(tmp_path, text):
    # One absurd port number: a few errors, at once -- not a hang, a crash or "ok".
    path = write(tmp_path, "huge.click", text)
    proc = run_nfv("check", path, timeout=8)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "internal error" not in proc.stderr
    assert len([l for l in proc.stderr.splitlines() if ": error: " in l]) <= 3


# -- defines on the command line -------------------------------------------------------


def test_define_on_the_command_line(tmp_path):
    path = write(tmp_path, "dev.click", "define($DEV 0)\nFromDevice($DEV) -> Discard\n")
    assert run_nfv("check", path).returncode == 0
    proc = run_nfv("graph", path, "-D", "DEV=5")
    assert proc.returncode == 0
    assert re.search(r"FromDevice\(5\)", proc.stdout)
    # a value that is out of range is reported like any other argument error
    bad = run_nfv("check", "-D", "DEV=42", path)
    assert bad.returncode == 1
    assert "42" in bad.stderr and ": error: " in bad.stderr


def test_define_without_file_define(tmp_path):
    path = write(tmp_path, "dev.click", "FromDevice($DEV) -> Discard\n")
    assert run_nfv("check", path).returncode == 1
    proc = run_nfv("check", "--define", "DEV=1", path)
    assert proc.returncode == 0, proc.stderr


def test_malformed_define_is_a_clear_error(tmp_path):
    path = write(tmp_path, "dev.click", "FromDevice(0) -> Discard\n")
    proc = run_nfv("check", "-D", "DEV", path)
    assert proc.returncode == 1
    assert "NAME=value" in proc.stderr or "=" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


# -- nfv graph -------------------------------------------------------------------------


ROUND_TRIP = CONFIGS + VALID_FILES


def _signature(graph):
    return ({n: (el.class_name, tuple(el.config_args())) for n, el in graph.elements.items()},
            conns(graph))


@pytest.mark.parametrize("path", ROUND_TRIP, ids=lambda p: p.name)
def test_graph_click_round_trip(path, tmp_path):
    proc = run_nfv("graph", path, "--format", "click")
    assert proc.returncode == 0, proc.stderr
    flat = write(tmp_path, "flat.click", proc.stdout)
    again = run_nfv("check", flat)
    assert again.returncode == 0, again.stderr + proc.stdout
    original = build(path.read_text(), file=str(path))
    reparsed = build(proc.stdout, file=str(flat))
    assert _signature(reparsed) == _signature(original)
    assert OK_LINE.match(again.stdout.strip())["n"] == str(len(original.elements))
    # flattened output has no compounds, groups or parameters left
    assert "elementclass" not in proc.stdout and "define(" not in proc.stdout
    # and flattening is idempotent
    twice = run_nfv("graph", flat, "--format", "click")
    assert _signature(build(twice.stdout)) == _signature(original)


def test_graph_output_file(tmp_path):
    out = tmp_path / "out.click"
    proc = run_nfv("graph", CONFIGS[0], "-o", out)
    assert proc.returncode == 0 and proc.stdout == ""
    assert _signature(build(out.read_text())) == _signature(build(CONFIGS[0].read_text()))


def test_graph_of_a_broken_file_fails(tmp_path):
    path = write(tmp_path, "b.click", "FromDevice(0) -> nope\n")
    proc = run_nfv("graph", path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"{path}:1:18: error:" in proc.stderr


def test_graph_of_a_missing_file_fails(tmp_path):
    proc = run_nfv("graph", tmp_path / "missing.click", "--format", "dot")
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1


_DOT_NODE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*\[(.*)\];?\s*$')
_DOT_EDGE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*->\s*"((?:[^"\\]|\\.)*)"\s*(\[(.*)\])?;?\s*$')


def _parse_dot(text: str):
    lines = [l for l in text.splitlines() if l.strip()]
    assert re.match(r'^digraph\s+("(?:[^"\\]|\\.)*"|\w+)?\s*\{$', lines[0]), lines[0]
    assert lines[-1].strip() == "}"
    nodes, edges = [], []
    for line in lines[1:-1]:
        if m := _DOT_EDGE.match(line):
            attrs = m[4] or ""
            tail = re.search(r'taillabel="(\d+)"', attrs)
            head = re.search(r'headlabel="(\d+)"', attrs)
            edges.append((m[1], int(tail[1]) if tail else 0, m[2], int(head[1]) if head else 0))
        elif m := _DOT_NODE.match(line):
            nodes.append(m[1])
        else:
            assert re.match(r"^\s*(\w+\s*=\s*\w+|node\s*\[.*\]|edge\s*\[.*\]|graph\s*\[.*\]);?$",
                            line), f"unexpected DOT line: {line!r}"
    return nodes, edges


@pytest.mark.parametrize("path", ROUND_TRIP, ids=lambda p: p.name)
def test_graph_dot_structure(path, tmp_path):
    proc = run_nfv("graph", path, "--format", "dot")
    assert proc.returncode == 0, proc.stderr
    g = build(path.read_text(), file=str(path))
    nodes, edges = _parse_dot(proc.stdout)
    assert sorted(nodes) == sorted(g.elements)          # one node statement per element
    assert len(edges) == len(g.connections)             # one edge per connection
    assert set(edges) == conns(g)
    if shutil.which("dot"):
        svg = subprocess.run(["dot", "-Tsvg"], input=proc.stdout, capture_output=True,
                             text=True, timeout=30)
        assert svg.returncode == 0, svg.stderr
        assert "<svg" in svg.stdout


# -- nfv doc ---------------------------------------------------------------------------


def test_doc_lists_every_class_with_a_summary():
    from nfv.element import registry

    proc = run_nfv("doc")
    assert proc.returncode == 0, proc.stderr
    listed = {}
    for line in proc.stdout.splitlines():
        name, _, summary = line.partition(" ")
        listed[name] = summary.strip()
    assert set(listed) == set(registry())
    for name in ("Counter", "Discard", "FromDevice", "Classifier", "IPFilter"):
        assert name in listed
    empty = [n for n, s in listed.items() if not s]
    assert not empty, f"classes listed without a summary: {empty}"
    assert list(listed) == sorted(listed)


def test_doc_of_one_class():
    proc = run_nfv("doc", "Counter")
    assert proc.returncode == 0
    assert proc.stdout.startswith("Counter(")
    for section in ("Ports", "Handlers", "Example"):
        assert section in proc.stdout


def test_doc_of_unknown_class_is_a_clear_error():
    proc = run_nfv("doc", "Nope")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert "Nope" in proc.stderr


def test_doc_suggests_a_close_name():
    proc = run_nfv("doc", "Countr")
    assert proc.returncode == 1
    assert "Counter" in proc.stderr


# -- internal errors -------------------------------------------------------------------


def test_internal_error_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    import nfv.cli
    import nfv.graph

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(nfv.graph, "build_graph", broken)
    path = write(tmp_path, "ok.click", "FromDevice(0) -> Discard\n")
    assert nfv.cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nfv: internal error:")
    assert "boom" in err and len(err.splitlines()) == 1


def test_python_m_nfv_cli_works():
    import sys
    proc = subprocess.run([sys.executable, "-m", "nfv.cli", "check", str(CONFIGS[0])],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert OK_LINE.match(proc.stdout.strip())
