"""The configuration as the daemon's commands load it (run, once, check-config, preflight):
defaults < file < environment < flags, the web config and the password file checked too, and a
redactor for every secret in it; the same again on SIGHUP."""

from __future__ import annotations

import os
from collections.abc import Mapping

from monitor.config.loading import ConfigError, load_config
from monitor.config.schema import Config
from monitor.daemon.reload import ReloadFailed
from monitor.db.pool import PasswordFileError, read_password
from monitor.http.webconfig import load_web_config
from monitor.output.redact import Redactor, header_secrets, url_secrets, userinfo_secrets


def load(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> tuple[Config, Redactor]:
    """The configuration and a redactor for its secrets (the URL's password, the file's)."""
    config = load_config(flags, environ)
    load_web_config(config.web_config_file)
    callback = config.checks.callback
    secrets = [
        *url_secrets(config.database_url),
        *userinfo_secrets(callback.url),
        *header_secrets(callback.headers),
    ]
    if config.database.password_file is not None:
        secrets.append(read_password(config.database.password_file))
    return config, Redactor(secrets)


def early_redactor(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> Redactor:
    """For problems found before a configuration stands: the secrets of the URLs as given."""
    urls = [flags.get("--database-url"), environ.get("DATABASE_URL")]
    callbacks = [flags.get("--callback-url"), environ.get("ROLLOUT_CALLBACK_URL")]
    secrets = [s for url in urls if url for s in url_secrets(url)]
    secrets += [s for url in callbacks if url for s in userinfo_secrets(url)]
    return Redactor(secrets)


def reload(flags: Mapping[str, str | None]) -> tuple[Config, Redactor]:
    """load() as at start, from today's file, environment and the same flags (SIGHUP)."""
    try:
        return load(flags, os.environ)
    except ConfigError as error:
        raise ReloadFailed(error.problems) from None
    except PasswordFileError as error:
        raise ReloadFailed([str(error)]) from None
