"""The ``sync-pipelines`` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from sync_pipelines import secret_box, settings
from sync_pipelines.api.connect import API_KEY_ENV, API_URL_ENV, open_client
from sync_pipelines.api.errors import SyncApiError


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


def _list_syncs(args: argparse.Namespace) -> int:
    client = open_client(args.api_url, args.api_key)
    syncs = client.list_syncs(end_customer_id=args.end_customer_id)
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in syncs], indent=2))
        return 0
    header = f"{'id':>5}  {'status':8} {'health':8} {'schedule':11} {'customer':16} name"
    print(header)
    for sync in syncs:
        print(
            f"{sync.id:>5}  {sync.status.value:8} {sync.health.status.value:8} "
            f"{sync.sync_frequency or '-':11} {sync.end_customer_id:16} {sync.display_name}"
        )
    return 0


def _run(args: argparse.Namespace) -> int:
    from sync_pipelines.engine import SyncRunError, run_sync

    client = open_client(args.api_url, args.api_key)
    try:
        result = run_sync(
            args.sync_id, client, full_refresh=args.full_refresh, batch_size=args.batch_size
        )
    except SyncRunError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 1
    print(
        f"sync {result.sync_id} run {result.run_id} {result.status}: {result.rows_read} rows "
        f"read, {result.rows_written} written ({result.rows_inserted} inserted, "
        f"{result.rows_updated} updated), {result.rows_unchanged} unchanged in "
        f"{result.duration_seconds:.2f}s"
    )
    return 0


def _cancel_run(args: argparse.Namespace) -> int:
    """Cancel a sync's pending run request, else its running run (``DELETE /sync/{id}/run``)."""
    client = open_client(args.api_url, args.api_key)
    run = client.cancel_run_request(args.sync_id)
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


def _dev(args: argparse.Namespace) -> int:
    """Exec ``dagster dev`` with an instance home in the project's ignored home."""
    workspace = Path(args.workspace).resolve()
    if not workspace.exists():
        print(f"sync-pipelines: no workspace file at {workspace}", file=sys.stderr)
        return 2
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or settings.home() / "dagster").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = workspace.parent / "dagster.yaml"
    if instance_config.exists():
        shutil.copyfile(instance_config, dagster_home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "dev", "-w", str(workspace), "--host", args.host, "--port", str(args.port)]
    os.execv(dagster, command)


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

    syncs = commands.add_parser("syncs", help="syncs").add_subparsers(
        dest="syncs_command", required=True
    )
    list_syncs = syncs.add_parser("list", help="list syncs")
    list_syncs.add_argument("--end-customer-id")
    list_syncs.add_argument("--json", action="store_true", help="print JSON")
    _add_client_options(list_syncs)
    list_syncs.set_defaults(handler=_list_syncs)

    run = commands.add_parser("run", help="run one sync now")
    run.add_argument("sync_id", type=int)
    run.add_argument("--full-refresh", action="store_true", help="re-read the whole source")
    run.add_argument("--batch-size", type=int, default=50_000)
    _add_client_options(run)
    run.set_defaults(handler=_run)

    runs = commands.add_parser("runs", help="runs").add_subparsers(
        dest="runs_command", required=True
    )
    cancel = runs.add_parser(
        "cancel", help="cancel a sync's requested or running run (its lease is released)"
    )
    cancel.add_argument("sync_id", type=int)
    _add_client_options(cancel)
    cancel.set_defaults(handler=_cancel_run)

    dev = commands.add_parser("dev", help="open the Dagster UI on the demo code location")
    dev.add_argument("--workspace", default="workspace.yaml")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(handler=_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sync-pipelines``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except SyncApiError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
