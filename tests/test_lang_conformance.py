"""Conformance of the Click-language front end with Click's click.5 manual.

Every construct of the language is parsed and flattened, and the resulting
graph is compared with one derived by hand from the manual: element names
(`outer/inner` for compound components, `Class@N` for anonymous elements),
classes, configuration arguments and the exact set of connections
`(src, src_port, dst, dst_port)`.
"""
from __future__ import annotations

import re

import pytest

from conftest import (FILE, VALID_FILES, anon_names, args_of, build, classes, conns,
                      errors_of, locate, only_anon)
from nfv.errors import Pos
from nfv.lang.config import make_arg, split_args


# -- comments --------------------------------------------------------------------------


def test_line_comment_ends_an_identifier():
    # click.5: "an/identifier/with/slashes//too/many" is an identifier and a comment.
    g = build("an/identifier/with/slashes//too/many\n"
              "  :: Counter;\n"
              "Idle -> an/identifier/with/slashes -> Discard")
    assert classes(g)["an/identifier/with/slashes"] == "Counter"
    assert "an/identifier/with/slashes//too/many" not in g.elements


def test_comment_glued_to_tokens():
    g = build("a/*c*/::/*c*/Counter/*c*/;Idle/**/->a//x\n->Discard")
    idle, discard = only_anon(g, "Idle"), only_anon(g, "Discard")
    assert classes(g)["a"] == "Counter"
    assert conns(g) == {(idle, 0, "a", 0), ("a", 0, discard, 0)}


def test_comments_everywhere_between_tokens():
    g = build("/* head */ x /* a */ :: /* b */ Counter /* c */ ; // end\n"
              "Idle // one\n"
              "  -> /* two */ [0] /* three */ x /* four */ [0] // five\n"
              "  -> Discard /* last, unterminated by newline */")
    assert conns(g) == {(only_anon(g, "Idle"), 0, "x", 0), ("x", 0, only_anon(g, "Discard"), 0)}


def test_comments_inside_config_strings_are_dropped():
    g = build("p :: Print(/* ) , */ label // , x )\n"
              "           , 5 /* last */);\n"
              "Idle -> p -> Discard")
    assert args_of(g, "p") == ["label", "5"]
    assert g.elements["p"].instance.conf["MAXLENGTH"] == 5


def test_comment_markers_inside_quotes_are_text():
    g = build('p :: Print("a // b /* c */", 3); Idle -> p -> Discard')
    assert args_of(g, "p") == ['"a // b /* c */"', "3"]
    assert g.elements["p"].instance.conf["LABEL"] == "a // b /* c */"


def test_click5_config_string_examples():
    # click.5 LEXICAL ISSUES: the configuration string runs to the next unbalanced ')';
    # parentheses in quotes and comments do not count.
    g = build('a :: Print(string with (balanced parens));\n'
              'b :: Print(string with ")quoted" paren);\n'
              'c :: Print(// end-of-line comment)\n'
              '   still going!);\n'
              'Idle -> a -> b -> c -> Discard')
    assert g.elements["a"].config.text == "string with (balanced parens)"
    assert g.elements["b"].config.text == 'string with ")quoted" paren'
    assert g.elements["c"].config.text == "// end-of-line comment)\n   still going!"
    assert args_of(g, "c") == ["still going!"]
    assert len(g.connections) == 4


def test_click5_backslash_before_closing_paren_is_text():
    # click.5's C5 example: `C5(/* slash-star comment) */ and backslash \)` -- the
    # configuration string ends at that ')': a backslash does not escape it.
    g = build('d :: Print(/* slash-star comment) */ and backslash \\);\n'
              'Idle -> d -> Discard')
    assert g.elements["d"].config.text == "/* slash-star comment) */ and backslash \\"


# -- declarations ----------------------------------------------------------------------


def test_declaration_forms():
    g = build("n1 :: Paint(3);\n"
              "n2 :: Counter;\n"
              "x, y :: Paint(5);\n"
              "Idle -> n1 -> n2 -> x -> y -> Discard")
    assert classes(g) == {"n1": "Paint", "n2": "Counter", "x": "Paint", "y": "Paint",
                          only_anon(g, "Idle"): "Idle", only_anon(g, "Discard"): "Discard"}
    assert args_of(g, "n1") == ["3"]
    assert g.elements["n2"].config is None
    assert args_of(g, "x") == args_of(g, "y") == ["5"]


def test_declaration_positions():
    text, at = locate("⟨a⟩a :: Counter;\n  ⟨b⟩b, ⟨c⟩c :: Null\nIdle -> a -> b -> c -> Discard")
    g = build(text)
    for name in "abc":
        assert g.elements[name].pos == Pos(FILE, *at[name])


