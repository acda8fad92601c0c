"""The herald plugin component: the world `plugin` of wit/herald.wit.
`init` gets the config as JSON text, `handle` a batch of events and returns
one verdict per event.

build.sh builds it with `--stub-wasi`, so the component imports nothing but
the herald world and loads under herald's default policy. The price: WASI
calls trap, so `print` is no way to say anything (use `log`, which goes to
herald's log tagged with the plugin), and `random` is seeded at build time."""

import wit_world
from componentize_py_types import Err
from wit_world import log
from wit_world.imports import types

import rules


class WitWorld(wit_world.WitWorld):
    namespaces = frozenset()

    def init(self, config: str) -> None:
        try:
            WitWorld.namespaces = rules.parse_config(config)
        except rules.ConfigError as e:
            # init's `err(string)`: herald reports it.
            raise Err(str(e))

    def handle(self, events):
        verdicts = []
        for event in events:
            # Events are lent for the call: `with` hands each back, or
            # herald counts the call as failed.
            with event:
                try:
                    owner = rules.owner_kind(event)
                    if owner is not None:
                        log(types.Level.DEBUG, f"{event.name()} is owned by a {owner}")
                    reason = rules.verdict(WitWorld.namespaces, event)
                except Exception as e:
                    # Said first, since the trap that follows carries no
                    # message; then the plugin's `onError` policy decides.
                    log(types.Level.ERROR, repr(e))
                    raise
                verdicts.append(types.Verdict_Pass() if reason is None else types.Verdict_Drop(reason))
        return verdicts
