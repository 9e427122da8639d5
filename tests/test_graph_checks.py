"""Errors in configs: each reported at its file, line and column, with a useful message.

Every expected position is written into the config text as a marker
(`⟨here⟩`, or `⟨1⟩`, `⟨2⟩`... for several errors) and computed from the
marker's place, never copied from nfv's output.  Unless a test says
otherwise, one mistake must give exactly one error.
"""
from __future__ import annotations

import time

import pytest

from conftest import FILE, errors_of, expect_error, locate
from nfv.errors import ConfigErrors, NfvError


# -- names and classes -----------------------------------------------------------------


def test_unknown_class_with_did_you_mean():
    expect_error("FromDevice(0) -> ⟨here⟩Cuonter(1) -> Discard",
                 "unknown element class 'Cuonter'", "Counter")


def test_unknown_class_in_declaration():
    expect_error("x :: ⟨here⟩Countr; FromDevice(0) -> x -> Discard",
                 "unknown element class 'Countr'", "did you mean Counter")


def test_unknown_class_wrong_case():
    expect_error("x :: ⟨here⟩counter; FromDevice(0) -> x -> Discard",
                 "unknown element class 'counter'", "Counter")


def test_unknown_class_far_from_everything_has_no_guess():
    err = expect_error("x :: ⟨here⟩Zzyzx; FromDevice(0) -> x -> Discard",
                       "unknown element class 'Zzyzx'")
    assert "did you mean" not in (err.hint or "")


def test_undeclared_element():
    expect_error("FromDevice(0) -> c :: Counter;\nc -> ⟨here⟩cc -> Discard",
                 "undeclared element 'cc'")


def test_undeclared_element_did_you_mean_a_declared_one():
    expect_error("counter_in :: Counter;\nFromDevice(0) -> ⟨here⟩counter_inn -> Discard;",
                 "undeclared element 'counter_inn'", "counter_in", only=False)


def test_undeclared_element_gives_one_error_not_a_cascade():
    # Neither Counter's output nor Discard's input may be reported as unconnected.
    expect_error("FromDevice(0) -> c :: Counter -> ⟨here⟩nope -> Discard",
                 "undeclared element 'nope'")
    expect_error("FromDevice(0) -> ( input -> ⟨here⟩x -> output ) -> Discard",
                 "undeclared element 'x'")
    expect_error("c :: Classifier(12/0800, -);\nFromDevice(0) -> c -> Discard; c [1] -> ⟨here⟩nope",
                 "undeclared element 'nope'")


def test_unknown_class_gives_one_error_not_a_cascade():
    expect_error("FromDevice(0) -> c :: Counter -> ⟨here⟩Nope(1) -> Discard",
                 "unknown element class 'Nope'")


def test_synonym_of_unknown_class_gives_one_error():
    # The later use of B depends on the bad definition; it must not be reported again.
    expect_error("elementclass B ⟨here⟩Nope;\nFromDevice(0) -> B -> Discard",
                 "unknown element class 'Nope'")


def test_redeclared_element_hint_names_first_declaration():
    text = "x :: Counter;\nFromDevice(0) -> x -> Discard;\n  ⟨here⟩x :: Null;"
    _, at = locate("⟨first⟩" + text)
    err = expect_error(text, "redeclaration of element 'x'")
    assert f"{FILE}:{at['first'][0]}:{at['first'][1]}" in err.hint


def test_redeclared_element_in_one_statement():
    expect_error("a, ⟨here⟩a :: Counter; FromDevice(0) -> a -> Discard",
                 "redeclaration of element 'a'")


def test_declared_name_clashing_with_a_compound_component_is_not_lost():
    # click.5 allows declaring `x/y` next to a compound `x` with a component `y`; the
    # two are different elements.  The declared Counter is unconnected, so this
    # config is wrong -- it must not pass because one element silently replaced the other.
    errors = errors_of("x/y :: Counter;\n"
                       "x :: { input -> y :: Idle -> output };\n"
                       "FromDevice(0) -> x -> Discard")
    assert errors


def test_keyword_is_not_an_identifier():
    err = errors_of("define :: Counter")
    assert len(err) == 1
    errs = errors_of("FromDevice(0) -> elementclass -> Discard")
    assert len(errs) == 1


def test_recursive_elementclass():
    expect_error("elementclass A { input -> ⟨here⟩A -> output }\nFromDevice(0) -> A -> Discard",
                 "recursive elementclass 'A'")