def test_many_to_one_declaration_declares_only_the_last_name():
    # click.5: "n1, n2 :: class -> n3" declares n2 only.
    g = build("n1 :: FromDevice(0); n1, n2 :: FromDevice(1) -> n3 :: Queue -> Discard")
    assert classes(g) == {"n1": "FromDevice", "n2": "FromDevice", "n3": "Queue",
                          only_anon(g, "Discard"): "Discard"}
    assert args_of(g, "n1") == ["0"] and args_of(g, "n2") == ["1"]
    assert {k for k in conns(g) if k[2] == "n3"} == {("n1", 0, "n3", 0), ("n2", 0, "n3", 0)}
    errors = errors_of("n1, n2 :: FromDevice(1) -> n3 :: Discard")
    assert any("'n1'" in e.message for e in errors)


def test_semicolons_are_optional_and_may_repeat():
    with_semis = build(";;a :: Counter;; b :: Null ;\nIdle -> a -> b -> Discard;;")
    without = build("a :: Counter\nb :: Null\nIdle -> a -> b -> Discard")
    assert classes(with_semis) == classes(without)
    assert conns(with_semis) == conns(without)


def test_chain_across_lines_with_declarations_inside():
    g = build("FromDevice(0)\n"
              "  -> c :: Counter\n"
              "  -> [0] s :: Strip(14) [0]\n"
              "  ->\n"
              "  Discard")
    fd, d = only_anon(g, "FromDevice"), only_anon(g, "Discard")
    assert classes(g)["s"] == "Strip" and args_of(g, "s") == ["14"]
    assert conns(g) == {(fd, 0, "c", 0), ("c", 0, "s", 0), ("s", 0, d, 0)}


def test_missing_port_means_port_zero():
    a = build("x :: Idle; y :: Idle; x [0] -> [0] y -> Discard")
    b = build("x :: Idle; y :: Idle; x -> y -> Discard")
    assert conns(a) == conns(b)
    assert ("x", 0, "y", 0) in conns(a)


# -- anonymous elements ----------------------------------------------------------------


def test_anonymous_names_follow_class_at_number():
    text = "FromDevice(0) -> Counter -> Counter -> Discard; FromDevice(1) -> Counter -> Discard"
    g = build(text)
    counters = anon_names(g, "Counter")
    assert len(counters) == 3 and len(set(counters)) == 3
    assert len(anon_names(g, "FromDevice")) == 2
    assert len(anon_names(g, "Discard")) == 2
    assert len(g.elements) == 7
    # click.5: the numbers are predictable -- parsing twice gives the same names.
    again = build(text)
    assert list(again.elements) == list(g.elements)
    assert conns(again) == conns(g)
    # and the connections follow the chains
    c = {src: dst for src, _, dst, _ in conns(g)}
    chain = [n for n in g.elements if args_of(g, n) == ["0"]][0]
    path = [chain]
    while path[-1] in c:
        path.append(c[path[-1]])
    assert [g.elements[n].class_name for n in path] == ["FromDevice", "Counter", "Counter",
                                                        "Discard"]


def test_anonymous_names_never_collide_with_declared_names():
    g = build("Counter@1 :: Null; Counter@2 :: Null; Counter@3 :: Null;\n"
              "Idle -> Counter -> Counter@1 -> Counter -> Counter@2 -> Counter -> Counter@3"
              " -> Discard")
    assert len(g.elements) == 8
    assert sorted(n for n, el in g.elements.items() if el.class_name == "Null") == \
        ["Counter@1", "Counter@2", "Counter@3"]
    assert len([n for n, el in g.elements.items() if el.class_name == "Counter"]) == 3
    assert len(g.connections) == 7


def test_declared_name_wins_over_class_name():
    g = build("Counter :: Null; Idle -> Counter -> Discard")
    assert classes(g)["Counter"] == "Null"
    assert "Counter" not in classes(g).values()


def test_anonymous_element_position_is_its_class_name():
    text, at = locate("Idle -> ⟨s⟩Strip(14) -> Discard")
    g = build(text)
    assert g.elements[only_anon(g, "Strip")].pos == Pos(FILE, *at["s"])


# -- ports and connection shorthands ---------------------------------------------------


def test_ports_on_both_sides():
    g = build("c :: Classifier(12/0800, -); m :: Idle;\n"
              "Idle -> c; c[1] -> [2]m; c [0]->[0] m; Idle -> [1] m;\n"
              "m [1] -> Discard; m[0]->Discard")
    idles = anon_names(g, "Idle")
    d1, d2 = anon_names(g, "Discard")
    assert len(idles) == 2
    assert conns(g) == {(idles[0], 0, "c", 0), ("c", 1, "m", 2), ("c", 0, "m", 0),
                        (idles[1], 0, "m", 1), ("m", 1, d1, 0), ("m", 0, d2, 0)}


