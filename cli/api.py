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
@click.option("--session-secret-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Secret that signs portal session cookies; give every API process the same file "
                   "(created 0600 if missing). Default: a secret of this process only.")
@click.option("--cookie-secure/--no-cookie-secure", default=True, show_default=True,
              help="Send the portal's session cookie only over HTTPS (turn off only behind plain-HTTP tests).")
@click.option("--session-minutes", type=click.IntRange(1, 24 * 60), default=30, show_default=True,
              help="Portal session lifetime.")
@click.option("--smtp", "smtp", metavar="HOST:PORT", help="Send e-mail notifications through this SMTP server.")
@click.option("--smtp-from", default="yunshang@localhost", show_default=True, metavar="ADDR", help="Sender address.")
@click.option("--webhook", metavar="URL", help="POST a JSON notification here at every step that waits on someone.")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="Log one line per request on stdout (secrets in query strings masked, as in every log line).")
def serve(listen, catalog_dir, clouds_file, db_url, center_cloud, token_cache_seconds, session_secret_file,
          cookie_secure, session_minutes, smtp, smtp_from, webhook, access_log):
    """Serve the API and the portal (/portal/) until interrupted."""
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
    secret = None
    if session_secret_file:
        import os
        import secrets as _secrets

        if not os.path.exists(session_secret_file):
            fd = os.open(session_secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(_secrets.token_bytes(32))
        with open(session_secret_file, "rb") as fh:
            secret = fh.read()
    notify = None
    if smtp or webhook:
        from yunshang.notify import Notifier

        shost, _, sport = (smtp or "").rpartition(":")
        if smtp and (not shost or not sport.isdigit()):
            raise click.BadParameter("expected HOST:PORT", param_hint="--smtp")
        notify = Notifier(people=catalog.people, smtp_host=shost, smtp_port=int(sport or 25), sender=smtp_from,
                          webhook_url=webhook or "")
    app = create_app(catalog, clouds_file, db_url, center_cloud=center_cloud, notify=notify,
                     token_cache_seconds=token_cache_seconds, session_secret=secret, cookie_secure=cookie_secure,
                     session_seconds=session_minutes * 60)
    from api.logs import log_config

    # every line (access log with query strings, error log, libraries) through yunshang.redact
    uvicorn.run(app, host=host, port=int(port), log_config=log_config("info" if access_log else "warning"),
                log_level="info" if access_log else "warning", access_log=access_log)
