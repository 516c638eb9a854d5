//! Widgets stored as v2 (see `test_plugins::widgets`).
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        test_plugins::widgets::describe("v2")
    }
    fn convert(obj: Object, to: &str) -> Result<Object, String> {
        test_plugins::widgets::convert(obj, to)
    }
}
wasm_apiserver_sdk::export_plugin!(P);
