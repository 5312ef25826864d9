"""The SQL dialects the engine parses: PostgreSQL's, except that ``FLOAT`` is
the 4-byte type as in DataFusion (``KalamPostgres``), and the same with ``$``
always a parameter sigil (``$1,$2`` and ``$name``) instead of a dollar-quoted
string (``Kalam``).

A query a rewrite changes reaches DataFusion rendered back from its sqlglot
tree, so what the tree is written as must mean the same to DataFusion:
format strings stay as written (DataFusion's ``to_char`` takes chrono's
``%Y``, which PostgreSQL's mapping turned into ``'YYYY'``, printed as such:
a wrong answer), and functions keep DataFusion's names where PostgreSQL's
differ (``isnan``, ``to_hex``, ``signum`` became ``IS_NAN``, ``HEX`` and
``SIGN``, which DataFusion does not know)."""

from __future__ import annotations

from typing import ClassVar

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.tokens import TokenType


class KalamPostgres(Postgres):
    TIME_MAPPING = {}  # format strings as written  # noqa: RUF012

    class Tokenizer(Postgres.Tokenizer):
        # PostgreSQL reads FLOAT as DOUBLE PRECISION; DataFusion, which runs the
        # queries, reads it as the 4-byte REAL. One meaning everywhere: DataFusion's.
        KEYWORDS: ClassVar[dict] = {**Postgres.Tokenizer.KEYWORDS, "FLOAT": TokenType.FLOAT}

    class Generator(Postgres.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS: ClassVar[dict] = {
            **Postgres.Generator.TRANSFORMS,
            exp.IsNan: lambda self, e: self.func("isnan", e.this),
            exp.Hex: lambda self, e: self.func("to_hex", e.this),
            exp.Sign: lambda self, e: self.func("signum", e.this),
        }


class Kalam(KalamPostgres):
    class Tokenizer(KalamPostgres.Tokenizer):
        HEREDOC_STRINGS: ClassVar[list] = []
        SINGLE_TOKENS = {**Postgres.Tokenizer.SINGLE_TOKENS, "$": TokenType.PARAMETER}
