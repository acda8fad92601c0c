"""The plugin's rules, apart from the component's imports, so that
`python3 -m unittest` runs them natively. This one passes the events of the
configured namespaces and drops the rest, saying why.

Config: {"namespaces": ["shop", "payments"]}"""

import json


class ConfigError(ValueError):
    """A config mistake, with a message that names it."""


def parse_config(text):
    """Parses the config text into the set of watched namespaces."""
    try:
        config = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"the config is not JSON: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError("the config must be a map with `namespaces`")
    for field in config:
        if field != "namespaces":
            raise ConfigError(f"unknown field `{field}`, expected `namespaces`")
    namespaces = config.get("namespaces")
    if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
        raise ConfigError("namespaces: expected a list of names")
    if not namespaces:
        raise ConfigError("namespaces: name at least one")
    return frozenset(namespaces)


def verdict(namespaces, event):
    """`None` to pass the event, or the reason to drop it. `event` is
    herald's handle (or a test's stand-in): `namespace()`, `name()`,
    `get(pointer)` (JSON text), `get_string(pointer)`, ... as in
    wit/herald.wit, in snake_case."""
    # A string field through the host handle: no JSON parsing here.
    namespace = event.namespace()
    if namespace is None:
        return "cluster-scoped"
    if namespace not in namespaces:
        return f"namespace {namespace} is not watched"
    return None


def owner_kind(event):
    """The kind of the object's first owner: a field read as JSON."""
    owners = event.get("/metadata/ownerReferences")
    if owners is None:
        return None
    owners = json.loads(owners)
    kind = owners[0].get("kind") if owners and isinstance(owners[0], dict) else None
    return kind if isinstance(kind, str) else None