def test_redefinition_through_another_class_is_not_recursion():
    # By lexical scoping the A inside B is the first A, so the second A is not
    # recursive: FromDevice -> A(2nd) -> B -> A(1st) -> Discard is FromDevice -> Discard.
    from conftest import build, conns
    g = build("elementclass A { input -> output }\n"
              "elementclass B { input -> A -> output }\n"
              "elementclass A { input -> B -> output }\n"
              "f :: FromDevice(0) -> A -> d :: Discard")
    assert set(g.elements) == {"f", "d"}
    assert conns(g) == {("f", 0, "d", 0)}


# -- ports -----------------------------------------------------------------------------


def test_output_port_beyond_port_count():
    expect_error("c :: Counter; FromDevice(0) -> c -> Discard;\nc ⟨here⟩[1] -> Discard",
                 "'c' (Counter) has no output [1]", "1/1")


def test_input_port_beyond_port_count():
    expect_error("c :: Counter; FromDevice(0) -> c -> Discard;\nFromDevice(1) -> ⟨here⟩[1] c",
                 "'c' (Counter) has no input [1]", "1/1")


def test_element_without_outputs():
    expect_error("d :: Discard; FromDevice(0) -> d;\nd ⟨here⟩[0] -> Discard",
                 "'d' (Discard) has no output [0]", "no outputs")


def test_element_without_outputs_implicit_port():
    # No port is written: the error is at the element whose output does not exist.
    expect_error("FromDevice(0) -> ⟨here⟩Discard -> Discard", "no output [0]")


def test_element_without_inputs():
    expect_error("f :: FromDevice(0); f -> Discard;\nFromDevice(1) -> ⟨here⟩f",
                 "'f' (FromDevice) has no input [0]", "no inputs")


def test_port_beyond_count_in_a_chain():
    errors = errors_of("FromDevice(0) -> Counter [1] -> Discard")
    assert any("has no output [1]" in e.message for e in errors)


def test_tee_outputs_limited_by_its_argument():
    expect_error("t :: Tee(2); FromDevice(0) -> t; t [0] -> Discard; t [1] -> Discard;\n"
                 "t ⟨here⟩[2] -> Discard", "no output [2]", "1/2")


def test_many_to_many_count_mismatch_gives_one_error():
    # click.5: "Each many-to-many connection must list the same number of output
    # ports (on the left) as input ports (on the right)."  Only that is the mistake:
    # the elements it would have connected are not also "not connected".
    expect_error("c :: Classifier(12/06, -); a, b, d :: Counter;\n"
                 "FromDevice(0) -> c; c [0, 1] ⟨here⟩=> a, b, d; a, b, d -> Idle",
                 "2 output port(s) to 3 input port(s)")


def test_unconnected_output():
    expect_error("FromDevice(0) -> ⟨here⟩c :: Counter;",
                 "output [0] of 'c' (Counter) is not connected", "c [0] -> Discard")


def test_unconnected_input():
    expect_error("⟨here⟩c :: Counter -> Discard;",
                 "input [0] of 'c' (Counter) is not connected")


def test_unconnected_classifier_output():
    expect_error("FromDevice(0) -> ⟨here⟩c :: Classifier(12/0800, 12/0806, -);\n"
                 "c [0] -> Discard; c [2] -> Discard",
                 "output [1] of 'c' (Classifier) is not connected")


def test_unconnected_anonymous_element_points_at_its_class():
    expect_error("FromDevice(0) -> ⟨here⟩Counter;",
                 "output [0] of 'Counter@", only=True)


def test_push_output_to_two_inputs_suggests_tee():
    expect_error("t :: FromDevice(0);\nt -> Discard;\n⟨here⟩t -> Discard",
                 "output [0] of 't' (FromDevice) is connected to 2 inputs", "Tee(2)")


def test_huge_port_number_gives_few_errors_quickly():
    start = time.monotonic()
    errors = errors_of("FromDevice(0) -> [100000] m :: Idle -> Discard")
    assert time.monotonic() - start < 5
    assert len(errors) <= 3, f"{len(errors)} errors for one port number"


# -- arguments -------------------------------------------------------------------------


def test_bad_argument_value_points_at_the_argument():
    expect_error("FromDevice(0) -> Strip(⟨here⟩abc) -> Discard", "expected a byte count")


