//! Reading a watch response: newline-delimited JSON events.

use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Newline-delimited watch events from one response.
pub struct Events {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Events {
    pub async fn open(c: &Client, url: &str) -> Events {
        Self::open_as(c, url, "application/json").await
    }

    pub async fn open_as(c: &Client, url: &str, accept: &str) -> Events {
        let resp = c.get(url).header("accept", accept).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        Events {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next event, or `None` when the stream ends or nothing comes in `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).expect("each line is one JSON event"));
            }
            match tokio::time::timeout(wait, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("an event within 10 s")
    }

    /// (type, name, resourceVersion) of the next event.
    pub async fn next_brief(&mut self) -> (String, String, u64) {
        let e = self.next().await;
        brief(&e)
    }
}

pub fn brief(e: &Value) -> (String, String, u64) {
    let o = &e["object"];
    (
        e["type"].as_str().unwrap().to_string(),
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        o["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap(),
    )
}
