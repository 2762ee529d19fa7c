//! Streaming between the async HTTP side and the synchronous services: request bodies become
//! blocking `Read`ers, blocking `Write`rs feed response bodies, always through bounded channels.

use std::io;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::sync::mpsc;

use super::ApiError;

/// Chunks in flight between a blocking producer and the response body.
const CHANNEL_CHUNKS: usize = 8;
/// Size of one chunk a blocking writer sends.
const CHUNK_BYTES: usize = 64 * 1024;

/// What a blocking producer sends: data, or the error that ended it.
pub(super) type Item = Result<Bytes, ApiError>;

/// A request body as a blocking reader, for `spawn_blocking` code. Never buffers more than the
/// body's own frames.
pub(super) fn body_reader(body: Body) -> impl io::Read + Send + 'static {
    let stream = body.into_data_stream().map_err(io::Error::other);
    tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream))
}

/// A blocking `Write` that sends 64 KiB chunks down a bounded channel; fails with BrokenPipe
/// once the client is gone.
pub(super) struct ChannelWriter {
    tx: mpsc::Sender<Item>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub(super) fn new(tx: mpsc::Sender<Item>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK_BYTES),
        }
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK_BYTES - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK_BYTES {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

pub(super) fn channel() -> (mpsc::Sender<Item>, mpsc::Receiver<Item>) {
    mpsc::channel(CHANNEL_CHUNKS)
}

/// Runs a blocking tarball producer (`docker save`, `export`, `cp`, volume export) on the
/// blocking pool and streams what it writes as `application/x-tar`: an error before the first
/// byte is an ordinary error response, one after it cuts the body short.
pub(super) async fn tar_response<F>(produce: F) -> Response
where
    F: FnOnce(&mut dyn io::Write) -> Result<(), ApiError> + Send + 'static,
{
    let (tx, rx) = channel();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter::new(tx.clone());
        let result = produce(&mut out).and_then(|()| {
            io::Write::flush(&mut out)
                .map_err(|e| ApiError::internal(format!("write tarball: {e}")))
        });
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    respond(rx, "application/x-tar", MidStreamError::Abort).await
}

/// How a failure after the first byte is reported.
#[derive(Clone, Copy)]
pub(super) enum MidStreamError {
    /// As a final `{"errorDetail":...}` JSON line (progress streams).
    JsonLine,
    /// By cutting the body short (binary streams such as tarballs).
    Abort,
}

/// Waits for the producer's first item: an error before any data becomes a normal error
/// response with its status code; otherwise a 200 streams everything.
pub(super) async fn respond(
    mut rx: mpsc::Receiver<Item>,
    content_type: &'static str,
    on_error: MidStreamError,
) -> Response {
    let first = match rx.recv().await {
        Some(Err(e)) => return e.into_response(),
        first => first,
    };
    let stream = futures_util::stream::unfold(
        (first, rx, false),
        move |(pending, mut rx, done)| async move {
            if done {
                return None;
            }
            let item = match pending {
                Some(item) => item,
                None => rx.recv().await?,
            };
            match item {
                Ok(bytes) => Some((Ok(bytes), (None, rx, false))),
                Err(e) => match on_error {
                    MidStreamError::JsonLine => {
                        let msg = estiba_api::JsonMessage::error(e.message);
                        let mut line = serde_json::to_vec(&msg).unwrap_or_default();
                        line.extend_from_slice(b"\r\n");
                        Some((Ok(Bytes::from(line)), (None, rx, true)))
                    }
                    MidStreamError::Abort => {
                        Some((Err(io::Error::other(e.message)), (None, rx, true)))
                    }
                },
            }
        },
    );
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
