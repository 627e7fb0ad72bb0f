"""``yunshang api``: the HTTP API for departments and the center's people."""
from __future__ import annotations

import click

from cli.common import catalog_option, clouds_option


@click.group()
def api() -> None:
    """The HTTP API (JSON under /api/v1/, OpenAPI at /api/v1/openapi.json).

    Authentication is OpenStack's: `X-Auth-Token: <token>` of the center's Keystone
    (the clouds.yaml entry `center`, which `yunshang devcloud up` writes). Stateless:
    run several processes on one PostgreSQL store.

    \b
      yunshang api serve --listen 127.0.0.1:18400 --catalog examples/prefecture \\
          --clouds ~/.local/share/yunshang/devcloud/clouds.yaml --db postgresql://...
      TOKEN=$(openstack --os-cloud person-health-it token issue -f value -c id)
      curl -H "X-Auth-Token: $TOKEN" http://127.0.0.1:18400/api/v1/requests
    """


@api.command()
@click.option("--listen", default="127.0.0.1:18400", show_default=True, metavar="HOST:PORT",
              help="Address to listen on.")
@catalog_option
@clouds_option
@click.option("--db", "db_url", envvar="YUNSHANG_DB", metavar="URL", help="Lifecycle store (env YUNSHANG_DB).")
@click.option("--center-cloud", default="center", show_default=True, metavar="NAME",
              help="clouds.yaml entry of the center's Keystone (validates tokens).")
@click.option("--token-cache-seconds", type=click.FloatRange(0, 300), default=10.0, show_default=True,
              help="How long a validated token is trusted before Keystone is asked again.")
def serve(listen, catalog_dir, clouds_file, db_url, center_cloud, token_cache_seconds):
    """Serve the API until interrupted."""
    import uvicorn

    from api.app import create_app
    from cli.common import load_catalog
    from yunshang.store import open_store

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter("expected HOST:PORT", param_hint="--listen")
    if not clouds_file:
        raise click.UsageError("api serve needs --clouds FILE (with the `center` entry)")
    catalog = load_catalog(catalog_dir)
    open_store(db_url).close()                 # a bad store URL fails here, in one line
    app = create_app(catalog, clouds_file, db_url, center_cloud=center_cloud,
                     token_cache_seconds=token_cache_seconds)
    # access log off: a URL never carries a token here, but keep request lines out of the logs anyway
    uvicorn.run(app, host=host, port=int(port), log_level="warning", access_log=False)
