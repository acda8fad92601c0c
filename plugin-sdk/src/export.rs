//! The glue between the WIT exports and a [`Plugin`]; used by
//! [`export_plugin!`](crate::export_plugin).

use crate::bindings::herald::plugin::types as wit;
use crate::{Event, Plugin, Verdict};

/// `init`: installs the panic hook and builds the plugin from its config.
pub fn init<P: Plugin>(config: &str) -> Result<P, String> {
    crate::log::install_panic_hook();
    let plugin = crate::build::<P>(config);
    flush_stdio();
    plugin
}

/// Hands what `print!` and `eprint!` buffered to the host before the call
/// returns: the instance lives on between calls and never exits, so a line
/// without a newline would otherwise wait for the next one, or forever.
fn flush_stdio() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// `handle`: one verdict per event, in order.
pub fn handle<P: Plugin>(plugin: &mut P, events: &[wit::Event]) -> Vec<wit::Verdict> {
    let verdicts = events
        .iter()
        .map(|e| match plugin.handle(&mut Event::host(e)) {
            Verdict::Pass => wit::Verdict::Pass,
            Verdict::Drop(reason) => wit::Verdict::Drop(reason),
            Verdict::Route(sinks) => wit::Verdict::Route(sinks),
        })
        .collect();
    flush_stdio();
    verdicts
}

/// Exports a [`Plugin`] type as the herald plugin of this crate.
///
/// ```ignore
/// herald_plugin_sdk::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // Only a wasm build exports the world: natively the crate is a plain
        // library (unit tests, benchmarks), and several plugins can link into
        // one native binary without clashing `init`/`handle` symbols.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __HeraldPlugin;

            ::std::thread_local! {
                static __HERALD_INSTANCE: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            impl $crate::__private::Guest for __HeraldPlugin {
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    let plugin = $crate::__private::init::<$plugin>(&config)?;
                    __HERALD_INSTANCE.with(|cell| match cell.try_borrow_mut() {
                        ::std::result::Result::Ok(mut slot) if slot.is_none() => {
                            *slot = ::std::option::Option::Some(plugin);
                            ::std::result::Result::Ok(())
                        }
                        _ => ::std::result::Result::Err(::std::string::String::from(
                            "init called twice",
                        )),
                    })
                }

                fn handle(
                    events: ::std::vec::Vec<$crate::__private::herald::plugin::types::Event>,
                ) -> ::std::vec::Vec<$crate::__private::herald::plugin::types::Verdict> {
                    // The host never calls into an instance twice at once,
                    // so the borrow is never contended.
                    __HERALD_INSTANCE.with(|cell| match cell.borrow_mut().as_mut() {
                        ::std::option::Option::Some(plugin) => {
                            $crate::__private::handle(plugin, &events)
                        }
                        ::std::option::Option::None => {
                            ::std::panic!("herald called handle before init")
                        }
                    })
                }
            }

            $crate::__private::bindings::__herald_export!(__HeraldPlugin with_types_in $crate::__private::bindings);
        };
    };
}
