//! A plugin whose describe() panics.
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        panic!("describe is broken")
    }
}
wasm_apiserver_sdk::export_plugin!(P);
