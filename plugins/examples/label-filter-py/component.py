"""label-filter-py: the herald plugin component. It implements the world
`plugin` of wit/herald.wit: `init` takes the config, `handle` a batch of
events and returns one verdict per event.

Built with `componentize-py ... --stub-wasi` (see build.sh), so the
component imports nothing but the herald world and loads under herald's
default policy. The price: WASI calls trap, so `print` is no way to say
anything; this plugin speaks through herald's `log`."""

import wit_world
from componentize_py_types import Err
from wit_world import log
from wit_world.imports import types

import label_filter


class WitWorld(wit_world.WitWorld):
    """One instance per plugin instance in herald."""

    labels = []

    def init(self, config: str) -> None:
        try:
            WitWorld.labels = label_filter.parse_config(config)
        except label_filter.ConfigError as e:
            raise Err(str(e))

    def handle(self, events):
        verdicts = []
        for event in events:
            # `with` drops the handle when done: herald counts a call that
            # keeps one as failed.
            with event:
                try:
                    reason = label_filter.verdict(WitWorld.labels, event)
                except Exception as e:
                    # Said first, since the trap that follows carries no
                    # message; then the plugin's `onError` policy decides.
                    log(types.Level.ERROR, f"label-filter-py: {e!r}")
                    raise
                verdicts.append(types.Verdict_Pass() if reason is None else types.Verdict_Drop(reason))
        return verdicts