def test_many_to_many_with_port_list():
    g = build("c :: Classifier(12/0800, -); a :: Counter; b :: Counter;\n"
              "Idle -> c; c [0,1] => a, b; a, b -> Discard")
    d = only_anon(g, "Discard")
    assert {k for k in conns(g) if k[0] == "c"} == {("c", 0, "a", 0), ("c", 1, "b", 0)}
    assert {k for k in conns(g) if k[2] == d} == {("a", 0, d, 0), ("b", 0, d, 0)}


def test_many_to_many_lone_element_takes_sequential_ports():
    # click.5: with one element and no port on one side, its ports are 0, 1, ...
    g = build("c :: Classifier(12/06, 12/08, -); n :: Null;\n"
              "Idle -> c => Paint(0), Paint(1), Paint(2) -> n -> Discard")
    paints = {args_of(g, p)[0]: p for p in anon_names(g, "Paint")}
    assert set(paints) == {"0", "1", "2"}
    assert {k for k in conns(g) if k[0] == "c"} == {("c", i, paints[str(i)], 0) for i in range(3)}
    assert {k for k in conns(g) if k[2] == "n"} == {(paints[str(i)], 0, "n", 0) for i in range(3)}


def test_many_to_many_explicit_element_list_on_the_left():
    g = build("c :: Classifier(12/06, 12/08, -); x, y, z :: Counter;\n"
              "Idle -> c; c [0], c [1], c [2] => x, y, z -> Discard")
    assert {k for k in conns(g) if k[0] == "c"} == {("c", 0, "x", 0), ("c", 1, "y", 0),
                                                     ("c", 2, "z", 0)}


def test_many_to_many_lone_destination_takes_sequential_inputs():
    g = build("a :: Idle; b :: Idle; m :: Idle; a, b => m -> Discard")
    assert {k for k in conns(g) if k[2] == "m"} == {("a", 0, "m", 0), ("b", 0, "m", 1)}


def test_many_to_one():
    g = build("a :: FromDevice(0); b :: FromDevice(1); c :: FromDevice(2); x :: Idle;\n"
              "a, b -> [1] x -> Discard; c -> [0] x")
    assert conns(g) == {("a", 0, "x", 1), ("b", 0, "x", 1), ("c", 0, "x", 0),
                        ("x", 0, only_anon(g, "Discard"), 0)}


def test_one_to_many_makes_one_connection_per_destination():
    # `a -> b, c` connects a[0] to both; a push output cannot feed two inputs, so nfv
    # reports exactly that, counting the connections the shorthand made.
    errors = errors_of("a :: FromDevice(0); a -> b :: Discard, c :: Discard")
    assert len(errors) == 1
    assert "connected to 2 inputs" in errors[0].message
    errors = errors_of("a :: FromDevice(0); a -> b :: Discard, c :: Discard, Discard")
    assert len(errors) == 1
    assert "connected to 3 inputs" in errors[0].message


def test_repeated_connection_is_not_an_error():
    # click.5: "It is not an error to repeat a connection."
    g = build("a :: FromDevice(0); b :: Discard; a -> b; a -> b; a [0] -> [0] b")
    assert [c.key for c in g.connections] == [("a", 0, "b", 0)]


# -- element groups --------------------------------------------------------------------


def test_group_pass_through_forms_are_equivalent():
    # click.5: these lines all mean x -> y.
    for body in ("x -> y", "x -> ( input -> output ) -> y", "x -> ( [0] -> [0] ) -> y",
                 "x -> (->) -> y", "x -> ( [0]->[0]; [1]->[1] ) => ( [0]->[0]; [1]->[1] ) -> y"):
        g = build(f"x :: FromDevice(0); y :: Discard; {body}")
        assert conns(g) == {("x", 0, "y", 0)}, body
        assert set(g.elements) == {"x", "y"}, body


def test_group_detour_from_click5():
    g = build("x :: FromDevice(0); y :: Queue;\n"
              "x -> c :: Classifier(12/0800, -) => (\n"
              "    input [0] -> output;\n"
              "    input [1] -> Paint(1) -> output\n"
              ") -> y -> Discard")
    p, d = only_anon(g, "Paint"), only_anon(g, "Discard")
    assert conns(g) == {("x", 0, "c", 0), ("c", 0, "y", 0), ("c", 1, p, 0), (p, 0, "y", 0),
                        ("y", 0, d, 0)}


