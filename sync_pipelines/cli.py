"""The ``sync-pipelines`` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml

from sync_pipelines.api.connect import API_KEY_ENV, API_URL_ENV, open_client
from sync_pipelines.common import secret_box, settings
from sync_pipelines.contract.errors import SyncApiError, ValidationFailedError, validation_details
from sync_pipelines.contract.models import (
    AnySyncCreate,
    DestinationCreate,
    ObjectCreate,
    RunStatus,
    SourceCreate,
    SyncStatus,
    SyncUpdate,
)
from sync_pipelines.contract.protocol import SyncApi


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-url",
        default=os.environ.get(API_URL_ENV),
        help=f"a sync API server (default ${API_URL_ENV}; none: the embedded API)",
    )
    parser.add_argument(
        "--api-key", default=os.environ.get(API_KEY_ENV), help=f"default ${API_KEY_ENV}"
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sync_pipelines.api.app import create_app

    if not os.environ.get(settings.SECRET_KEY_ENV):
        secret_box.load_key()  # made now if missing, so the note below names a real file
        logging.getLogger("sync_pipelines.api").warning(
            "%s is not set: connection secrets are sealed with %s; runners on other machines "
            "need that key as %s",
            settings.SECRET_KEY_ENV,
            settings.home() / "secret.key",
            settings.SECRET_KEY_ENV,
        )
    app = create_app(database_url=args.database_url)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _create_key(args: argparse.Namespace) -> int:
    from sync_pipelines.api.service import SyncService

    service = SyncService.open(args.database_url)
    print(service.create_api_key(args.org))
    print(f"API key for organization {args.org!r}: shown once, store it now.", file=sys.stderr)
    return 0


def _generate_secret_key(_args: argparse.Namespace) -> int:
    print(secret_box.generate_key())
    return 0


Column = tuple[str, Callable[[Any], Any]]


@dataclass(frozen=True)
class _Kind:
    """A resource the CLI manages: how to list, show, create and delete it, and its table."""

    name: str
    singular: str
    body: Any
    columns: tuple[Column, ...]

    def list(self, client: SyncApi, args: argparse.Namespace) -> list:
        if self.name == "syncs":
            return client.list_syncs(end_customer_id=args.end_customer_id)
        return getattr(client, f"list_{self.name}")()

    def get(self, client: SyncApi, item_id: int) -> Any:
        return getattr(client, f"get_{self.singular}")(item_id)

    def create(self, client: SyncApi, body: Any) -> Any:
        return getattr(client, f"create_{self.singular}")(body)

    def delete(self, client: SyncApi, item_id: int) -> None:
        getattr(client, f"delete_{self.singular}")(item_id)


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


_CONNECTION: Column = ("type", lambda r: _value(r.connection.connection_type))
_KINDS = {
    kind.name: kind
    for kind in (
        _Kind(
            "sources",
            "source",
            SourceCreate,
            (
                ("id", lambda r: r.id),
                ("customer", lambda r: r.end_customer_id),
                _CONNECTION,
                ("name", lambda r: r.display_name),
            ),
        ),
        _Kind(
            "destinations",
            "destination",
            DestinationCreate,
            (("id", lambda r: r.id), _CONNECTION, ("name", lambda r: r.display_name)),
        ),
        _Kind(
            "objects",
            "object",
            ObjectCreate,
            (
                ("id", lambda r: r.id),
                ("destination", lambda r: r.destination_id),
                ("table", lambda r: f"{r.namespace}.{r.table_name}"),
                ("mode", lambda r: _value(r.sync_mode)),
                ("name", lambda r: r.display_name),
            ),
        ),
        _Kind(
            "syncs",
            "sync",
            AnySyncCreate,
            (
                ("id", lambda r: r.id),
                ("status", lambda r: _value(r.status)),
                ("health", lambda r: _value(r.health.status)),
                ("schedule", lambda r: r.sync_frequency or "-"),
                ("customer", lambda r: r.end_customer_id),
                ("name", lambda r: r.display_name),
            ),
        ),
    )
}
_RUN_COLUMNS: tuple[Column, ...] = (
    ("id", lambda r: r.id),
    ("status", lambda r: _value(r.status)),
    ("started", lambda r: r.started_at.isoformat(timespec="seconds") if r.started_at else "-"),
    ("seconds", lambda r: f"{r.duration_seconds:.1f}" if r.duration_seconds is not None else "-"),
    ("read", lambda r: r.rows_read),
    ("written", lambda r: r.rows_written),
    ("error", lambda r: (r.error or "").splitlines()[0] if r.error else ""),
)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _print_table(rows: Sequence[Any], columns: Sequence[Column]) -> None:
    """A table for people: a header, then one line per row (numbers right-aligned)."""
    cells = [[str(get(row)) for _, get in columns] for row in rows]
    widths = [max([len(name), *(len(c[i]) for c in cells)]) for i, (name, _) in enumerate(columns)]
    numeric = [bool(cells) and all(c[i].isdigit() for c in cells) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    print(line([name for name, _ in columns]))
    for values in cells:
        print(line(values))


def _print_item(item: Any) -> None:
    """One resource for people: its fields as YAML (secrets are masked by the API)."""
    print(yaml.safe_dump(item.model_dump(mode="json"), sort_keys=False).rstrip())


def _read_body(args: argparse.Namespace) -> Any:
    """The body of ``create``: ``--data`` JSON, or ``--file`` JSON/YAML (``-`` for stdin)."""
    if args.data is not None:
        text, where = args.data, "--data"
    else:
        where = args.file
        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        except OSError as error:
            raise ValidationFailedError(f"cannot read {where}: {error.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValidationFailedError(f"{where} is not JSON or YAML: {error}") from None


def _client(args: argparse.Namespace) -> SyncApi:
    return open_client(args.api_url, args.api_key)


def _list(args: argparse.Namespace) -> int:
    kind = _KINDS[args.kind]
    items = kind.list(_client(args), args)
    if args.json:
        _print_json([item.model_dump(mode="json") for item in items])
    else:
        _print_table(items, kind.columns)
    return 0


def _show(args: argparse.Namespace) -> int:
    item = _KINDS[args.kind].get(_client(args), args.id)
    if args.json:
        _print_json(item.model_dump(mode="json"))
    else:
        _print_item(item)
    return 0


def _create(args: argparse.Namespace) -> int:
    kind = _KINDS[args.kind]
    data = _read_body(args)
    try:
        body = pydantic.TypeAdapter(kind.body).validate_python(data)
    except pydantic.ValidationError as error:
        details = validation_details(error.errors(include_url=False, include_input=False))
        raise ValidationFailedError(f"invalid {kind.singular}", details) from None
    item = kind.create(_client(args), body)
    if args.json:
        _print_json(item.model_dump(mode="json"))
    else:
        print(f"created {kind.singular} {item.id} ({item.display_name!r})")
    return 0


def _delete(args: argparse.Namespace) -> int:
    kind = _KINDS[args.kind]
    kind.delete(_client(args), args.id)
    if args.json:
        _print_json({"deleted": kind.singular, "id": args.id})
    else:
        print(f"deleted {kind.singular} {args.id}")
    return 0


def _set_status(status: SyncStatus) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        sync = _client(args).update_sync(args.id, SyncUpdate(status=status))
        if args.json:
            _print_json(sync.model_dump(mode="json"))
        else:
            print(f"sync {sync.id} ({sync.display_name!r}) is {sync.status.value}")
        return 0

    return handler


def _list_runs(args: argparse.Namespace) -> int:
    status = RunStatus(args.status) if args.status else None
    runs = _client(args).list_runs(args.sync_id, status=status)
    if args.json:
        _print_json([run.model_dump(mode="json") for run in runs])
    else:
        _print_table(runs, _RUN_COLUMNS)
    return 0


def _apply(args: argparse.Namespace) -> int:
    from sync_pipelines.orchestration.apply import apply_syncs
    from sync_pipelines.orchestration.syncs_file import SyncsFileError

    client = _client(args)
    try:
        applied = apply_syncs(client, args.file)
    except SyncsFileError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(
            {
                "created": applied.created,
                "updated": applied.updated,
                "source_ids": applied.source_ids,
                "destination_ids": applied.destination_ids,
                "object_ids": applied.object_ids,
                "sync_ids": applied.sync_ids,
            }
        )
        return 0
    for entry in applied.created:
        print(f"created {entry}")
    for entry in applied.updated:
        print(f"updated {entry}")
    ids = (applied.source_ids, applied.destination_ids, applied.object_ids, applied.sync_ids)
    total = sum(len(entries) for entries in ids)
    print(
        f"{args.file}: {total} entries, {len(applied.created)} created, "
        f"{len(applied.updated)} updated"
    )
    return 0


def _workers(text: str) -> int:
    """``--workers``: an integer from 1 to 32."""
    from sync_pipelines.contract.models import MAX_WORKERS

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to {MAX_WORKERS}: {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    from sync_pipelines.engine import SyncRunError
    from sync_pipelines.run_any import run_any_sync

    client = open_client(args.api_url, args.api_key)
    try:
        result = run_any_sync(
            client.get_sync(args.sync_id),
            client,
            full_refresh=args.full_refresh,
            batch_size=args.batch_size,
            allow_mass_delete=args.allow_mass_delete,
            workers=args.workers,
        )
    except ValueError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 2
    except SyncRunError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(_result_json(result))
        return 0
    print(
        f"sync {result.sync_id} run {result.run_id} {result.status}: {result.rows_read} rows "
        f"read, {result.rows_written} written ({result.rows_inserted} inserted, "
        f"{result.rows_updated} updated), {result.rows_unchanged} unchanged"
        f"{f', {result.rows_deleted} deleted' if result.rows_deleted else ''} in "
        f"{result.duration_seconds:.2f}s"
    )
    return 0


def _result_json(result: Any) -> dict[str, Any]:
    """A completed run's result as JSON (``run --json``)."""
    return {
        "sync_id": result.sync_id,
        "run_id": result.run_id,
        "status": _value(result.status),
        "rows_read": result.rows_read,
        "rows_written": result.rows_written,
        "rows_inserted": result.rows_inserted,
        "rows_updated": result.rows_updated,
        "rows_unchanged": result.rows_unchanged,
        "rows_deleted": result.rows_deleted,
        "batches": result.batches,
        "destination_table": result.destination_table,
        "cursor_after": (
            result.cursor_after.model_dump(mode="json", exclude_none=True)
            if result.cursor_after
            else None
        ),
        "duration_seconds": round(result.duration_seconds, 3),
    }


