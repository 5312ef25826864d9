"""The SQL dialects the engine parses: PostgreSQL's, except that ``FLOAT`` is
the 4-byte type as in DataFusion (``KalamPostgres``), and the same with ``$``
always a parameter sigil (``$1,$2`` and ``$name``) instead of a dollar-quoted
string (``Kalam``)."""

from __future__ import annotations

from typing import ClassVar

from sqlglot.dialects.postgres import Postgres
from sqlglot.tokens import TokenType


class KalamPostgres(Postgres):
    class Tokenizer(Postgres.Tokenizer):
        # PostgreSQL reads FLOAT as DOUBLE PRECISION; DataFusion, which runs the
        # queries, reads it as the 4-byte REAL. One meaning everywhere: DataFusion's.
        KEYWORDS: ClassVar[dict] = {**Postgres.Tokenizer.KEYWORDS, "FLOAT": TokenType.FLOAT}


class Kalam(KalamPostgres):
    class Tokenizer(KalamPostgres.Tokenizer):
        HEREDOC_STRINGS: ClassVar[list] = []
        SINGLE_TOKENS = {**Postgres.Tokenizer.SINGLE_TOKENS, "$": TokenType.PARAMETER}