def test_bad_argument_value_after_a_define_points_at_the_value():
    expect_error("define($LEN ⟨here⟩abc)\nFromDevice(0) -> Strip($LEN) -> Discard",
                 "expected a byte count")


def test_bad_compound_argument_points_at_the_actual_argument():
    expect_error("elementclass A { $x | input -> Strip($x) -> output }\n"
                 "FromDevice(0) -> A(⟨here⟩abc) -> Discard", "expected a byte count")


def test_bad_rest_argument_points_at_the_actual_argument():
    expect_error("elementclass A { $x, __REST__ $r | input -> Strip($x) -> Print($r) -> output }\n"
                 "FromDevice(0) -> A(1, label, ⟨here⟩bad) -> Discard", "expected an integer")


def test_bad_define_value_through_a_compound_argument():
    expect_error("define($L ⟨here⟩abc)\n"
                 "elementclass A { $x | input -> Strip($x) -> output }\n"
                 "FromDevice(0) -> A($L) -> Discard", "expected a byte count")


def test_bad_route_on_its_own_line_in_a_multiline_config():
    text, at = locate("FromDevice(0) -> rt :: RadixIPLookup(10.0.0.0/8 0,\n"
                      "                    ⟨word⟩10.⟨octet⟩300.0.0/16 1,\n"
                      "                    0.0.0.0/0 10.0.0.1 1);\n"
                      "rt [0] -> Discard; rt [1] -> Discard")
    errors = errors_of(text)
    assert len(errors) == 1
    e = errors[0]
    assert "10.300.0.0/16" in e.message or "300" in e.message
    # the route's word, or (better) the bad number inside it
    assert (e.pos.file, e.pos.line) == (FILE, at["word"][0])
    assert e.pos.col in (at["word"][1], at["octet"][1])


def test_bad_gateway_on_its_own_line():
    text, at = locate("FromDevice(0) -> rt :: RadixIPLookup(10.0.0.0/8 0,\n"
                      "    0.0.0.0/0 ⟨word⟩1.2.3.⟨octet⟩999 1);\n"
                      "rt [0] -> Discard; rt [1] -> Discard")
    errors = errors_of(text)
    assert len(errors) == 1
    assert errors[0].pos.line == at["word"][0]
    assert errors[0].pos.col in (at["word"][1], at["octet"][1])


def test_bad_port_in_ipfilter_rule_on_second_line():
    expect_error("FromDevice(0) -> f :: IPFilter(allow tcp dst port 80,\n"
                 "      allow udp dst port ⟨here⟩99999,\n"
                 "      deny all) -> Discard",
                 "99999")


def test_bad_port_name_in_ipfilter_rule():
    expect_error("FromDevice(0) -> f :: IPFilter(allow tcp dst port 80,\n"
                 "\tallow udp dst port ⟨here⟩bogus,\n"
                 "      deny all) -> Discard",
                 "bogus")


def test_bad_classifier_pattern_on_third_line():
    text = ("FromDevice(0) -> c :: Classifier(12/0800,\n"
            "   12/0806,\n"
            "   ⟨here⟩zz/0800) => Discard, Discard, Discard")
    text_clean, at = locate(text)
    errors = errors_of(text_clean)
    assert len(errors) == 1
    assert errors[0].pos.line == at["here"][0]
    assert errors[0].pos.col >= at["here"][1]


def test_unknown_keyword_with_did_you_mean():
    expect_error("FromDevice(0) -> Counter(⟨here⟩COUNT_CAL 5 x.reset) -> Discard",
                 "unknown keyword COUNT_CAL", "did you mean COUNT_CALL")


def test_unknown_keyword_lists_the_known_ones():
    expect_error("FromDevice(0, ⟨here⟩BURSTY 4) -> Discard", "unknown keyword BURSTY", "BURST")


def test_too_many_arguments():
    expect_error("FromDevice(0) -> Strip(14, ⟨here⟩2) -> Discard", "too many arguments",
                 "Strip(LENGTH)")


def test_missing_mandatory_argument():
    expect_error("FromDevice(0) -> ⟨here⟩Strip -> Discard",
                 "missing mandatory argument LENGTH", "Strip(LENGTH)")
    expect_error("FromDevice(0) -> ⟨here⟩Strip() -> Discard",
                 "missing mandatory argument LENGTH")


def test_argument_given_twice():
    expect_error("FromDevice(0, BURST 4, ⟨here⟩BURST 8) -> Discard", "BURST given twice")


