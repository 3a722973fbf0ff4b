"""The demo: three end customers' app databases (SQLite) synced into a DuckDB warehouse."""