def test_group_implicit_ports_list_all_group_ports():
    # click.5: these three lines are equivalent.
    lines = ["x => ( [0]->[0]; [1]->[1] ) -> y;",
             "x => [0,1] ( [0]->[0]; [1]->[1] ) [0,1] -> y;",
             "x -> y; x [1] -> y;"]
    graphs = [build(f"x :: Idle; y :: Queue; {line} y -> Discard") for line in lines]
    expected = {("x", 0, "y", 0), ("x", 1, "y", 0)}
    for line, g in zip(lines, graphs):
        assert {k for k in conns(g) if k[0] == "x"} == expected, line


def test_group_does_not_open_a_scope():
    # Declarations inside a group are visible after it; outer elements are visible inside.
    g = build("outer :: Counter;\n"
              "FromDevice(0) -> ( input -> inner :: Null -> outer -> output ) -> Discard;\n"
              "FromDevice(1) -> Paint(2) -> [0] m :: Idle; inner2 :: Null;\n"
              "( inner2 -> Discard ); m -> inner2")
    assert classes(g)["inner"] == "Null" and classes(g)["inner2"] == "Null"
    assert ("inner", 0, "outer", 0) in conns(g)
    assert ("m", 0, "inner2", 0) in conns(g)
    assert not any("/" in n for n in g.elements)


# -- compound elements -----------------------------------------------------------------


def test_compound_names_its_components_compound_slash_component():
    g = build("compound :: { input -> x :: Counter -> output };\n"
              "a :: FromDevice(0); b :: Discard; a -> compound -> b")
    assert classes(g) == {"a": "FromDevice", "b": "Discard", "compound/x": "Counter"}
    assert conns(g) == {("a", 0, "compound/x", 0), ("compound/x", 0, "b", 0)}


def test_compound_with_numbered_ports_from_click5():
    g = build("compound :: {\n"
              "  input -> X :: Counter -> output;\n"
              "  input [1] -> Y :: Null -> [1] output;\n"
              "};\n"
              "a :: FromDevice(0); b :: Discard; c :: FromDevice(1); d :: Discard;\n"
              "a -> compound -> b;\n"
              "c -> [1] compound [1] -> d;")
    assert classes(g) == {"a": "FromDevice", "b": "Discard", "c": "FromDevice",
                          "d": "Discard", "compound/X": "Counter", "compound/Y": "Null"}
    assert conns(g) == {("a", 0, "compound/X", 0), ("compound/X", 0, "b", 0),
                        ("c", 0, "compound/Y", 0), ("compound/Y", 0, "d", 0)}


def test_anonymous_compound_and_its_components():
    g = build("FromDevice(0) -> { input -> Counter -> output } -> { input -> x :: Null -> output }"
              " -> Discard")
    names = list(g.elements)
    assert len(names) == 4
    counter = only_anon(g, "Counter")
    null = only_anon(g, "Null")
    # click.5: anonymous compounds get constructed names; components live under them.
    first, _, comp = counter.rpartition("/")
    assert first and comp.startswith("Counter@") and comp[8:].isdigit()
    second, _, comp2 = null.rpartition("/")
    assert second and comp2 == "x" and second != first
    assert "@" in first and "@" in second
    fd, d = only_anon(g, "FromDevice"), only_anon(g, "Discard")
    assert conns(g) == {(fd, 0, counter, 0), (counter, 0, null, 0), (null, 0, d, 0)}


def test_elementclass_and_its_uses():
    g = build("elementclass MyQueue { input -> Queue -> Paint(1) -> output }\n"
              "q :: MyQueue; FromDevice(0) -> q -> Discard; FromDevice(1) -> MyQueue -> Discard")
    qs = [n for n in g.elements if classes(g)[n] == "Queue"]
    assert len(qs) == 2
    named = [n for n in qs if n.startswith("q/")]
    assert len(named) == 1 and named[0].startswith("q/Queue@")
    other = [n for n in qs if not n.startswith("q/")][0]
    assert other.startswith("MyQueue@") and "/Queue@" in other


def test_positional_formals_are_substituted():
    g = build("FromDevice(0) -> { $a, $b | input -> p :: Paint($a, $b) -> output } (7, PAINT2)"
              " -> Discard")
    p = [n for n in g.elements if n.endswith("/p")][0]
    assert args_of(g, p) == ["7", "PAINT2"]


def test_keyword_and_rest_formals_from_click5():
    # click.5: { $a, COUNT $count, __REST__ $rest | ... } (1, 2, COUNT 3, FOO 4)
    #          sets $a = 1, $count = 3, $rest = "2, FOO 4".
    g = build("elementclass K { $a, COUNT $count, __REST__ $rest |\n"
              "  input -> a :: Paint($a) -> c :: Paint($count) -> r :: Print(\"$rest\") -> output }\n"
              "FromDevice(0) -> k :: K(1, 2, COUNT 3, FOO 4) -> Discard")
    assert args_of(g, "k/a") == ["1"]
    assert args_of(g, "k/c") == ["3"]
    assert g.elements["k/r"].instance.conf["LABEL"] == "2, FOO 4"


