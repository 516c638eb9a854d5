//! A component of another WIT package version and world: it exports
//! `wasm-apiserver:plugin/hooks@0.0.1` with a different `describe`.
wit_bindgen::generate!({
    inline: r#"
        package wasm-apiserver:plugin@0.0.1;
        interface hooks {
            describe: func() -> string;
        }
        world old-plugin {
            export hooks;
        }
    "#,
    world: "old-plugin",
});

struct Old;
impl exports::wasm_apiserver::plugin::hooks::Guest for Old {
    fn describe() -> String {
        "Foo".into()
    }
}
export!(Old);
