"""The Click language front end: lexer, parser and AST with source positions.

`parse_file(path)` / `parse_text(text, file)` return an `ast.Config`; the
element graph (`nfv.graph`) flattens it.  Configuration strings are kept raw
(with positions) and split into arguments by `nfv.lang.config`.
"""
