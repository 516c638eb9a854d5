//! A plugin that misbehaves on request: every hook that receives an object looks at its
//! `spec.mode` and, for `trap`, `loop`, `oom`, `badjson`, `notobject`, `short` or `hookerror`,
//! does exactly that; `probe` reports what of the environment it can see. `admit` has
//! its own modes: `admit-trap` traps, `admit-deny` denies, `readloop` lists its own kind
//! without end, `undeclared` reads a kind it did not declare and `unserved` a declared
//! kind nobody serves (both deny with the read's error), `readself` lists its own kind and warns how many it saw. Otherwise it behaves.
//! It serves `v1` (storage) and `v2`, which differ only in their apiVersion.

use wasm_apiserver_sdk::bindings::exports::wasm_apiserver::plugin::hooks::Guest;
use wasm_apiserver_sdk::reads::{self, ListOptions};
use wasm_apiserver_sdk::{
    Admission, AdmissionRequest, Cell, ComputeRequest, Denial, Request, Resource, ResourceRef,
    SubresourceRequest, Validation, VersionBuilder,
};

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
            .version(VersionBuilder::new("v2").column("Mode", "string", ".spec.mode", 0))
            .reads("test.wasm-apiserver.dev", "v1", "misbehavers")
            .reads("nobody.example.com", "v1", "ghosts")
            .build()
    }
    fn default(obj: String) -> Result<String, String> {
        act(&obj)
    }
    fn convert(objs: Vec<String>, to: String) -> Result<Vec<String>, String> {
        let mut out = objs
            .iter()
            .map(|o| {
                act(o)?;
                let mut v: serde_json::Value =
                    serde_json::from_str(o).map_err(|e| e.to_string())?;
                v["apiVersion"] = format!("test.wasm-apiserver.dev/{to}").into();
                Ok(v.to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
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
    fn admit(req: AdmissionRequest) -> Admission {
        let obj = req.object.or(req.old_object).unwrap_or_default();
        let own = ResourceRef::new("test.wasm-apiserver.dev", "v1", "misbehavers");
        match mode(&obj).as_str() {
            "admit-trap" => panic!("asked to trap in admit"),
            "admit-deny" => Admission::Denied(Denial::forbidden("asked to deny")),
            "readloop" => loop {
                let _ = std::hint::black_box(reads::list(&own, None, &ListOptions::default()));
            },
            "undeclared" => {
                let other = ResourceRef::new("wardle.example.com", "v1alpha1", "fischers");
                match reads::list(&other, None, &ListOptions::default()) {
                    Ok(_) => Admission::Allowed(vec!["the undeclared read succeeded".into()]),
                    Err(e) => Admission::Denied(Denial::with_code(400, format!("{e:?}"))),
                }
            }
            "unserved" => {
                let ghosts = ResourceRef::new("nobody.example.com", "v1", "ghosts");
                match reads::get(&ghosts, None, "casper") {
                    Ok(_) => Admission::Allowed(vec!["the read of ghosts succeeded".into()]),
                    Err(e) => Admission::Denied(Denial::with_code(400, format!("{e:?}"))),
                }
            }
            "readself" => match reads::list(
                &own,
                req.request.namespace.as_deref(),
                &ListOptions::default(),
            ) {
                Ok(page) => {
                    Admission::Allowed(vec![format!("saw {} misbehavers", page.items.len())])
                }
                Err(e) => Admission::Denied(Denial::with_code(400, format!("{e:?}"))),
            },
            _ => Admission::Allowed(Vec::new()),
        }
    }
    fn serve_subresource(_req: SubresourceRequest) -> Result<String, Denial> {
        Err(Denial::not_found("no subresources"))
    }
    fn compute(_req: ComputeRequest) -> Result<Vec<String>, Denial> {
        Ok(Vec::new())
    }
}

#[cfg(target_arch = "wasm32")]
wasm_apiserver_sdk::bindings::__export_plugin_world!(Misbehave with_types_in wasm_apiserver_sdk::bindings);