def _cancel_run(args: argparse.Namespace) -> int:
    """Cancel a sync's pending run request, else its running run (``DELETE /sync/{id}/run``)."""
    client = open_client(args.api_url, args.api_key)
    run = client.cancel_run_request(args.sync_id)
    if args.json:
        running = client.list_runs(args.sync_id, status="running") if run.started_at is None else []
        _print_json(
            {
                "cancelled": run.model_dump(mode="json"),
                "still_running": running[0].id if running else None,
            }
        )
        return 0
    if run.started_at is None:
        print(f"sync {args.sync_id}: requested run {run.id} cancelled")
        running = client.list_runs(args.sync_id, status="running")
        if running:
            print(
                f"sync {args.sync_id}: run {running[0].id} is still running; run this command "
                "again to cancel it",
                file=sys.stderr,
            )
        return 0
    print(
        f"sync {args.sync_id}: run {run.id} cancelled; its lease is released, so the next run "
        "starts at once (a live runner stops at its next checkpoint)"
    )
    return 0


DAGSTER_DEV_NOTICE_FILTER = "ignore:Function `dev_command` is superseded"
"""A ``-W`` filter for the notice ``dagster dev`` prints when it starts ("use dg dev")."""


def _dev(args: argparse.Namespace) -> int:
    """Apply the syncs files, then exec ``dagster dev`` with an instance home in the project's
    ignored home (``dagster.yaml`` beside the workspace is copied there)."""
    from sync_pipelines.demo.setup import DEMO_SYNCS_FILE, demo_home, refresh_demo_data

    workspace = Path(args.workspace).resolve()
    if not workspace.exists():
        print(f"sync-pipelines: no workspace file at {workspace}", file=sys.stderr)
        return 2
    os.environ[settings.HOME_ENV] = str(demo_home())  # absolute: Dagster runs elsewhere
    syncs_files = args.apply if args.apply is not None else [str(DEMO_SYNCS_FILE)]
    if not args.no_apply:
        if DEMO_SYNCS_FILE.resolve() in {Path(f).resolve() for f in syncs_files}:
            refresh_demo_data()  # the app databases its sources name
        for syncs_file in syncs_files:
            args.file = syncs_file
            if _apply(args) != 0:
                return 1
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or settings.home() / "dagster").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = workspace.parent / "dagster.yaml"
    if instance_config.exists():
        shutil.copyfile(instance_config, dagster_home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    # dagster dev warns about a dagster.yaml in its working folder that it does not use: it is
    # the one copied above, so Dagster runs from its home
    os.chdir(dagster_home)
    dagster = str(Path(sys.executable).parent / "dagster")
    # Dagster 1.13 marks `dagster dev` superseded by `dg dev` and says so on every start; we stay
    # on it knowingly (dagster-dg-cli pins the previous dagster release, see the README), so
    # that one notice is silenced for the `dagster dev` process only
    command = [
        sys.executable,
        "-W",
        DAGSTER_DEV_NOTICE_FILTER,
        dagster,
        "dev",
        "-w",
        str(workspace),
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    os.execv(sys.executable, command)


def _add_resource_commands(
    commands: argparse._SubParsersAction, kind: _Kind, extra: Callable | None = None
) -> argparse._SubParsersAction:
    """``<kind> list|show|create|delete`` (and what ``extra`` adds)."""
    group = commands.add_parser(kind.name, help=f"{kind.name} of the sync API").add_subparsers(
        dest=f"{kind.name}_command", required=True
    )
    listing = group.add_parser("list", help=f"list {kind.name}")
    if kind.name == "syncs":
        listing.add_argument("--end-customer-id", help="only this end customer's syncs")
    listing.set_defaults(handler=_list)
    show = group.add_parser("show", help=f"show one {kind.singular}")
    show.add_argument("id", type=int)
    show.set_defaults(handler=_show)
    create = group.add_parser(
        "create", help=f"create a {kind.singular} from its POST /{kind.singular} body"
    )
    body = create.add_mutually_exclusive_group(required=True)
    body.add_argument("--data", help="the body as JSON")
    body.add_argument("--file", help="a JSON or YAML file with the body ('-': stdin)")
    create.set_defaults(handler=_create)
    delete = group.add_parser("delete", help=f"delete a {kind.singular}")
    delete.add_argument("id", type=int)
    delete.set_defaults(handler=_delete)
    for parser in (listing, show, create, delete):
        _add_output_options(parser, kind)
    return group


def _add_output_options(parser: argparse.ArgumentParser, kind: _Kind | None = None) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    _add_client_options(parser)
    if kind is not None:
        parser.set_defaults(kind=kind.name)


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="sync-pipelines", description="Incremental database syncs and their sync API."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    api = commands.add_parser("api", help="the sync API").add_subparsers(
        dest="api_command", required=True
    )
    serve = api.add_parser("serve", help="run the sync API as an HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--database-url", help="the store (default: SQLite in the home)")
    serve.set_defaults(handler=_serve)
    create_key = api.add_parser("create-key", help="make an organization's API key")
    create_key.add_argument("--org", required=True, help="the organization's name")
    create_key.add_argument("--database-url", help="the store (default: SQLite in the home)")
    create_key.set_defaults(handler=_create_key)
    secret = api.add_parser("generate-secret-key", help="a new key for $SYNC_PIPELINES_SECRET_KEY")
    secret.set_defaults(handler=_generate_secret_key)

    for name in ("sources", "destinations", "objects"):
        _add_resource_commands(commands, _KINDS[name])
    syncs = _add_resource_commands(commands, _KINDS["syncs"])
    for action, status in (("pause", SyncStatus.PAUSED), ("resume", SyncStatus.ACTIVE)):
        toggle = syncs.add_parser(action, help=f"{action} a sync")
        toggle.add_argument("id", type=int)
        _add_output_options(toggle)
        toggle.set_defaults(handler=_set_status(status))

    runs = commands.add_parser("runs", help="runs of a sync").add_subparsers(
        dest="runs_command", required=True
    )
    list_runs = runs.add_parser("list", help="list a sync's runs, newest first")
    list_runs.add_argument("sync_id", type=int)
    list_runs.add_argument("--status", choices=[s.value for s in RunStatus])
    _add_output_options(list_runs)
    list_runs.set_defaults(handler=_list_runs)
    cancel = runs.add_parser(
        "cancel", help="cancel a sync's requested or running run (its lease is released)"
    )
    cancel.add_argument("sync_id", type=int)
    _add_output_options(cancel)
    cancel.set_defaults(handler=_cancel_run)

    apply = commands.add_parser(
        "apply", help="apply a syncs.yaml (or a SyncPipelinesComponent defs.yaml) to the sync API"
    )
    apply.add_argument("file", help="the syncs.yaml")
    _add_output_options(apply)
    apply.set_defaults(handler=_apply)

    run = commands.add_parser("run", help="run one sync now")
    run.add_argument("sync_id", type=int)
    run.add_argument("--full-refresh", action="store_true", help="re-read the whole source")
    run.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="let the delete check delete more than the sync's max_delete_fraction",
    )
    run.add_argument("--batch-size", type=int, default=settings.DEFAULT_BATCH_SIZE)
    run.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="threads loading a backfill's key ranges in parallel, 1 to 32 "
        "(default: the sync's workers)",
    )
    _add_output_options(run)
    run.set_defaults(handler=_run)

    dev = commands.add_parser(
        "dev", help="apply the syncs files, then open the Dagster UI (dagster dev)"
    )
    dev.add_argument("--workspace", default="workspace.yaml")
    dev.add_argument(
        "--apply",
        action="append",
        metavar="FILE",
        help="a syncs.yaml to apply first (repeatable; default: the demo's)",
    )
    dev.add_argument("--no-apply", action="store_true", help="apply nothing")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    _add_client_options(dev)
    dev.set_defaults(handler=_dev, json=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sync-pipelines``."""
    args = build_parser().parse_args(argv)
    # warnings and errors only, on stderr (-v: everything): stdout is the command's output
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.handler(args)
    except SyncApiError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `sync-pipelines syncs list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
