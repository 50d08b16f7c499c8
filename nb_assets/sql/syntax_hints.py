"""Hints for a query that does not parse: a misspelled clause keyword, a caret under the token.

Pure text helpers for sql_lineage's syntax problems; no sqlglot parsing here.
"""

from __future__ import annotations

import difflib

from sqlglot.tokens import Token, TokenType

__all__ = ["caret", "misspelled_keyword"]

_CLAUSE_KEYWORDS = ("SELECT", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "JOIN", "UNION", "QUALIFY", "WINDOW")


def misspelled_keyword(token: Token) -> str | None:
    """FORM read as an alias is the classic: the error then lands on the token after it."""
    if token.token_type != TokenType.VAR:
        return None
    word = token.text.upper()
    close = difflib.get_close_matches(word, _CLAUSE_KEYWORDS, n=1, cutoff=0.75)
    return close[0] if close and not word.startswith(close[0]) else None  # ORDERS is a name, not ORDER


_EXCERPT = 50  # characters kept either side of the token on a long line


def caret(sql: str, start: int, end: int) -> str:
    """The token's line, indented, with carets under the token (tabs kept so they line up)."""
    line_start = sql.rfind("\n", 0, start) + 1
    line_end = len(sql) if (newline := sql.find("\n", start)) == -1 else newline
    left, right = max(line_start, start - _EXCERPT), min(line_end, end + _EXCERPT)
    prefix = ("…" if left > line_start else "") + sql[left:start]
    text = prefix + sql[start:right] + ("…" if right < line_end else "")
    pad = "".join(c if c == "\t" else " " for c in prefix)
    return f"    {text}\n    {pad}{'^' * max(1, min(end, line_end) - start)}"
