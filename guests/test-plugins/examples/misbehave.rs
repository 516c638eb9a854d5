//! A plugin that misbehaves on request: every hook that receives an object looks at its
//! `spec.mode` and, for `trap`, `loop`, `oom`, `badjson`, `notobject`, `short` or `hookerror`,
//! does exactly that; `probe` reports what of the environment it can see. Otherwise it
//! behaves.

use wasm_apiserver_sdk::bindings::exports::wasm_apiserver::plugin::hooks::Guest;
use wasm_apiserver_sdk::{Cell, Request, Resource, Validation, VersionBuilder};

struct Misbehave;

fn mode(obj: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(obj).unwrap_or_default();
    v["spec"]["mode"].as_str().unwrap_or_default().to_string()
}

/// Misbehave as `obj` asks; otherwise return `obj` (or what `ok` makes of it).
fn act(obj: &str) -> Result<String, String> {
    match mode(obj).as_str() {
        "trap" => panic!("asked to trap"),
        "loop" => {
            let mut i: u64 = 0;
            loop {
                i = std::hint::black_box(i.wrapping_add(1));
            }
        }
        "oom" => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                hog.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hog);
            }
        }
        "badjson" => Ok("{this is not json".into()),
        "notobject" => Ok("[1, 2, 3]".into()),
        "hookerror" => Err("refusing on purpose".into()),
        _ => Ok(obj.to_string()),
    }
}

impl Guest for Misbehave {
    fn describe() -> Resource {
        test_plugins::describe("Misbehaver", "misbehavers")
            .version(
                VersionBuilder::new("v1")
                    .storage()
                    .column("Mode", "string", ".spec.mode", 0),
            )
            .build()
    }
    fn default(obj: String) -> Result<String, String> {
        act(&obj)
    }
    fn convert(objs: Vec<String>, _to: String) -> Result<Vec<String>, String> {
        let mut out = objs.iter().map(|o| act(o)).collect::<Result<Vec<_>, _>>()?;
        if objs.iter().any(|o| mode(o) == "short") {
            out.pop();
        }
        Ok(out)
    }
    fn prepare_for_create(_req: Request, obj: String) -> Result<String, String> {
        act(&obj)
    }
    fn prepare_for_update(_req: Request, new: String, _old: String) -> Result<String, String> {
        act(&new)
    }
    fn validate_create(_req: Request, obj: String) -> Validation {
        if mode(&obj) == "probe" {
            // Report what the sandbox lets a plugin see: it should be nothing.
            let env = std::env::vars().count();
            let args = std::env::args().count();
            let fs = std::fs::read_dir("/").is_ok() || std::fs::read_dir(".").is_ok();
            return Validation::ok().warn(format!("env={env} args={args} fs={fs}"));
        }
        act(&obj)
            .map(|_| Validation::ok())
            .unwrap_or_else(|e| Validation::ok().warn(e))
    }
    fn validate_update(_req: Request, new: String, _old: String) -> Validation {
        Self::validate_create(_req, new)
    }
    fn validate_delete(_req: Request, obj: String) -> Validation {
        Self::validate_create(_req, obj)
    }
    fn print(objs: Vec<String>) -> Result<Vec<Vec<Cell>>, String> {
        objs.iter()
            .map(|o| act(o).map(|_| vec![Cell::Text(mode(o))]))
            .collect()
    }
}

#[cfg(target_arch = "wasm32")]
wasm_apiserver_sdk::bindings::__export_plugin_world!(Misbehave with_types_in wasm_apiserver_sdk::bindings);