def test_keyword_formal_may_come_first_in_the_arguments():
    g = build("elementclass K { $a, COLOR $c | input -> p :: Paint($c) -> Strip($a) -> output }\n"
              "FromDevice(0) -> k :: K(COLOR 9, 14) -> Discard")
    assert args_of(g, "k/p") == ["9"]
    assert args_of(g, only_anon(g, "Strip")) == ["14"]


def test_overloading_chooses_by_argument_count():
    g = build("elementclass MyQueue {\n"
              "  input -> Queue -> output\n"
              "||\n"
              "  $cap | input -> Queue($cap) -> output\n"
              "}\n"
              "FromDevice(0) -> a :: MyQueue -> Discard;\n"
              "FromDevice(1) -> b :: MyQueue(77) -> Discard")
    qa = [n for n in g.elements if n.startswith("a/")]
    qb = [n for n in g.elements if n.startswith("b/")]
    assert len(qa) == len(qb) == 1
    assert g.elements[qa[0]].config is None
    assert args_of(g, qb[0]) == ["77"]


def test_overloading_chooses_by_port_count():
    g = build("elementclass Sw {\n"
              "  input -> one :: Counter -> output\n"
              "||\n"
              "  input -> two :: Classifier(12/0800, -); two [0] -> output; two [1] -> [1] output\n"
              "}\n"
              "FromDevice(0) -> s1 :: Sw -> Discard;\n"
              "FromDevice(1) -> s2 :: Sw; s2 [0] -> Discard; s2 [1] -> Discard")
    assert classes(g)["s1/one"] == "Counter" and "s1/two" not in g.elements
    assert classes(g)["s2/two"] == "Classifier" and "s2/one" not in g.elements


def test_overload_extension_with_ellipsis():
    g = build("elementclass T { $a | input -> one :: Paint($a) -> output }\n"
              "elementclass T { $a, $b | input -> two :: Paint($a, $b) -> output || ... }\n"
              "FromDevice(0) -> x :: T(1) -> y :: T(2, PAINT2) -> Discard")
    assert args_of(g, "x/one") == ["1"]
    assert args_of(g, "y/two") == ["2", "PAINT2"]


def test_overloads_visible_are_those_before_the_use():
    # click.5's example: the two-argument version is not visible at `test :: Test(1, 2)`.
    errors = errors_of("elementclass Test { $a | input -> output }\n"
                       "FromDevice(0) -> test :: Test(1, 2) -> Discard;\n"
                       "elementclass Test { $a, $b | input -> output || ... }")
    assert len(errors) == 1


def test_ellipsis_extends_a_primitive_class():
    # click.5 (Overloading): `elementclass Queue { $cap, $rate | ... || ... }` adds a
    # two-argument Queue; Queue with other arguments is still the primitive.
    g = build("elementclass Queue {\n"
              "  $cap, $color | input -> Queue($cap) -> Paint($color) -> output\n"
              "|| ...\n"
              "}\n"
              "FromDevice(0) -> a :: Queue(5, 2) -> b :: Queue(9) -> Discard")
    assert classes(g)["b"] == "Queue" and args_of(g, "b") == ["9"]
    inner = {g.elements[n].class_name: n for n in g.elements if n.startswith("a/")}
    assert set(inner) == {"Queue", "Paint"}
    assert args_of(g, inner["Queue"]) == ["5"] and args_of(g, inner["Paint"]) == ["2"]


def test_nested_compounds_get_nested_names():
    g = build("elementclass Inner { input -> c :: Counter -> output }\n"
              "elementclass Outer { input -> i :: Inner -> p :: Paint(1) -> output }\n"
              "FromDevice(0) -> o :: Outer -> Discard")
    assert classes(g)["o/i/c"] == "Counter"
    assert classes(g)["o/p"] == "Paint"
    assert ("o/i/c", 0, "o/p", 0) in conns(g)


def test_compound_declared_inside_a_compound():
    g = build("elementclass Outer { inner :: { input -> c :: Counter -> output };\n"
              "                     input -> inner -> output }\n"
              "FromDevice(0) -> o :: Outer -> Discard")
    assert classes(g)["o/inner/c"] == "Counter"


def test_elementclass_synonym():
    g = build("elementclass MyQueue Queue; elementclass Twice MyQueue;\n"
              "FromDevice(0) -> q :: Twice(5) -> Discard")
    assert classes(g)["q"] == "Queue"
    assert args_of(g, "q") == ["5"]


