"""The SQL sync's reading side: read a source incrementally, as a stream of Arrow batches.

One run streams one query ordered by ``(cursor, primary key)``; the position after each batch is
the last row's ``(cursor, primary key)``, and the next run starts from there:

* ``incremental_update`` and ``incremental_append``: ``cursor >= last cursor`` (minus
  ``lookback``), so a row committed later with the last cursor value is still read; the upsert
  (or, for append, inserting only keys not yet present) absorbs the rows read twice. An append
  sync without a primary key cannot tell re-read rows apart: it reads strictly after the last
  ``(cursor, key)``.
* Rows whose cursor is NULL (``null_cursor: include``) are read every run in a pass of their own,
  ordered and keyset-paged by the primary key; ``fail`` refuses them, ``skip`` leaves them out.
* PostgreSQL and MySQL/MariaDB sources with a time cursor: the checkpoint never passes the start
  of the oldest transaction still open when the run began (:func:`commit_horizon`), so a
  transaction that sets ``updated_at = now()`` and commits late is read by the next run.

Values are always bound parameters. Memory is bounded by the batch: PostgreSQL and MySQL use
server-side cursors, SQLite is read through ADBC (Arrow batches) and DuckDB natively.

Modules: :mod:`.relation` (the source table or wrapped custom_join), :mod:`.keyset` (positions,
bounds, the keyset, NULL-cursor and backfill queries, the commit horizon), :mod:`.readers` (the
batch readers, one per dialect behind a registry, and the generic SQLAlchemy one),
:mod:`.passes` (the read passes: keyset read, NULL-cursor pass, backfill chunks) and
:mod:`.read_ahead` (reading the next batch in a thread while this one is written).
"""