def test_undefined_parameter():
    err = expect_error("define($LEN 14)\nFromDevice(0) -> Strip(⟨here⟩$LNE) -> Discard",
                       "undefined parameter $LNE")
    assert "$LEN" in err.hint


def test_undefined_parameter_braced():
    expect_error("FromDevice(0) -> Strip(1⟨here⟩${nope}) -> Discard", "undefined parameter $nope")


def test_undefined_parameter_inside_compound():
    expect_error("elementclass A { $x | input -> Paint(⟨here⟩$y) -> output }\n"
                 "FromDevice(0) -> A(1) -> Discard", "undefined parameter $y")


def test_parameter_defined_twice_in_one_define():
    text = "define(⟨first⟩$v 1, ⟨here⟩$v 2)\nFromDevice($v) -> Discard"
    clean, at = locate(text)
    err = expect_error(text.replace("⟨first⟩", ""), "parameter $v defined twice", only=False)
    assert f"{FILE}:{at['first'][0]}:{at['first'][1]}" in err.hint


def test_parameter_defined_twice_gives_one_error():
    # The duplicate must not make the parameter undefined for its users as well.
    expect_error("define($v 1, ⟨here⟩$v 2)\nFromDevice($v) -> Discard",
                 "parameter $v defined twice")


def test_parameter_defined_twice_in_two_defines():
    text = "define(⟨first⟩$v 1);\ndefine(⟨here⟩$v 2)\nFromDevice($v) -> Discard"
    clean, at = locate(text)
    err = expect_error(text.replace("⟨first⟩", ""), "parameter $v defined twice")
    assert f"{FILE}:{at['first'][0]}:{at['first'][1]}" in err.hint


def test_bad_define_syntax():
    expect_error("define(⟨here⟩DEV 0)\nFromDevice(0) -> Discard", "define expects")


# -- compounds -------------------------------------------------------------------------


def test_compound_too_many_arguments():
    err = expect_error("elementclass A { input -> output }\nFromDevice(0) -> ⟨here⟩A(1) -> Discard",
                       "no definition of A fits")
    assert "too many arguments" in err.hint


def test_compound_too_few_arguments():
    err = expect_error("elementclass A { $a, $b | input -> Paint($a) -> Strip($b) -> output }\n"
                       "FromDevice(0) -> ⟨here⟩A(1) -> Discard", "no definition of A fits")
    assert "$b" in err.hint


def test_compound_missing_keyword_parameter():
    err = expect_error("elementclass A { COUNT $count | input -> Strip($count) -> output }\n"
                       "FromDevice(0) -> ⟨here⟩A(1) -> Discard", "no definition of A fits")
    assert "COUNT" in err.hint


def test_compound_port_mismatch():
    err = expect_error("elementclass A { input -> output }\n"
                       "⟨here⟩a :: A; FromDevice(0) -> a; a [0] -> Discard; a [1] -> Discard",
                       "no definition of A fits 'a'")
    assert "1 input(s), 2 output(s)" in err.message


def test_compound_instance_port_mismatch_points_at_instance():
    expect_error("elementclass A { input -> Counter -> output }\n"
                 "FromDevice(0) -> ⟨here⟩A [1] -> Discard", "no definition of A fits")


def test_compound_failure_gives_one_error_not_a_cascade():
    expect_error("elementclass A { input -> p :: Paint(1) -> output }\n"
                 "elementclass B { $x | input -> output }\n"
                 "FromDevice(0) -> A -> ⟨here⟩B -> Discard", "no definition of B fits")


def test_compound_with_gap_in_inputs():
    # click.5: "It is also an error to leave an intermediate port unused".
    errors = errors_of("elementclass A { input [0] -> Counter -> output; input [2] -> Discard }\n"
                       "a :: A; FromDevice(0) -> [0] a; FromDevice(1) -> [2] a; a -> Discard")
    assert len(errors) == 1, errors
    assert "input [1]" in errors[0].message


def test_input_outside_a_compound():
    expect_error("⟨here⟩input -> Discard", "'input' used outside a compound")


def test_output_outside_a_compound():
    expect_error("FromDevice(0) -> ⟨here⟩output", "'output' used outside a compound")


def test_input_as_destination_inside_a_compound():
    expect_error("elementclass A { input -> Counter -> output; FromDevice(1) -> ⟨here⟩input }\n"
                 "FromDevice(0) -> A -> Discard", "'input'")


