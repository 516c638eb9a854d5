//! The etcd backend, for production and for several replicas on one etcd cluster.
//!
//! Layout, as kube-apiserver's: the storage key `/<group>/<plural>/<ns>/<name>` lives at
//! `<prefix>/<group>/<plural>/<ns>/<name>` (prefix `/registry` by default); the value is
//! the object in its storage version; the revision is etcd's `mod_revision`.
//!
//! - Writes are transactions with a revision precondition (`create_revision == 0` for
//!   a create, `mod_revision == expected` for an update or a delete); when one fails,
//!   its else-branch reads the key so that the error says why (gone, or changed).
//! - Lists read one range, optionally pinned to a revision: what a continue token
//!   carries, so that every page of a list is read at the first page's revision.
//! - Watches are etcd watches with `prev_kv` and progress notifications, over the
//!   whole key prefix: a write to another resource (through this replica or another) is
//!   [`WatchItem::Progress`] for this one, so a watch cache knows it is fresh at the
//!   revision a list just returned without asking etcd. (etcd 3.4.23, Debian's, answers
//!   an explicit progress request before it has sent every pending event — fixed in
//!   3.4.25/3.5.8 — so on-demand progress requests are not used.) Writes to the same etcd
//!   outside the prefix are reported by etcd's periodic progress notifications.
//! - A compacted revision is [`StorageError::Expired`]; an unreachable etcd is
//!   [`StorageError::Unavailable`] within the request timeout.
//! - Compaction is off by default (kube-apiserver compacts a shared cluster); with
//!   `--etcd-compaction-interval` each tick compacts to the revision seen one tick before.

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use futures::StreamExt as _;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    Event, ListPage, ListRequest, Result, Revision, Storage, StorageError, Stored, WatchItem,
    WatchStream,
};

/// How to reach etcd.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// `http://host:port` or `https://host:port`.
    pub servers: Vec<String>,
    /// Key prefix, `/registry` by default.
    pub prefix: String,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Deadline of one request; an etcd that does not answer in time is unavailable.
    pub request_timeout: Duration,
    /// Compact history every interval (`None`: never).
    pub compaction_interval: Option<Duration>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            servers: vec!["http://127.0.0.1:2379".into()],
            prefix: "/registry".into(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            request_timeout: Duration::from_secs(2),
            compaction_interval: None,
        }
    }
}

pub struct EtcdStore {
    client: Client,
    /// The key prefix, without a trailing `/`.
    prefix: String,
    servers: String,
    timeout: Duration,
    compactor: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(c) = &self.compactor {
            c.abort();
        }
    }
}

/// The end of the key range that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn rev(r: i64) -> Revision {
    r.max(0) as Revision
}

