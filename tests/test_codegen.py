"""Code generation on shapes that stress it (no Numba compile: the source alone)."""
from __future__ import annotations

from nfv.compile.codegen import generate
from nfv.compile.plan import make_plan
from nfv.graph import build_graph
from nfv.lang.parser import parse_text


def source_of(text: str) -> str:
    return generate(make_plan(build_graph(parse_text(text, "t.click"))))


def test_a_long_chain_generates_straight_code():
    """3,000 elements in a row: no deep Python recursion, one straight block of calls."""
    n = 3000
    text = "FromDevice(0)" + "".join(" -> Counter" for _ in range(n)) + " -> ToDevice(1);\n"
    source = source_of(text)
    assert source.count("k_standard_counter(pool, meta, i") == n
    compile(source, "pipeline.py", "exec")  # and Python accepts it


def test_branches_nest_and_every_path_ends():
    source = source_of("FromDevice(0) -> c :: Classifier(12/0800, 12/0806, -);\n"
                       "c [0] -> ToDevice(1); c [1] -> Counter -> ToDevice(2); c [2] -> Discard;")
    compile(source, "pipeline.py", "exec")
    for port in (1, 2):
        assert f"meta[i].out_port = {port}" in source
