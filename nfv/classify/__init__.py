"""Click's packet classifier languages, parsed into typed ASTs for the classifier compiler.

`patterns`  Classifier's `OFFSET/VALUE%MASK` byte patterns (`parse_pattern`).
`ipfilter`  the tcpdump-like language of IPClassifier and IPFilter
            (`parse_expr`, `parse_rule`, `describe`).

Every parser takes one configuration argument's text and raises only
`nfv.errors.ArgError`, with the offset of the problem inside that text.
"""
from nfv.classify.ipfilter import (
    FALSE, FIELDS, OPS, TRUE, And, Expr, FalseExpr, FieldSpec, FieldTest, FilterRule, Not, Or,
    TrueExpr, describe, parse_expr, parse_rule,
)
from nfv.classify.patterns import ClassifierPattern, Clause, parse_pattern
from nfv.classify.patterns import describe as describe_pattern

__all__ = [
    "And", "ClassifierPattern", "Clause", "Expr", "FALSE", "FIELDS", "FalseExpr", "FieldSpec",
    "FieldTest", "FilterRule", "Not", "OPS", "Or", "TRUE", "TrueExpr", "describe",
    "describe_pattern", "parse_expr", "parse_pattern", "parse_rule",
]