impl EtcdStore {
    /// A client for `opts.servers`. Connections are made lazily: the server starts
    /// (unready) while etcd is down, and recovers when it returns.
    pub async fn connect(opts: &EtcdOptions) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        anyhow::ensure!(!opts.servers.is_empty(), "--etcd-servers is empty");
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(opts.request_timeout)
            .with_timeout(opts.request_timeout)
            .with_keep_alive(Duration::from_secs(10), opts.request_timeout);
        if opts.ca_file.is_some() || opts.cert_file.is_some() {
            let mut tls = etcd_client::TlsOptions::new();
            if let Some(ca) = &opts.ca_file {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("reading --etcd-cafile {}", ca.display()))?;
                tls = tls.ca_certificate(etcd_client::Certificate::from_pem(pem));
            }
            match (&opts.cert_file, &opts.key_file) {
                (Some(c), Some(k)) => {
                    let cert = std::fs::read(c)
                        .with_context(|| format!("reading --etcd-certfile {}", c.display()))?;
                    let key = std::fs::read(k)
                        .with_context(|| format!("reading --etcd-keyfile {}", k.display()))?;
                    tls = tls.identity(etcd_client::Identity::from_pem(cert, key));
                }
                (None, None) => {}
                _ => anyhow::bail!("--etcd-certfile and --etcd-keyfile go together"),
            }
            connect = connect.with_tls(tls);
        }
        let client = Client::connect(&opts.servers, Some(connect))
            .await
            .with_context(|| format!("connecting to etcd at {}", opts.servers.join(",")))?;
        let mut store = EtcdStore {
            client,
            prefix: opts.prefix.trim_end_matches('/').to_string(),
            servers: opts.servers.join(","),
            timeout: opts.request_timeout,
            compactor: None,
        };
        if let Some(every) = opts.compaction_interval {
            store.compactor = Some(tokio::spawn(compact_every(store.client.clone(), every)));
        }
        Ok(store)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The storage key of an etcd key (the prefix stripped).
    fn unkey(&self, key: &[u8]) -> Result<String> {
        let k = std::str::from_utf8(key)
            .map_err(|_| StorageError::Internal(format!("etcd key {key:?} is not UTF-8")))?;
        Ok(k.strip_prefix(&self.prefix).unwrap_or(k).to_string())
    }

    fn err(&self, e: etcd_client::Error) -> StorageError {
        use etcd_client::Error as E;
        match e {
            E::GRpcStatus(s) => {
                let msg = s.message();
                // etcd's NOSPACE alarm: writes refused, reads and deletes served.
                if msg.contains("database space exceeded") {
                    return StorageError::NoSpace(msg.to_string());
                }
                match s.code() {
                    tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Cancelled
                    | tonic::Code::Unknown
                        if !msg.contains("mvcc") =>
                    {
                        StorageError::Unavailable(format!("etcd ({}): {msg}", self.servers))
                    }
                    _ => StorageError::Internal(format!("etcd ({}): {msg}", self.servers)),
                }
            }
            E::TransportError(e) => {
                StorageError::Unavailable(format!("etcd ({}): {e}", self.servers))
            }
            E::IoError(e) => StorageError::Unavailable(format!("etcd ({}): {e}", self.servers)),
            e => StorageError::Internal(format!("etcd ({}): {e}", self.servers)),
        }
    }

    /// Run one etcd call under the request deadline (the channel can wait for a
    /// connection forever; a client must not).
    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        self.bounded(f).await?.map_err(|e| self.err(e))
    }

    /// [`Self::call`] leaving etcd's own error to the caller (to read revision errors).
    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<std::result::Result<T, etcd_client::Error>> {
        tokio::time::timeout(self.timeout, f).await.map_err(|_| {
            StorageError::Unavailable(format!(
                "etcd ({}) did not answer within {:?}",
                self.servers, self.timeout
            ))
        })
    }

    /// A read that failed with a revision error: `Expired` (compacted) or `TooLarge`.
    async fn revision_error(&self, e: etcd_client::Error, requested: Revision) -> StorageError {
        let msg = e.to_string();
        if msg.contains("required revision has been compacted") {
            StorageError::Expired {
                requested,
                oldest: 0,
            }
        } else if msg.contains("required revision is a future revision") {
            StorageError::TooLarge {
                requested,
                current: self.current_revision().await.unwrap_or(0),
            }
        } else {
            self.err(e)
        }
    }

    /// The key as it is now (the else-branch of a failed transaction).
    fn txn_current(resp: &etcd_client::TxnResponse) -> Option<Revision> {
        resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| rev(kv.mod_revision())),
            _ => None,
        })
    }

    fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
        header.map(|h| rev(h.revision())).unwrap_or(0)
    }

    /// Compact history up to `revision` (physically). For tests and operators.
    pub async fn compact(&self, revision: Revision) -> Result<()> {
        let mut kv = self.client.kv_client();
        self.call(kv.compact(
            revision as i64,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        ))
        .await
        .map(|_| ())
    }

    /// Write raw bytes at a storage key, bypassing every check: what another writer of
    /// the same etcd could do. For tests.
    pub async fn put_raw(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let mut kv = self.client.kv_client();
        let resp = self.call(kv.put(self.key(key), value, None)).await?;
        Ok(Self::header_revision(resp.header()))
    }
}