def test_output_as_source_inside_a_compound():
    expect_error("elementclass A { input -> Counter -> output; ⟨here⟩output -> Discard }\n"
                 "FromDevice(0) -> A -> Discard", "'output'")


def test_input_as_destination_inside_a_group():
    expect_error("FromDevice(0) -> ( input -> Counter -> output; FromDevice(1) -> ⟨here⟩input )"
                 " -> Discard", "'input'")


def test_input_declared_inside_a_compound():
    expect_error("elementclass A { ⟨here⟩input :: Counter; input -> output }\n"
                 "FromDevice(0) -> A -> Discard", "reserved", only=False)


def test_group_with_unconnected_port_is_an_error():
    # click.5: "It is an error ... to leave one or more of its ports unconnected":
    # the group's input [1] is fed by nothing.
    errors = errors_of("x :: Idle; y :: Queue; x => [0] ( [0]->[0]; [1]->Idle ) -> y -> Discard")
    assert errors


def test_group_with_nonsequential_input_ports_is_an_error():
    # click.5: "It is an error to define an element group with nonsequential ports";
    # here the group uses input [1] but not input [0].
    text, at = locate("x :: FromDevice(0); x -> ⟨group⟩( ⟨port⟩[1] -> [0] ) -> Discard")
    errors = errors_of(text)
    assert len(errors) == 1
    assert (errors[0].pos.line, errors[0].pos.col) in (at["group"], at["port"])


def test_group_with_nonsequential_output_ports_is_an_error():
    text, at = locate("x :: FromDevice(0); x -> ⟨group⟩( [0] -> ⟨port⟩[2] ) -> Discard")
    errors = errors_of(text)
    assert len(errors) == 1
    assert (errors[0].pos.line, errors[0].pos.col) in (at["group"], at["port"])


def test_ellipsis_without_earlier_definition_or_primitive():
    expect_error("elementclass Fresh ⟨here⟩{ $a | input -> output || ... }\n"
                 "FromDevice(0) -> Fresh(1) -> Discard", "'...'")


# -- lexical and syntax errors ---------------------------------------------------------


def test_unterminated_config_string():
    expect_error("FromDevice(0) -> Print⟨here⟩(abc -> Discard\n\n",
                 "unterminated configuration string", "no matching ')'")


def test_unterminated_comment():
    expect_error("FromDevice(0) -> Discard\n  ⟨here⟩/* never closed\n\n",
                 "unterminated comment", "*/")


def test_unterminated_quote_points_at_the_quote():
    expect_error('FromDevice(0) -> Print(x, ⟨here⟩"abc) -> Discard\n', "unterminated quoted")


def test_double_arrow():
    expect_error("a :: FromDevice(0); b :: Discard;\na -> ⟨here⟩-> b", "expected an element")


def test_declaration_without_class():
    expect_error("a :: ⟨here⟩;", "expected a class name")


def test_port_with_a_name():
    expect_error("[⟨here⟩x]", "expected a port number", "[0]")


def test_stray_closing_brace():
    expect_error("FromDevice(0) -> Discard\n⟨here⟩}", "'}'")


def test_stray_closing_paren():
    expect_error("FromDevice(0) -> Discard ⟨here⟩)", "')'")


def test_unclosed_compound():
    err = expect_error("elementclass A { input -> output\nFromDevice(0) -> A -> Discard⟨here⟩",
                       "'}'")
    assert "1:" in (err.hint or "")


def test_unclosed_group():
    expect_error("FromDevice(0) -> ( input -> output -> Discard⟨here⟩", "')'")


def test_unexpected_character():
    expect_error("FromDevice(0) -> ⟨here⟩? -> Discard", "unexpected character")


def test_unexpected_unicode_character():
    expect_error("FromDevice(0) -> ⟨here⟩→ Discard", "unexpected character")


def test_number_where_a_statement_belongs():
    expect_error("FromDevice(0) -> Discard; ⟨here⟩1 -> Discard", "expected a statement", "[1]")


def test_parameter_outside_a_config_string():
    expect_error("FromDevice(0) -> Discard ⟨here⟩$x", "expected a statement", "$x")


def test_dollar_without_a_name():
    expect_error("FromDevice(0) -> Discard ⟨here⟩$ ", "'$'")


