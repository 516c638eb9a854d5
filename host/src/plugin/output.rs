//! A plugin's stdout and stderr: each line goes to the server log tagged with the
//! plugin's name (Python's `print`, JavaScript's `console.log`, a Rust panic message),
//! and the last few KiB of stderr are kept to explain a trap in the 500 a client sees.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much of stderr is kept to explain a trap.
const KEEP_BYTES: usize = 4096;
/// A line longer than this is logged in pieces.
const MAX_LINE: usize = 8192;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One stream of one instance. Cheap to clone; clones share the buffer.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    plugin: Arc<str>,
    stream: Stream,
    log: Arc<super::budget::LogLimiter>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// The current, unfinished line.
    line: Vec<u8>,
    /// The tail of what was written since the last [`GuestOutput::take_recent`].
    recent: Vec<u8>,
}

impl GuestOutput {
    pub(crate) fn new(
        plugin: Arc<str>,
        stream: Stream,
        log: Arc<super::budget::LogLimiter>,
    ) -> Self {
        GuestOutput {
            plugin,
            stream,
            log,
            state: Arc::default(),
        }
    }

    /// What was written since the last call (at most the last 4 KiB), and forget it.
    /// A line left unfinished is logged now, so that it is not glued to the next call's.
    pub(crate) fn take_recent(&self) -> String {
        let mut s = crate::sync::lock(&self.state);
        if !s.line.is_empty() {
            let line = std::mem::take(&mut s.line);
            self.emit(&line);
        }
        String::from_utf8_lossy(&std::mem::take(&mut s.recent)).into_owned()
    }

    fn append(&self, bytes: &[u8]) {
        let mut s = crate::sync::lock(&self.state);
        s.recent.extend_from_slice(bytes);
        if s.recent.len() > KEEP_BYTES {
            let cut = s.recent.len() - KEEP_BYTES;
            s.recent.drain(..cut);
        }
        for &b in bytes {
            if b == b'\n' || s.line.len() >= MAX_LINE {
                let line = std::mem::take(&mut s.line);
                self.emit(&line);
                if b == b'\n' {
                    continue;
                }
            }
            s.line.push(b);
        }
    }

    fn emit(&self, line: &[u8]) {
        if !self.log.allow() {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let plugin = &*self.plugin;
        match self.stream {
            Stream::Stdout => tracing::info!(plugin, stream = "stdout", "{text}"),
            Stream::Stderr => tracing::warn!(plugin, stream = "stderr", "{text}"),
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        // Never full: the log takes every line.
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_forgets_it_when_taken() {
        let log = Arc::new(super::super::budget::LogLimiter::new(0));
        let out = GuestOutput::new("p.wasm".into(), Stream::Stderr, log);
        out.append(b"first line\nsecond ");
        out.append(b"half\n");
        assert_eq!(out.take_recent(), "first line\nsecond half\n");
        assert_eq!(out.take_recent(), "");
        out.append(&vec![b'x'; 10_000]);
        assert_eq!(out.take_recent().len(), KEEP_BYTES);
        out.append(b"no newline");
        out.take_recent();
        assert!(
            out.state.lock().unwrap().line.is_empty(),
            "an unfinished line is logged"
        );
        // A line longer than MAX_LINE went out in pieces: nothing grows without bound.
        assert!(out.state.lock().unwrap().line.len() < MAX_LINE);
    }
}
