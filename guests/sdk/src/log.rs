//! Logging from a plugin: lines reach the server log tagged with the plugin's name.
//! Natively (unit tests) they go to standard error.

use crate::bindings::wasm_apiserver::plugin::host::{self, Level};

fn write(level: Level, message: &str) {
    if cfg!(target_arch = "wasm32") {
        host::log(level, message);
    } else {
        eprintln!("[{level:?}] {message}");
    }
}

pub fn debug(message: &str) {
    write(Level::Debug, message)
}

pub fn info(message: &str) {
    write(Level::Info, message)
}

pub fn warn(message: &str) {
    write(Level::Warn, message)
}

pub fn error(message: &str) {
    write(Level::Error, message)
}
