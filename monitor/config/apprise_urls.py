"""Apprise URLs checked by Apprise itself, so a typo fails `check` rather than every alert:
an unknown service, a missing plugin library, or a URL that names no target."""

from __future__ import annotations

import logging
import re
from typing import Any

_URL = re.compile(r"\S+://\S*")


def without_urls(text: str) -> str:
    """Apprise's words with every URL it quotes taken out: its URLs hold the secrets."""
    return _URL.sub("(the URL)", text)


_TARGETS = ("targets", "topics", "channels", "rooms", "users", "emails", "devices", "chat_ids")


def apprise_problem(url: str) -> str | None:
    """Why Apprise cannot use `url`, in its words where it has them; None when it can."""
    import apprise

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    unusable = _service_problem(scheme)
    if unusable is not None:
        return unusable
    with apprise.LogCapture(level=logging.DEBUG) as captured:  # type: ignore[no-untyped-call]
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        # Its warnings say what is wrong; its errors only that the URL did not load.
        said = [
            line.split(" - ", 2)[2]
            for line in captured.getvalue().splitlines()
            if " - WARNING - " in line or " - ERROR - " in line
        ]
        reason = said[0] if said else "it does not load"
        # Apprise's words may quote the URL, which holds secrets: name only its scheme.
        return f"Apprise cannot use this {scheme}:// URL: {without_urls(reason)}"
    return _target_problem(plugin)


def _target_problem(plugin: Any) -> str | None:
    """A service that needs a target (a topic, a channel) given a URL that names none."""
    required = type(plugin).template_tokens.get("targets", {}).get("required")
    named = [getattr(plugin, attribute) for attribute in _TARGETS if hasattr(plugin, attribute)]
    if required and named and not any(named):
        return f"the {plugin.service_name} URL names no target (a topic, channel or recipient)"
    return None


def _service_problem(scheme: str) -> str | None:
    """Why Apprise has no working service for `scheme`; None when it has one."""
    from apprise.manager_plugins import NotificationManager

    plugins = NotificationManager()  # type: ignore[no-untyped-call]
    if scheme not in plugins.schemas():  # type: ignore[no-untyped-call]
        # Only a scheme is quoted: the rest of an Apprise URL holds its secrets.
        which = f"is called {scheme!r}" if scheme else "is named (write it like tgram://...)"
        return f"no Apprise service {which} (see Apprise's list)"
    service = plugins[scheme]
    if service.enabled:
        return None
    requirements = service.requirements or {}
    needs = requirements.get("packages_required")
    if needs:
        return f"Apprise's {service.service_name} service needs {needs}: pip install it"
    why = requirements.get("details") or "it is not available on this system"
    return f"Apprise's {service.service_name} service cannot run here: {why}"