def test_synonym_of_a_compound():
    g = build("elementclass A { input -> c :: Counter -> output } elementclass B A;\n"
              "FromDevice(0) -> b :: B -> Discard")
    assert classes(g)["b/c"] == "Counter"


def test_redefined_primitive_name_means_the_primitive_inside_its_body():
    # click.5: element classes are nonrecursive and lexically scoped.
    g = build("elementclass Queue { input -> inner :: Queue(3) -> Paint(1) -> output }\n"
              "FromDevice(0) -> q :: Queue -> Discard")
    assert classes(g)["q/inner"] == "Queue"
    assert args_of(g, "q/inner") == ["3"]
    assert len(anon_names(g, "Paint", "q/")) == 1


def test_elementclass_is_visible_only_after_its_definition():
    errors = errors_of("FromDevice(0) -> Later -> Discard;\n"
                       "elementclass Later { input -> output }")
    assert len(errors) == 1 and "Later" in errors[0].message


def test_elementclass_defined_in_a_compound_is_local_to_it():
    errors = errors_of("elementclass Outer { elementclass Local { input -> output }\n"
                       "                     input -> Local -> output }\n"
                       "FromDevice(0) -> Outer -> Local -> Discard")
    assert len(errors) == 1 and "Local" in errors[0].message


def test_compound_scope_hides_outer_element_names():
    errors = errors_of("c :: Counter; FromDevice(0) -> c -> Discard;\n"
                       "elementclass A { input -> c -> output }\n"
                       "FromDevice(1) -> A -> Discard")
    assert any("'c'" in e.message for e in errors)


# -- parameters ------------------------------------------------------------------------


def test_define_is_simultaneous():
    # click.5: "define($a 2); Message($a)" and "Message($a); define($a 2)" are the same.
    before = build("FromDevice($a) -> p :: Paint($b) -> Discard; define($a 1, $b 2)")
    after = build("define($b 2); define($a 1); FromDevice($a) -> p :: Paint($b) -> Discard")
    for g in (before, after):
        assert args_of(g, "p") == ["2"]
        assert args_of(g, only_anon(g, "FromDevice")) == ["1"]


def test_command_line_defines_override_file_defines():
    text = "define($DEV 1, $COLOR 4) FromDevice($DEV) -> p :: Paint($COLOR) -> Discard"
    g = build(text, defines={"DEV": "3"})
    assert args_of(g, only_anon(g, "FromDevice")) == ["3"]
    assert args_of(g, "p") == ["4"]
    # a parameter the file does not define at all
    g = build("FromDevice(0) -> p :: Paint($NEW) -> Discard", defines={"NEW": "6"})
    assert args_of(g, "p") == ["6"]


def test_variable_forms():
    g = build("define($v 1, $long_name 2)\n"
              "FromDevice(0) -> a :: Print(${v}0, $long_name) -> Discard")
    # ${v}0 is "10": the braces end the name.  $long_name is one name.
    assert args_of(g, "a") == ["10", "2"]


def test_default_form_uses_the_value_if_set_and_the_default_otherwise():
    g = build("define($set 5) FromDevice(0)\n"
              "  -> a :: Paint(${set-9}) -> b :: Paint(${unset-7}) -> c :: Paint(${unset-}3)"
              " -> Discard")
    assert args_of(g, "a") == ["5"]
    assert args_of(g, "b") == ["7"]
    assert args_of(g, "c") == ["3"]


def test_no_expansion_inside_single_quotes_but_inside_double_quotes():
    g = build("define($A 2) FromDevice(0) -> q :: Print('$A stays', 3) -> r :: Print(\"$A goes\")"
              " -> Discard")
    assert g.elements["q"].instance.conf["LABEL"] == "$A stays"
    assert g.elements["r"].instance.conf["LABEL"] == "2 goes"


def test_formal_shadows_define_and_define_inside_compound_is_local():
    g = build("define($v 1)\n"
              "elementclass F { $v | input -> p :: Paint($v) -> output }\n"
              "elementclass G { define($w 8); input -> p :: Paint($w) -> output }\n"
              "FromDevice(0) -> f :: F(3) -> g :: G -> top :: Paint($v) -> Discard")
    assert args_of(g, "f/p") == ["3"]
    assert args_of(g, "g/p") == ["8"]
    assert args_of(g, "top") == ["1"]
    errors = errors_of("elementclass G { define($w 8); input -> output }\n"
                       "FromDevice(0) -> G -> Paint($w) -> Discard")
    assert len(errors) == 1 and "$w" in errors[0].message


def test_command_line_define_does_not_override_a_compound_formal():
    g = build("elementclass F { $v | input -> p :: Paint($v) -> output }\n"
              "FromDevice(0) -> f :: F(3) -> Discard", defines={"v": "5"})
    assert args_of(g, "f/p") == ["3"]


