//! Accept loops and connections: HTTP/1.1 over Unix and TCP sockets, bounded headers, graceful
//! shutdown (stop accepting, let in-flight requests finish for a bounded time).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::listen::Bound;

/// Request line plus headers may not exceed this (hyper answers 431 beyond).
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header fields in one request.
const MAX_HEADERS: usize = 128;
/// A client must finish sending its headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight requests.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves every listener until `shutdown` turns true, then drains connections.
pub(crate) async fn serve(
    listeners: Vec<Bound>,
    router: Router,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let mut accept_loops = Vec::with_capacity(listeners.len());
    for bound in listeners {
        let router = router.clone();
        let shutdown = shutdown.clone();
        let tracker = tracker.clone();
        match bound {
            Bound::Unix(l, path) => {
                l.set_nonblocking(true)?;
                let l = tokio::net::UnixListener::from_std(l)?;
                tracing::info!("API listen on {}", path.display());
                accept_loops.push(tokio::spawn(async move {
                    accept_loop(|| l.accept(), router, shutdown, tracker).await
                }));
            }
            Bound::Tcp(l, addr) => {
                l.set_nonblocking(true)?;
                let l = tokio::net::TcpListener::from_std(l)?;
                tracing::info!("API listen on {addr}");
                accept_loops.push(tokio::spawn(async move {
                    accept_loop(|| l.accept(), router, shutdown, tracker).await
                }));
            }
        }
    }
    for l in accept_loops {
        let _ = l.await;
    }
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "{} connection(s) still busy after {}s; closing them",
            tracker.len(),
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}

async fn accept_loop<F, Fut, S, A>(
    mut accept: F,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<(S, A)>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            accepted = accept() => match accepted {
                Ok((stream, _)) => {
                    tracker.spawn(serve_connection(stream, router.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn serve_connection<S>(stream: S, router: Router, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let router = router.clone();
        async move { Ok::<_, Infallible>(crate::api::handle(router, req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES.max(8192) * 2)
        .max_headers(MAX_HEADERS)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("connection: {e}");
    }
}
