"""Browsing a connection: namespaces, tables and a table's schema."""

from __future__ import annotations

from typing import Any

from sync_pipelines.api import browse
from sync_pipelines.api.service.base import ServiceBase


class ConnectionBrowsing(ServiceBase):
    """Browsing a connection: namespaces, tables and a table's schema."""

    def _browsing(self, org: int, connection_id: int) -> browse.Browsing:
        return browse.Browsing(
            self.connection_spec(org, connection_id),
            where=f"organization {org} connection {connection_id}",
            label=f"connection {connection_id}",
        )

    def list_namespaces(self, org: int, connection_id: int) -> list[str]:
        """The namespaces of a connection's database."""
        return browse.list_namespaces(self._browsing(org, connection_id))

    def list_tables(self, org: int, connection_id: int, namespace: str) -> list[str]:
        """The tables of one namespace of a connection's database."""
        return browse.list_tables(self._browsing(org, connection_id), namespace)

    def get_schema(
        self, org: int, connection_id: int, namespace: str, table_name: str
    ) -> list[dict[str, Any]]:
        """The columns of a table, typed as object fields."""
        return browse.table_schema(self._browsing(org, connection_id), namespace, table_name)
