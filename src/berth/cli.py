"""The `berth` command: up, server, agent, env, logs, image."""
from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import click

from .config import DATA_DIR_VARIABLE, Client, NoBerth, Settings, client_for, find_data_dir

# The client commands' --data-dir: they find a data dir, never make one.
CLIENT_DATA_DIR_HELP = (f"The data dir of the berth to use [${DATA_DIR_VARIABLE}, else ./.berth]; "
                        "it must exist.")


def _client_data_dir(fn):  # type: ignore[no-untyped-def]
    return click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                        help=CLIENT_DATA_DIR_HELP)(fn)


def _server_options(fn):  # type: ignore[no-untyped-def]
    for opt in reversed([
        click.option("--host", default=None, help="Address to listen on [127.0.0.1]."),
        click.option("--port", type=int, default=None, help="Port to listen on [4750]."),
        click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help=f"Where state lives, created if missing [${DATA_DIR_VARIABLE}, "
                          "else ./.berth]."),
        click.option("--database-url", default=None,
                     help="SQLAlchemy URL [sqlite in the data dir]; postgresql+psycopg://…"),
        click.option("--access-key", default=None, help="Access key id clients sign with."),
        click.option("--secret-key", default=None, help="Secret key clients sign with."),
    ]):
        fn = opt(fn)
    return fn


@click.group()
@click.version_option(package_name="berth", prog_name="berth")
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
    click.echo(f"or: eval \"$(berth env --data-dir {shlex.quote(str(settings.data_dir))})\"")


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
@click.option("--endpoint", default=None,
              help="The berth control plane [the data dir's endpoint, else http://127.0.0.1:4750].")
@click.option("--cluster", default=None, help="The cluster to join [default].")
@click.option("--driver", type=click.Choice(["docker", "runc", "process"]), default=None,
              help="Container driver [detected: docker, else runc as root, else process].")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where containers, images and the agent's state live, created if missing "
                   f"[${DATA_DIR_VARIABLE}, else ./.berth].")
@click.option("--access-key", default=None, help="Access key id to sign with.")
@click.option("--secret-key", default=None, help="Secret key to sign with.")
@click.option("--region", default=None, help="Region to sign with [us-east-1].")
@click.option("--availability-zone", default=None,
              help="The instance's ecs.availability-zone attribute [the region's a, e.g. "
                   "us-east-1a].")
def agent(endpoint: str | None, cluster: str | None, driver: str | None,
          data_dir: Path | None, access_key: str | None, secret_key: str | None,
          region: str | None, availability_zone: str | None) -> None:
    """Join a cluster as a container instance and run the tasks it is given."""
    from .agent.agent import AgentError, run_agent
    settings = Settings.load(agent_endpoint=endpoint, agent_cluster=cluster,
                             agent_driver=driver, data_dir=data_dir, access_key=access_key,
                             secret_key=secret_key, region=region,
                             agent_availability_zone=availability_zone)
    try:
        code = run_agent(settings)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@main.command()
@_client_data_dir
def env(data_dir: Path | None) -> None:
    """Print the exports that point AWS SDKs, the AWS CLI and berth's client commands at a
    running berth (its endpoint, keys, region and data dir)."""
    try:
        found = find_data_dir(data_dir)
        client = Client.of_data_dir(found)
    except NoBerth as exc:
        raise click.ClickException(str(exc)) from None
    for key, value in {**client.env(), DATA_DIR_VARIABLE: str(found)}.items():
        click.echo(f"export {key}={shlex.quote(value)}")


@main.group()
def logs() -> None:
    """CloudWatch Logs from the command line."""


@logs.command("tail")
@click.argument("group")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events.")
@click.option("--since", default=600, type=int, help="Start this many seconds ago.")
@_client_data_dir
def logs_tail(group: str, follow: bool, since: int, data_dir: Path | None) -> None:
    """Print a log group's events as they arrive (from the berth that AWS_ENDPOINT_URL and the
    AWS_* keys name, or else the data dir's)."""
    from .logs.tail import tail
    try:
        client = client_for(data_dir)
    except NoBerth as exc:
        raise click.ClickException(str(exc)) from None
    tail(client.env(), group, follow=follow, since_seconds=since)


@main.group()
def image() -> None:
    """The local image store the runc driver runs containers from."""


@image.command("import")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default=None, help="Name the image (NAME[:TAG]) instead of the archive's.")
@_client_data_dir
def image_import(file: Path, name: str | None, data_dir: Path | None) -> None:
    """Import an OCI image layout or `docker save` archive (directory or tar)."""
    from .agent.images import ImageError
    store = _image_store(data_dir)
    try:
        imported = store.import_archive(file, name=name)
    except ImageError as exc:
        raise click.ClickException(str(exc)) from exc
    for img in imported:
        click.echo(f"{img.short_id}  {', '.join(img.names) or '<none>'}")


@image.command("ls")
@_client_data_dir
def image_ls(data_dir: Path | None) -> None:
    """List the images in the local store (`host`, the host's own file system, is not
    stored: every runc agent can run it)."""
    rows = [(name, img.short_id, f"{img.size / 1e6:.1f} MB")
            for img in _image_store(data_dir).list()
            for name in (img.names or ["<none>"])]
    width = max([len("NAME")] + [len(r[0]) for r in rows])
    click.echo(f"{'NAME':<{width}}  {'IMAGE ID':<12}  SIZE")
    for row_name, short_id, size in rows:
        click.echo(f"{row_name:<{width}}  {short_id:<12}  {size}")


def _image_store(data_dir: Path | None):  # type: ignore[no-untyped-def]
    """The image store of an existing data dir (the runc agent on it runs from there)."""
    from .agent.images import ImageStore
    try:
        return ImageStore(find_data_dir(data_dir))
    except NoBerth as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()