/// Each tick, compact to the revision read at the tick before: a client has had one
/// interval to finish reading at a revision before it goes.
async fn compact_every(client: Client, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    let mut last: Option<i64> = None;
    loop {
        ticker.tick().await;
        let mut kv = client.kv_client();
        let current = match kv.get("compact_rev_key", None).await {
            Ok(r) => r.header().map(|h| h.revision()),
            Err(e) => {
                tracing::warn!(error = %e, "etcd compaction: cannot read the revision");
                continue;
            }
        };
        if let Some(rev) = last {
            match kv
                .compact(
                    rev,
                    Some(etcd_client::CompactionOptions::new().with_physical()),
                )
                .await
            {
                Ok(_) => tracing::info!(revision = rev, "etcd compacted"),
                // Another replica (or kube-apiserver) got there first.
                Err(e) if e.to_string().contains("compacted") => {}
                Err(e) => tracing::warn!(error = %e, "etcd compaction failed"),
            }
        }
        last = current;
    }
}

#[async_trait]
impl Storage for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<Stored>> {
        let mut kv = self.client.kv_client();
        let resp = self.call(kv.get(self.key(key), None)).await?;
        Ok(resp.kvs().first().map(|kv| Stored {
            key: key.to_string(),
            value: kv.value().to_vec(),
            revision: rev(kv.mod_revision()),
        }))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let k = self.key(key);
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k, value, None)]);
        let mut kv = self.client.kv_client();
        let resp = self.call(kv.txn(txn)).await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists {
                key: key.to_string(),
            });
        }
        Ok(Self::header_revision(resp.header()))
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        let k = self.key(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(
                k.clone(),
                CompareOp::Equal,
                expected as i64,
            )])
            .and_then([TxnOp::put(k.clone(), value, None)])
            .or_else([TxnOp::get(k, None)]);
        let mut kv = self.client.kv_client();
        let resp = self.call(kv.txn(txn)).await?;
        if resp.succeeded() {
            return Ok(Self::header_revision(resp.header()));
        }
        Err(match Self::txn_current(&resp) {
            None => StorageError::NotFound {
                key: key.to_string(),
            },
            Some(current) => StorageError::Conflict {
                key: key.to_string(),
                expected,
                current,
            },
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Stored> {
        let k = self.key(key);
        let cond = match expected {
            Some(e) => Compare::mod_revision(k.clone(), CompareOp::Equal, e as i64),
            None => Compare::create_revision(k.clone(), CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([cond])
            .and_then([TxnOp::delete(
                k.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(k, None)]);
        let mut kv = self.client.kv_client();
        let resp = self.call(kv.txn(txn)).await?;
        if resp.succeeded() {
            let prev = resp.op_responses().into_iter().find_map(|r| match r {
                TxnOpResponse::Delete(d) => d.prev_kvs().first().map(|kv| kv.value().to_vec()),
                _ => None,
            });
            return Ok(Stored {
                key: key.to_string(),
                value: prev.unwrap_or_default(),
                revision: Self::header_revision(resp.header()),
            });
        }
        Err(match Self::txn_current(&resp) {
            None => StorageError::NotFound {
                key: key.to_string(),
            },
            Some(current) => StorageError::Conflict {
                key: key.to_string(),
                expected: expected.unwrap_or_default(),
                current,
            },
        })
    }

    async fn list(&self, req: ListRequest) -> Result<ListPage> {
        let prefix = self.key(&req.prefix);
        let start = req.start.as_deref().map(|s| self.key(s));
        let mut opts = GetOptions::new().with_range(prefix_end(prefix.as_bytes()));
        if let Some(limit) = req.limit {
            opts = opts.with_limit(limit as i64);
        }
        if let Some(r) = req.revision {
            opts = opts.with_revision(r as i64);
        }
        let mut kv = self.client.kv_client();
        let resp = match self
            .bounded(kv.get(start.unwrap_or(prefix), Some(opts)))
            .await?
        {
            Ok(r) => r,
            Err(e) => return Err(self.revision_error(e, req.revision.unwrap_or(0)).await),
        };
        let items = resp
            .kvs()
            .iter()
            .map(|kv| {
                Ok(Stored {
                    key: self.unkey(kv.key())?,
                    value: kv.value().to_vec(),
                    revision: rev(kv.mod_revision()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ListPage {
            items,
            revision: req
                .revision
                .unwrap_or_else(|| Self::header_revision(resp.header())),
            more: resp.more(),
        })
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        // A watch on a compacted revision is cancelled asynchronously by etcd; a range
        // read at the first wanted revision says so now.
        let key = format!("{}/", self.prefix);
        let mut kv = self.client.kv_client();
        let probe = GetOptions::new()
            .with_revision(from as i64 + 1)
            .with_count_only()
            .with_limit(1);
        if let Err(e) = self.bounded(kv.get(key.clone(), Some(probe))).await? {
            match self.revision_error(e, from).await {
                StorageError::TooLarge { .. } => {}
                e => return Err(e),
            }
        }
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(from as i64 + 1)
            .with_prev_key()
            .with_progress_notify();
        let mut wc = self.client.watch_client();
        let stream = self.call(wc.watch(key, Some(opts))).await?;
        // Dropping the request half would end the watch: the task keeps it.
        let (_requests, mut responses) = stream.split();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<WatchItem>>(256);
        let (store_prefix, servers) = (self.prefix.clone(), self.servers.clone());
        let wanted = prefix.to_string();
        tokio::spawn(async move {
            let _requests = _requests;
            let mut last = from;
            let fail = |e: StorageError| async { tx.send(Err(e)).await };
            loop {
                let resp = tokio::select! {
                    r = responses.message() => r,
                    _ = tx.closed() => return,
                };
                let resp = match resp {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        let _ = fail(StorageError::Unavailable(format!(
                            "etcd ({servers}) closed the watch at revision {last}"
                        )))
                        .await;
                        return;
                    }
                    Err(e) => {
                        let _ = fail(StorageError::Unavailable(format!(
                            "etcd ({servers}) watch failed at revision {last}: {e}"
                        )))
                        .await;
                        return;
                    }
                };
                if resp.compact_revision() > 0 {
                    let _ = fail(StorageError::Expired {
                        requested: last,
                        oldest: rev(resp.compact_revision()),
                    })
                    .await;
                    return;
                }
                if resp.canceled() {
                    let _ = fail(StorageError::Internal(format!(
                        "etcd ({servers}) cancelled the watch: {}",
                        resp.cancel_reason()
                    )))
                    .await;
                    return;
                }
                if resp.created() {
                    continue;
                }
                let events = resp.events();
                if events.is_empty() {
                    if resp.watch_id() < 0 {
                        // An answer to a progress request (none is sent): not ordered
                        // with the events on etcd 3.4.23.
                        continue;
                    }
                    // A periodic progress notification, sent once this watch has been
                    // sent every event up to the header's revision.
                    let r = Self::header_revision(resp.header());
                    if r > last {
                        last = r;
                        if tx.send(Ok(WatchItem::Progress(r))).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                for e in events {
                    let Some(kv) = e.kv() else { continue };
                    let revision = rev(kv.mod_revision());
                    // A transaction of several writes (by another writer) gives several
                    // events at one revision: keep them all; only older ones repeat.
                    if revision < last {
                        continue;
                    }
                    last = revision;
                    let k = std::str::from_utf8(kv.key())
                        .ok()
                        .and_then(|k| k.strip_prefix(&store_prefix))
                        .filter(|k| k.starts_with(&wanted));
                    let Some(k) = k.map(str::to_string) else {
                        // A write elsewhere under the store's prefix.
                        if tx.send(Ok(WatchItem::Progress(revision))).await.is_err() {
                            return;
                        }
                        continue;
                    };
                    let prev = e
                        .prev_kv()
                        .map(|p| (rev(p.mod_revision()), p.value().to_vec()));
                    let value = match e.event_type() {
                        EventType::Put => Some(kv.value().to_vec()),
                        EventType::Delete => None,
                    };
                    let item = WatchItem::Event(Event {
                        key: k,
                        revision,
                        value,
                        prev,
                    });
                    if tx.send(Ok(item)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed())
    }

    async fn current_revision(&self) -> Result<Revision> {
        let mut kv = self.client.kv_client();
        // A linearizable read of one (absent) key: its header is the current revision.
        let resp = self
            .call(kv.get(
                format!("{}/", self.prefix),
                Some(GetOptions::new().with_count_only()),
            ))
            .await?;
        Ok(Self::header_revision(resp.header()))
    }

    fn location(&self, key: &str) -> String {
        format!("etcd key {}", self.key(key))
    }

    fn check_name(&self) -> &'static str {
        "etcd"
    }
}
