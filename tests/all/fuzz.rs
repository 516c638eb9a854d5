//! Property tests over every request decoder, through the real server: bodies in JSON
//! and YAML, the two patch types, label and field selectors, continue tokens and the
//! options in the query and in DeleteOptions bodies. Whatever a client sends, the
//! answer is never a 5xx, and every error is a `metav1.Status` with the code of the
//! response. Cases come from a fixed seed, so a failure is reproducible.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::server::Server;

const NS: &str = "/apis/hello.zeng.dev/v2/namespaces/default/foos";
/// Cases per decoder.
const CASES: u32 = 1000;

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::String),
        "\\PC{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("metadata".to_string()),
                    Just("spec".to_string()),
                    Just("status".to_string()),
                    Just("name".to_string()),
                    Just("image".to_string()),
                    Just("labels".to_string()),
                    Just("finalizers".to_string()),
                    Just("ownerReferences".to_string()),
                    "[a-zA-Z$]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A Foo with some of its parts replaced by anything.
fn foo_like() -> impl Strategy<Value = Value> {
    (json_value(), json_value(), json_value(), any::<u8>()).prop_map(|(meta, spec, extra, pick)| {
        let mut o = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
                           "metadata": {"name": format!("f{pick}")}, "spec": {"image": "busybox"}});
        match pick % 4 {
            0 => o["metadata"] = meta,
            1 => o["spec"] = spec,
            2 => {
                o["metadata"][[
                    "labels",
                    "annotations",
                    "finalizers",
                    "ownerReferences",
                    "generateName",
                    "namespace",
                ][pick as usize % 6]] = extra
            }
            _ => o["spec"][["image", "config", "replicas"][pick as usize % 3]] = extra,
        }
        o
    })
}

/// One request: method, path and query, content type, body.
type Req = (Method, String, &'static str, Vec<u8>);

fn bodies() -> impl Strategy<Value = Req> {
    let body = prop_oneof![
        foo_like().prop_map(|v| v.to_string().into_bytes()),
        foo_like().prop_map(|v| serde_yaml::to_string(&v).unwrap().into_bytes()),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
        "[ -~\\n]{0,80}".prop_map(String::into_bytes),
    ];
    let ct = prop_oneof![
        Just("application/json"),
        Just("application/yaml"),
        Just("text/plain"),
        Just(""),
    ];
    (any::<bool>(), ct, body).prop_map(|(put, ct, body)| {
        let (method, path) = if put {
            (Method::PUT, format!("{NS}/keep"))
        } else {
            (Method::POST, NS.to_string())
        };
        (method, path, ct, body)
    })
}

fn patches() -> impl Strategy<Value = Req> {
    let path = prop_oneof![
        Just(""),
        Just("/"),
        Just("/spec"),
        Just("/spec/image"),
        Just("/metadata/name"),
        Just("/metadata/labels/a"),
        Just("/metadata/finalizers/-"),
        Just("/metadata/resourceVersion"),
        Just("/x/y/z"),
        Just("/~2"),
        Just("/spec/config/0"),
        Just("/kind"),
    ];
    let op = (
        prop_oneof![
            Just("add"),
            Just("remove"),
            Just("replace"),
            Just("move"),
            Just("copy"),
            Just("test"),
            Just("bogus")
        ],
        path.clone(),
        path,
        json_value(),
    )
        .prop_map(
            |(op, p, from, value)| json!({"op": op, "path": p, "from": from, "value": value}),
        );
    prop_oneof![
        json_value().prop_map(|v| (
            Method::PATCH,
            format!("{NS}/keep"),
            "application/merge-patch+json",
            v.to_string().into_bytes()
        )),
        prop::collection::vec(op, 0..5).prop_map(|ops| (
            Method::PATCH,
            format!("{NS}/keep"),
            "application/json-patch+json",
            json!(ops).to_string().into_bytes()
        )),
        prop::collection::vec(any::<u8>(), 0..32).prop_map(|b| (
            Method::PATCH,
            format!("{NS}/keep"),
            "application/json-patch+json",
            b
        )),
    ]
}

/// A query parameter value: selector syntax, numbers, tokens, or anything printable.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9=!,() ._/-]{0,20}",
        "(app|spec.image|metadata.name|x)(=|==|!=| in | notin )(\\(a,b\\)|[a-z]{0,4})",
        "[A-Za-z0-9_-]{0,60}",
        "-?[0-9]{1,22}",
        "[ -~]{0,16}",
        Just("All".to_string()),
        Just("Exact".to_string()),
        Just("NotOlderThan".to_string()),
        Just("Orphan".to_string()),
        Just("Strict".to_string()),
        Just("1ns".to_string()),
    ]
}