def test_identifier_with_digits_only_component():
    expect_error("FromDevice(0) -> ⟨here⟩x/1 :: Counter -> Discard", "only of digits")
    expect_error("FromDevice(0) -> ⟨here⟩1/x :: Counter -> Discard", "only of digits")


def test_identifier_with_trailing_slash():
    expect_error("FromDevice(0) -> ⟨here⟩x/ :: Counter -> Discard", "ends with '/'")


def test_unicode_digit_port_is_a_clean_error():
    # '²'.isdigit() is true but int('²') fails: must be an error, not a crash.
    errors = errors_of("FromDevice(0) -> [²] Discard")
    assert len(errors) == 1


def test_unicode_digit_line_directive_is_a_clean_error():
    errors = errors_of('# ² "x"\nFromDevice(0) -> Discard')
    assert len(errors) == 1


def test_line_directive_to_line_zero_is_refused():
    # Positions are 1-based; `# 0` would make every following position line 0.
    text = '# 0 "x.click"\nFromDevice(0) -> Strip(abc) -> Discard\n'
    errors = errors_of(text)
    assert all(e.pos.line >= 1 for e in errors), [str(e) for e in errors]


def test_bad_line_directive():
    expect_error('FromDevice(0) -> Discard\n⟨here⟩# oops\n', "line directive")


def test_errors_after_a_line_directive_use_its_file_and_line():
    text = 'FromDevice(0) -> Discard\n# 100 "gen.click"\nFromDevice(1) -> Strip(abc) -> Discard\n'
    errors = errors_of(text)
    assert len(errors) == 1
    assert (errors[0].pos.file, errors[0].pos.line, errors[0].pos.col) == ("gen.click", 100, 24)


def test_tabs_count_as_one_column():
    expect_error("\tFromDevice(0)\t->\tStrip(⟨here⟩abc)\t->\tDiscard", "byte count")


def test_crlf_line_endings():
    expect_error("FromDevice(0)\r\n  -> Strip(⟨here⟩abc)\r\n  -> Discard\r\n", "byte count")


def test_columns_count_characters_not_bytes():
    expect_error("/* ünïcödé → */ FromDevice(0) -> Strip(⟨here⟩abc) -> Discard", "byte count")


# -- several errors --------------------------------------------------------------------


def test_several_errors_reported_in_source_order():
    text, at = locate("FromDevice(0) -> Strip(⟨1⟩abc) -> Discard;\n"
                      "FromDevice(1) -> ⟨2⟩nope -> Discard;\n"
                      "x :: Counter; FromDevice(2) -> x -> Discard;\n"
                      "⟨3⟩x :: Counter;\n"
                      "FromDevice(3) -> Strip(⟨4⟩$undefined) -> Discard;\n"
                      "FromDevice(4) -> ⟨5⟩Cuonter -> Discard\n")
    with pytest.raises(ConfigErrors) as info:
        from conftest import build
        build(text)
    errors = info.value.errors
    got = [(e.pos.line, e.pos.col) for e in errors]
    assert got == [at[k] for k in "12345"], "\n".join(str(e) for e in errors)


def test_errors_in_source_order_across_line_directives():
    # A line directive renames what follows; the report still follows the source.
    text = ("FromDevice(0) -> Strip(abc) -> Discard\n"
            '# 1 "a.click"\n'
            "FromDevice(1) -> Strip(xyz) -> Discard\n")
    errors = errors_of(text)
    assert [e.pos.file for e in errors] == [FILE, "a.click"]


def test_each_error_is_reported_once():
    errors = errors_of("FromDevice(0) -> Strip(abc) -> Discard;\n"
                       "FromDevice(1) -> Strip(abc) -> Discard")
    assert len(errors) == 2
    assert errors[0].pos.line == 1 and errors[1].pos.line == 2


def test_config_errors_are_nfv_errors():
    from conftest import build
    with pytest.raises(NfvError):
        build("FromDevice(0) -> nope")
    with pytest.raises(NfvError):
        build("FromDevice(0) -> (")


def test_errors_inside_compounds_are_reported_once_per_instance_position():
    # The same bad argument inside a compound used twice is at one source position.
    text, at = locate("elementclass A { input -> Strip(⟨here⟩abc) -> output }\n"
                      "FromDevice(0) -> A -> Discard; FromDevice(1) -> A -> Discard")
    errors = errors_of(text)
    assert 1 <= len(errors) <= 2
    assert all((e.pos.line, e.pos.col) == at["here"] for e in errors)
