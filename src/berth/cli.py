"""The `berth` command: up, server, env, logs."""
from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import click

from .config import ENDPOINT_FILE, Settings


def _server_options(fn):  # type: ignore[no-untyped-def]
    for opt in reversed([
        click.option("--host", default=None, help="Address to listen on [127.0.0.1]."),
        click.option("--port", type=int, default=None, help="Port to listen on [4750]."),
        click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help="Where state lives [./.berth]."),
        click.option("--database-url", default=None,
                     help="SQLAlchemy URL [sqlite in the data dir]; postgresql+psycopg://…"),
        click.option("--access-key", default=None, help="Access key id clients sign with."),
        click.option("--secret-key", default=None, help="Secret key clients sign with."),
    ]):
        fn = opt(fn)
    return fn


@click.group()
def main() -> None:
    """berth: containers on a cluster and functions on events, behind the AWS APIs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)


def _announce(settings: Settings, what: str) -> None:
    click.echo(f"berth {what} listening on {settings.endpoint}")
    click.echo(f"data dir: {settings.data_dir}")
    click.echo("point AWS clients at it with:")
    for key, value in settings.client_env().items():
        click.echo(f"  export {key}={shlex.quote(value)}")
    click.echo(f"or: eval \"$(berth env --data-dir {shlex.quote(str(settings.data_dir))})\"",
               nl=True)


@main.command()
@_server_options
def server(**flags: object) -> None:
    """Run the control plane alone."""
    from .server import serve
    settings = Settings.load(**flags)
    settings.ensure_credentials()
    _announce(settings, "server")
    serve(settings)


@main.command()
@_server_options
def up(**flags: object) -> None:
    """Run the whole platform on this machine: server and local agent."""
    from .server import serve
    settings = Settings.load(**flags)
    settings.local_worker = True
    settings.ensure_credentials()
    _announce(settings, "up")
    serve(settings)


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def env(data_dir: Path | None) -> None:
    """Print the exports that point AWS SDKs and the AWS CLI at a running berth."""
    settings = Settings.load(data_dir=data_dir)
    if not (settings.data_dir / "credentials.json").exists() and not settings.access_key:
        raise click.ClickException(f"no berth data dir at {settings.data_dir} (run `berth up`)")
    settings.ensure_credentials()
    endpoint_file = settings.data_dir / ENDPOINT_FILE
    endpoint = endpoint_file.read_text().strip() if endpoint_file.exists() else None
    for key, value in settings.client_env(endpoint).items():
        click.echo(f"export {key}={shlex.quote(value)}")


@main.group()
def logs() -> None:
    """CloudWatch Logs from the command line."""


@logs.command("tail")
@click.argument("group")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events.")
@click.option("--since", default=600, type=int, help="Start this many seconds ago.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def logs_tail(group: str, follow: bool, since: int, data_dir: Path | None) -> None:
    """Print a log group's events as they arrive."""
    from .logs.tail import tail
    settings = Settings.load(data_dir=data_dir)
    settings.ensure_credentials()
    endpoint_file = settings.data_dir / ENDPOINT_FILE
    endpoint = endpoint_file.read_text().strip() if endpoint_file.exists() else settings.endpoint
    tail(settings.client_env(endpoint), group, follow=follow, since_seconds=since)


if __name__ == "__main__":
    main()