def test_outer_parameters_are_visible_in_compounds():
    g = build("define($C 4) elementclass F { input -> p :: Paint($C) -> output }\n"
              "FromDevice(0) -> f :: F -> Discard")
    assert args_of(g, "f/p") == ["4"]


# -- require / provide -----------------------------------------------------------------


def test_require_and_provide_are_recorded():
    g = build("require(package fastclassifier, package specialcode);\n"
              "provide(thing)\n"
              "FromDevice(0) -> Discard")
    assert g.requires[:2] == ["package fastclassifier", "package specialcode"]
    assert "thing" in g.requires


# -- configuration strings -------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [a.text for a in split_args(make_arg(text, Pos(FILE, 1, 1)))]


@pytest.mark.parametrize("text, expected", [
    ("a, b,c", ["a", "b", "c"]),
    ("f(a, b), [c, d], {e, f}", ["f(a, b)", "[c, d]", "{e, f}"]),
    ('"a, b", \'c, d\', e', ['"a, b"', "'c, d'", "e"]),
    ('"a \\" , b", c', ['"a \\" , b"', "c"]),
    ("1, ", ["1"]),
    ("1, /* comment */", ["1"]),
    ("1", ["1"]),
    ("", []),
    ("   \n ", []),
    ("1, , 2", ["1", "", "2"]),
    (", 2", ["", "2"]),
    ("a // x, y\n, b", ["a", "b"]),
    ("a /* x, y */ b, c", ["a   b", "c"]),
    ("  spaced  out  ,  x ", ["spaced  out", "x"]),
])
def test_config_string_splitting(text, expected):
    # click.5 CONFIGURATION STRINGS: comments become a space; a final empty argument
    # is ignored; commas in quotes and balanced brackets do not split.
    got = _split(text)
    if text == "a /* x, y */ b, c":
        assert got[1:] == ["c"] and re.fullmatch(r"a\s+b", got[0])
    else:
        assert got == expected


def test_element_config_with_empty_last_argument():
    for config in ("14", "14, ", "14, /* comment */", "14 // c\n"):
        g = build(f"FromDevice(0) -> s :: Strip({config}) -> Discard")
        assert args_of(g, "s") == ["14"], config
        assert g.elements["s"].instance.conf["LENGTH"] == 14


def test_nested_parentheses_and_quoted_paren_in_config():
    g = build('FromDevice(0) -> p :: Print(f(g(h)) ")(" x) -> Discard')
    assert g.elements["p"].config.text == 'f(g(h)) ")(" x'


def test_config_argument_positions_span_lines():
    text, at = locate("FromDevice(0) -> p :: Print(\n   ⟨a⟩first,\n\t⟨b⟩7) -> Discard")
    g = build(text)
    pieces = split_args(g.elements["p"].config)
    assert (pieces[0].pos.line, pieces[0].pos.col) == at["a"]
    assert (pieces[1].pos.line, pieces[1].pos.col) == at["b"]


# -- line directives -------------------------------------------------------------------


def test_line_directive_renames_file_and_line():
    text = ("FromDevice(0) -> a :: Counter -> Discard\n"
            '# 10 "other.click"\n'
            "FromDevice(1) -> b :: Counter -> Discard\n"
            "  c :: Counter; FromDevice(2) -> c -> Discard\n"
            "#line 40\n"
            "d :: Counter; FromDevice(3) -> d -> Discard\n")
    g = build(text)
    assert g.elements["a"].pos == Pos(FILE, 1, 18)
    assert g.elements["b"].pos == Pos("other.click", 10, 18)
    assert g.elements["c"].pos == Pos("other.click", 11, 3)
    assert g.elements["d"].pos == Pos("other.click", 40, 1)


def test_line_directive_not_recognized_inside_config_strings():
    g = build('FromDevice(0) -> p :: Print(\n# 5 "x"\n) -> Discard')
    assert g.elements["p"].config.text == '\n# 5 "x"\n'


# -- the example files -----------------------------------------------------------------


def test_valid_example_files_exist():
    assert len(VALID_FILES) >= 4


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: p.name)
def test_valid_example_files_build(path):
    g = build(path.read_text(), file=str(path))
    assert g.elements and g.connections
    for c in g.connections:
        assert c.src in g.elements and c.dst in g.elements


