"""The read-only check of a sync's ``custom_join`` (parsed with sqlglot, imported lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp


# Statement kinds a custom_join must not hold (names in sqlglot.exp; sqlglot is imported only
# when a custom_join is checked, so reading the models stays light).
_FORBIDDEN_SQL = (
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Create",
    "Drop",
    "Alter",
    "Command",
    "Into",
    "TruncateTable",
)


# Functions a custom_join must not call: they read or write the database server's files, reach
# the network, run SQL given as text, load code, change settings or hold the server.
_FORBIDDEN_FUNCTIONS = frozenset(
    {
        # SQLite (fileio, zipfile extensions)
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "zipfile",
        "fts3_tokenizer",
        # PostgreSQL
        "set_config",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_logdir_ls",
        "cursor_to_xml",
        "table_to_xml",
        "table_to_xml_and_xmlschema",
        # MySQL / MariaDB
        "load_file",
        "sleep",
        "benchmark",
        "get_lock",
        "sys_exec",
        "sys_eval",
        # DuckDB
        "sniff_csv",
        "glob",
        "query",
        "query_table",
        "getenv",
    }
)


_FORBIDDEN_FUNCTION_PREFIXES = (
    "pg_read_",
    "pg_ls_",
    "pg_stat_file",
    "pg_file_",
    "pg_sleep",
    "pg_advisory",
    "lo_",
    "dblink",
    "query_to_xml",
    "read_",
    "parquet_",
    "sqlar_",
)


_FORBIDDEN_FUNCTION_SUFFIXES = ("_scan",)


_FILE_NAME_MARKS = ("/", "\\", ".", ":")


def _forbidden_function(statement: exp.Expression) -> str | None:
    """The first function call of a dangerous kind in ``statement``, if any."""
    from sqlglot import exp

    for call in statement.find_all(exp.Func):
        name = (call.name if isinstance(call, exp.Anonymous) else call.sql_name()).lower()
        if (
            name in _FORBIDDEN_FUNCTIONS
            or name.startswith(_FORBIDDEN_FUNCTION_PREFIXES)
            or name.endswith(_FORBIDDEN_FUNCTION_SUFFIXES)
        ):
            return name
    return None


def _without_trailing_semicolons(text: str) -> str:
    """``text`` up to its last token: trailing ``;`` and comments (``-- ...``) removed."""
    from sqlglot.tokens import Tokenizer, TokenType

    tokens = Tokenizer().tokenize(text)
    while tokens and tokens[-1].token_type is TokenType.SEMICOLON:
        tokens.pop()
    return text[: tokens[-1].end + 1] if tokens else ""


def check_read_only_select(sql: str) -> str:
    """Return ``sql`` without trailing ``;`` and comments if it is exactly one read-only SELECT.

    Raises:
        ValueError: it is empty, several statements, not a SELECT, writes, or calls a function
            that reaches files, the network or the server (``pg_read_file``, ``load_extension``).
    """
    import sqlglot
    from sqlglot import exp

    try:
        text = _without_trailing_semicolons(sql.strip())
        if not text:
            raise ValueError("custom_join is empty")
        statements = [s for s in sqlglot.parse(text) if s is not None]
    except sqlglot.errors.ParseError as error:
        raise ValueError(
            f"custom_join is not valid SQL: {error.errors[0]['description']}"
        ) from None
    except sqlglot.errors.SqlglotError as error:  # e.g. an unterminated quote
        raise ValueError(f"custom_join is not valid SQL: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise ValueError("custom_join nests too deeply") from None
    if len(statements) != 1:
        raise ValueError("custom_join must be a single SELECT statement, not several")
    statement = statements[0]
    if not isinstance(statement, exp.Query) or any(
        statement.find_all(*(getattr(exp, kind) for kind in _FORBIDDEN_SQL))
    ):
        raise ValueError("custom_join must be a read-only SELECT (no DDL or DML)")
    if statement.find(exp.Lock) is not None:
        raise ValueError("custom_join must not lock rows (FOR UPDATE/SHARE)")
    for table in statement.find_all(exp.Table):
        if any(mark in table.name for mark in _FILE_NAME_MARKS):
            # DuckDB reads FROM 'file.csv' (or a URL) as a file
            raise ValueError(f"custom_join must not read files or URLs ({table.name!r})")
    forbidden = _forbidden_function(statement)
    if forbidden is not None:
        raise ValueError(
            f"custom_join must not call {forbidden}(): it reaches files, the network or the "
            "database server itself"
        )
    return text
