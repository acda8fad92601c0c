//! Host bindings of `wit/herald.wit`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    with: {
        "herald:plugin/types.event": crate::plugin::event::EventState,
    },
    imports: { default: trappable },
});
