"""The configuration: validated models of every section, and the loader that reads a file
into them. Imports only the base modules (`models`, `errors`, `times`)."""

from __future__ import annotations

from monitor.config.loader import config_warnings, load_config, parse_config
from monitor.config.model import (
    AlertsConfig,
    Config,
    DatabaseConfig,
    EventConfig,
    LoggingConfig,
    PollingConfig,
    RetentionConfig,
    ServerConfig,
    TicketmasterConfig,
    UsersConfig,
)
from monitor.config.notifiers import (
    AppriseNotifierConfig,
    EmailNotifierConfig,
    LogNotifierConfig,
    MqttNotifierConfig,
    NotifierConfig,
    RetryConfig,
    Rule,
    WebhookNotifierConfig,
)

__all__ = [
    "AlertsConfig",
    "AppriseNotifierConfig",
    "Config",
    "DatabaseConfig",
    "EmailNotifierConfig",
    "EventConfig",
    "LogNotifierConfig",
    "LoggingConfig",
    "MqttNotifierConfig",
    "NotifierConfig",
    "PollingConfig",
    "RetentionConfig",
    "RetryConfig",
    "Rule",
    "ServerConfig",
    "TicketmasterConfig",
    "UsersConfig",
    "WebhookNotifierConfig",
    "config_warnings",
    "load_config",
    "parse_config",
]