def test_detour_example_graph():
    path = [p for p in VALID_FILES if p.name == "detour.click"][0]
    g = build(path.read_text())
    paint, discards = only_anon(g, "Paint"), anon_names(g, "Discard")
    assert len(discards) == 2
    inside, after = (discards if ("c", 2, discards[0], 0) in conns(g) else discards[::-1])
    assert classes(g) == {
        "src": "FromDevice", "sink": "ToDevice", "c": "Classifier", paint: "Paint",
        inside: "Discard", "q": "Queue", "other": "FromDevice", "oc": "Classifier",
        "a": "Counter", "b": "Counter", "rr": "RoundRobinSwitch", "m": "Idle",
        after: "Discard"}
    assert conns(g) == {
        ("src", 0, "c", 0), ("c", 0, "q", 0), ("c", 1, paint, 0), (paint, 0, "q", 0),
        ("c", 2, inside, 0), ("q", 0, "sink", 0),
        ("other", 0, "oc", 0), ("oc", 0, "a", 0), ("oc", 1, "b", 0),
        ("a", 0, "rr", 0), ("b", 0, "rr", 0),
        ("rr", 0, "m", 0), ("rr", 1, "m", 1), ("m", 0, after, 0)}


def test_compounds_example_graph():
    path = [p for p in VALID_FILES if p.name == "compounds.click"][0]
    g = build(path.read_text())
    by_class: dict[str, list[str]] = {}
    for n, c in classes(g).items():
        by_class.setdefault(c, []).append(n)
    fd, = by_class["FromDevice"]
    td, = by_class["ToDevice"]
    d, = by_class["Discard"]
    assert args_of(g, fd) == ["0"] and args_of(g, td) == ["1"]
    pr, = [n for n in by_class["Print"] if n.startswith("p/")]
    buffer_q, = [n for n in by_class["Queue"] if n.endswith("/q")]
    tagged7, = [n for n in by_class["Paint"] if args_of(g, n) == ["7", "PAINT2"]]
    assert tagged7.startswith("Tagged@")
    counter, = by_class["Counter"]
    assert counter.startswith("p/inner/Counter@")
    assert args_of(g, "p/t/" + only_anon_under(g, "p/t/", "Paint")) == ["3"]
    assert g.elements[pr].instance.conf["LABEL"] == "one, TWO 2"
    assert args_of(g, buffer_q) == ["10"] and buffer_q.startswith("Buffer@")
    pt = "p/t/" + only_anon_under(g, "p/t/", "Paint")
    assert conns(g) == {
        (fd, 0, "sp/c", 0), ("sp/c", 0, pt, 0), (pt, 0, counter, 0), (counter, 0, pr, 0),
        (pr, 0, buffer_q, 0), (buffer_q, 0, td, 0), ("sp/c", 1, tagged7, 0), (tagged7, 0, d, 0)}
    assert len(g.elements) == 9


def only_anon_under(g, prefix: str, cls: str) -> str:
    names = [n[len(prefix):] for n, el in g.elements.items()
             if n.startswith(prefix) and el.class_name == cls and "/" not in n[len(prefix):]]
    assert len(names) == 1, names
    return names[0]


def test_params_example_graph():
    path = [p for p in VALID_FILES if p.name == "params.click"][0]
    g = build(path.read_text())
    assert g.elements["p"].instance.conf["LABEL"] == "untitled"
    assert g.elements["p"].instance.conf["MAXLENGTH"] == 9
    assert g.elements["q"].instance.conf["LABEL"] == "$A keeps its dollar"
    assert g.elements["r"].instance.conf["LABEL"] == "2 is expanded"
    assert g.requires == ["package nfv", "library extra.click"]
    fds = {args_of(g, n)[0]: n for n in anon_names(g, "FromDevice")}
    assert set(fds) == {"2", "3"}
    assert args_of(g, only_anon(g, "ToDevice")) == ["2"]
    assert args_of(g, only_anon(g, "Paint")) == ["9"]
    paint, td, d = only_anon(g, "Paint"), only_anon(g, "ToDevice"), only_anon(g, "Discard")
    assert conns(g) == {(fds["2"], 0, paint, 0), (paint, 0, "p", 0), ("p", 0, td, 0),
                        (fds["3"], 0, "q", 0), ("q", 0, "r", 0), ("r", 0, d, 0)}


def test_comments_example_graph():
    path = [p for p in VALID_FILES if p.name == "comments.click"][0]
    g = build(path.read_text())
    pr, d = only_anon(g, "Print"), only_anon(g, "Discard")
    assert classes(g) == {"in": "FromDevice", "c": "Counter", pr: "Print", "out": "ToDevice",
                          "in2": "FromDevice", d: "Discard"}
    assert args_of(g, pr) == ['"a // b"', "5"]
    assert conns(g) == {("in", 0, "c", 0), ("c", 0, pr, 0), (pr, 0, "out", 0), ("in2", 0, d, 0)}
    assert g.elements["in2"].pos == Pos("generated.click", 40, 2)
