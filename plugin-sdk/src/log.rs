//! Lines to the host log, tagged by the host with the plugin's name.

use crate::bindings::herald::plugin::types::Level;

fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message)
}
/// Logs at info level.
pub fn info(message: &str) {
    write(Level::Info, message)
}
/// Logs at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message)
}
/// Logs at error level.
pub fn error(message: &str) {
    write(Level::Error, message)
}

/// Marker the host looks for to report a plugin panic with its message.
pub(crate) const PANIC_PREFIX: &str = "plugin panicked: ";

/// Routes panics to the host log, so the host can report the message when it
/// tears the instance down.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "(non-string panic payload)".to_string()
        };
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        error(&format!("{PANIC_PREFIX}{message}{location}"));
    }));
}
