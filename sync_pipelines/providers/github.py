"""The ``github`` preset: a repository's issues and pull requests from GitHub's REST API.

* ``github:issue``: ``GET /repos/{owner}/{repo}/issues?state=all&sort=updated&direction=asc
  &since=...&per_page=100``, read by keyset on ``updated_at`` (``since`` is inclusive). The
  endpoint also returns pull requests (items with a ``pull_request`` key): they are left out.
* ``github:pull_request``: ``GET /repos/{owner}/{repo}/pulls?state=all&sort=updated
  &direction=desc&per_page=100``; this endpoint has no ``since``, so it is read newest first and
  stops at the cursor.

Both page with RFC 5988 ``Link`` headers. ``provider_config``: ``repository`` (``owner/name``),
``base_url`` (default ``https://api.github.com``; GitHub Enterprise: ``https://host/api/v3``),
``page_size`` (1-100) and the retry settings of
:class:`~sync_pipelines.providers.rest.RestProvider`. The credential's token is the property
``token`` (or ``access_token``), sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

import re
from typing import Any

from sync_pipelines.contract.models import FieldType
from sync_pipelines.providers.errors import ProviderConfigError
from sync_pipelines.providers.rest import (
    FieldSpec,
    Incremental,
    LinkPagination,
    RestAuth,
    RestCollection,
    RestProvider,
    parse_rest_provider,
    tunables,
)

__all__ = ["GITHUB_BASE_URL", "GITHUB_COLLECTIONS", "github_provider"]

GITHUB_BASE_URL = "https://api.github.com"
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

S, INT, B, T, J = (
    FieldType.STRING,
    FieldType.INTEGER,
    FieldType.BOOLEAN,
    FieldType.TIMESTAMP,
    FieldType.JSON,
)
_COMMON: dict[str, FieldType | FieldSpec] = {
    "id": INT,
    "node_id": S,
    "number": INT,
    "title": S,
    "state": S,
    "user_login": FieldSpec(type=S, path="user.login"),
    "body": S,
    "labels": J,
    "assignees": J,
    "locked": B,
    "author_association": S,
    "html_url": S,
    "created_at": T,
    "closed_at": T,
}
GITHUB_COLLECTIONS = frozenset({"issue", "pull_request"})


def _repository(provider_config: dict[str, Any]) -> str:
    repository = provider_config.get("repository")
    if (
        not isinstance(repository, str)
        or not _REPOSITORY.match(repository)
        or ".." in repository.split("/")
        or "." in repository.split("/")
    ):
        raise ProviderConfigError(
            f"github provider_config.repository must be 'owner/name', not {repository!r}",
            provider="github",
        )
    return repository


def github_provider(provider_config: dict[str, Any]) -> RestProvider:
    """GitHub's REST API for one repository, as a :class:`RestProvider`.

    Raises:
        ProviderConfigError: ``repository`` is missing or not ``owner/name``, or ``page_size``
            is not 1-100.
    """
    repository = _repository(provider_config)
    page_size = provider_config.get("page_size", 100)
    if not isinstance(page_size, int) or not 1 <= page_size <= 100:
        raise ProviderConfigError(
            "github provider_config.page_size must be an integer from 1 to 100", provider="github"
        )
    pagination = LinkPagination(size_param="per_page", size=page_size)
    issue = RestCollection(
        path=f"/repos/{repository}/issues",
        primary_key="id",
        updated_at="updated_at",
        updated_at_format="iso8601",
        params={"state": "all", "sort": "updated", "direction": "asc"},
        pagination=pagination,
        incremental=Incremental(param="since", format="iso8601", order="ascending"),
        fields={**_COMMON, "comments": INT, "state_reason": S},
        exclude_if_present=("pull_request",),
    )
    pull_request = RestCollection(
        path=f"/repos/{repository}/pulls",
        primary_key="id",
        updated_at="updated_at",
        updated_at_format="iso8601",
        params={"state": "all", "sort": "updated", "direction": "desc"},
        pagination=pagination,
        incremental=Incremental(order="descending"),
        # no since parameter: the cursor and the max_age_days window stop the newest-first read
        fields={
            **_COMMON,
            "draft": B,
            "merged_at": T,
            "merge_commit_sha": S,
            "head_ref": FieldSpec(type=S, path="head.ref"),
            "base_ref": FieldSpec(type=S, path="base.ref"),
        },
    )
    return parse_rest_provider(
        {
            "base_url": provider_config.get("base_url", GITHUB_BASE_URL),
            "auth": RestAuth(
                headers={"Authorization": "Bearer {token}"},
                aliases={"token": ("access_token", "secret", "api_key")},
            ),
            "headers": {
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "sync-pipelines",
            },
            "collections": {"issue": issue, "pull_request": pull_request},
            **tunables(provider_config),
        },
        name="github",
    )
