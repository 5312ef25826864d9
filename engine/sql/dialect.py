"""The SQL dialect the engine parses: PostgreSQL's, with ``$`` always a
parameter sigil (``$1,$2`` and ``$name``) instead of a dollar-quoted string."""

from __future__ import annotations

from typing import ClassVar

from sqlglot.dialects.postgres import Postgres
from sqlglot.tokens import TokenType


class Kalam(Postgres):
    class Tokenizer(Postgres.Tokenizer):
        HEREDOC_STRINGS: ClassVar[list] = []
        SINGLE_TOKENS = {**Postgres.Tokenizer.SINGLE_TOKENS, "$": TokenType.PARAMETER}