fn queries() -> impl Strategy<Value = Req> {
    let key = prop_oneof![
        Just("labelSelector"),
        Just("fieldSelector"),
        Just("limit"),
        Just("continue"),
        Just("resourceVersion"),
        Just("resourceVersionMatch"),
        Just("dryRun"),
        Just("fieldManager"),
        Just("fieldValidation"),
        Just("propagationPolicy"),
        Just("orphanDependents"),
        Just("gracePeriodSeconds"),
        Just("includeObject"),
        Just("timeout"),
        Just("pretty"),
    ];
    let method = prop_oneof![Just(Method::GET), Just(Method::DELETE), Just(Method::POST)];
    let target = prop_oneof![
        Just(NS.to_string()),
        Just(format!("{NS}/keep")),
        Just(format!("{NS}/missing"))
    ];
    let delete_body = prop_oneof![
        Just(Vec::new()),
        json_value().prop_map(|v| {
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": v})
                .to_string()
                .into_bytes()
        }),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ];
    (method, target, prop::collection::vec((key, query_value()), 0..4), delete_body).prop_map(
        |(method, target, params, body)| {
            // A resourceVersion far ahead of the store waits for it (3 s) and is then
            // kube's 504 ResourceVersionTooLarge: keep numbers small so cases stay fast.
            let params: Vec<(&str, String)> = params
                .into_iter()
                .map(|(k, v)| match (k, v.parse::<u128>()) {
                    ("resourceVersion", Ok(n)) => (k, (n % 20).to_string()),
                    _ => (k, v),
                })
                .collect();
            let query = serde_urlencoded::to_string(&params).unwrap();
            let body = match method {
                Method::POST => json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"generateName": "g-"}, "spec": {}}).to_string().into_bytes(),
                Method::DELETE => body,
                _ => Vec::new(),
            };
            (method, format!("{target}?{query}"), "application/json", body)
        },
    )
}

#[test]
fn no_request_gets_a_5xx_and_every_error_is_a_status() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = s.client();
    let send = |(method, path, ct, body): &Req| -> (u16, String) {
        rt.block_on(async {
            let mut r = c
                .request(method.clone(), format!("{}{path}", s.url))
                .body(body.clone());
            if !ct.is_empty() {
                r = r.header("content-type", *ct);
            }
            match r.send().await {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                // No answer at all (the connection or stream was reset) fails the case.
                Err(e) => (0, format!("no response: {e:?}")),
            }
        })
    };
    let keep = (Method::POST, NS.to_string(), "application/json",
                json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "keep"}, "spec": {"image": "busybox"}}).to_string().into_bytes());
    let mut total = 0;
    let codes = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    for (name, strategy) in [
        ("bodies", bodies().boxed()),
        ("patches", patches().boxed()),
        ("queries and DeleteOptions", queries().boxed()),
    ] {
        let config = Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let result = runner.run(&strategy, |req| {
            // The object the writes aim at exists for each case (a case may delete it).
            if send(&(Method::GET, format!("{NS}/keep"), "", Vec::new())).0 == 404 {
                send(&keep);
            }
            let (code, text) = send(&req);
            *codes.borrow_mut().entry(code).or_default() += 1;
            // The one 5xx kube-apiserver gives a valid request: a resourceVersion the
            // store has not reached (clients retry it).
            // and a request that asked for a shorter timeout than it took.
            let too_large = code == 504
                && (text.contains("ResourceVersionTooLarge")
                    || (req.1.contains("timeout=") && text.contains("\"reason\":\"Timeout\"")));
            prop_assert!(
                (100..500).contains(&code) || too_large,
                "{} {} ({}) answered {code}: {text}",
                req.0,
                req.1,
                req.2
            );
            if code >= 400 {
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                prop_assert_eq!(&v["kind"], "Status", "{}", text);
                prop_assert_eq!(v["code"].as_u64(), Some(code as u64), "{}", text);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
        total += CASES;
    }
    println!("fuzz: {total} cases, codes {:?}", codes.borrow());
}
