"""The label filter's logic, without the component's imports, so that
`python3 -m unittest` runs it natively: the same config and the same verdicts
as the Rust plugins/label-filter."""

import json


def escape(token):
    """RFC 6901: one pointer token (`app.kubernetes.io/name` -> `app.kubernetes.io~1name`)."""
    return token.replace("~", "~0").replace("/", "~1")


class ConfigError(ValueError):
    """A config mistake, with a message that names it."""


def parse_config(text):
    """Parses the config text (`{"labels": {"app": "web"}}`) into the sorted
    list of `(key, value)` pairs every event must carry."""
    try:
        config = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"the config is not JSON: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError("the config must be a map with `labels`")
    for field in config:
        if field != "labels":
            raise ConfigError(f"unknown field `{field}`, expected `labels`")
    if "labels" not in config:
        raise ConfigError("missing field `labels`")
    labels = config["labels"]
    if not isinstance(labels, dict):
        raise ConfigError("labels: expected a map of label to value")
    for key, value in labels.items():
        if not isinstance(value, str):
            raise ConfigError(f"labels.{key}: expected a string")
    if not labels:
        raise ConfigError("labels: at least one label is required")
    # Sorted by key, as the Rust plugin's BTreeMap: the first label that
    # fails names the drop reason, so the order is part of the verdict.
    return sorted(labels.items())


def verdict(labels, event):
    """`None` to pass the event (anything with `get_string(pointer)`), or
    the reason to drop it, as the Rust plugin words it."""
    for key, want in labels:
        got = event.get_string(f"/metadata/labels/{escape(key)}")
        if got is None:
            return f"label {key} missing, want {want}"
        if got != want:
            return f"label {key}={got}, want {want}"
    return None
