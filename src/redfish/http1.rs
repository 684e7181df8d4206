//! The probe's HTTP exchange: one `GET` with `Connection: close` over a stream the probe already
//! owns (TCP or TLS), spoken by hyper's connection-level HTTP/1 client, with hard caps on header
//! and body size.
//!
//! A full client (reqwest) costs a connection pool, a resolver and a TLS config per instance; a
//! scan runs hundreds of probes at once, so the probe connects and shakes hands itself and only
//! hands the stream to hyper for the HTTP framing.

use std::error::Error as _;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Incoming};
use hyper::header::{ACCEPT, CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest header block (status line included) accepted.
const MAX_HEAD: usize = 32 * 1024;
/// Most header fields accepted.
const MAX_HEADERS: usize = 64;

/// Why a probe's HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Http1Error {
    /// Reading or writing the stream failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// The peer's bytes are not an HTTP/1.x response (or not a complete one).
    #[error("not HTTP: {0}")]
    Malformed(String),
    /// The body was larger than the cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
}

impl From<hyper::Error> for Http1Error {
    fn from(error: hyper::Error) -> Self {
        // An I/O failure underneath (reset, broken pipe) stays one, so the probe can tell a
        // dropped connection from a peer that speaks something else. `UnexpectedEof` is not
        // one: the stream's own is read as a plain end (`CloseIsEof`), so it is hyper saying
        // the message was cut short.
        let mut source = error.source();
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                if io.kind() != std::io::ErrorKind::UnexpectedEof {
                    return Http1Error::Io(std::io::Error::new(io.kind(), io.to_string()));
                }
            }
            source = cause.source();
        }
        if error.is_parse_too_large() {
            return Http1Error::Malformed("header block too large".into());
        }
        // hyper's Display is one level deep; the causes say what the peer actually did
        // (e.g. "operation was canceled: received unexpected message from connection").
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        Http1Error::Malformed(text)
    }
}

/// Sends `GET path` and reads the whole response, body capped at `body_cap` bytes.
///
/// Everything runs in the caller's task (nothing is spawned), so the caller's deadline bounds
/// the whole exchange.
pub(crate) async fn get<S>(
    stream: &mut S,
    host: &str,
    path: &str,
    body_cap: usize,
) -> Result<Response<Vec<u8>>, Http1Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEAD)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(CloseIsEof(stream)))
        .await?;
    let request = Request::get(path)
        .header(HOST, host)
        .header(ACCEPT, "application/json")
        .header(USER_AGENT, "mojo-server")
        .header(CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| Http1Error::Malformed(format!("request: {e}")))?;
    let exchange = async move {
        let (parts, body) = sender.send_request(request).await?.into_parts();
        let body = read_capped(body, body_cap).await?;
        Ok(Response::from_parts(parts, body))
    };
    // The connection future does the I/O; poll it alongside the exchange until the exchange
    // ends. A connection error reaches the exchange too, as the response's or the body's error.
    let mut exchange = pin!(exchange);
    let mut conn = pin!(conn);
    let mut conn_done = false;
    loop {
        tokio::select! {
            biased;
            result = &mut exchange => return result,
            _ = &mut conn, if !conn_done => conn_done = true,
        }
    }
}

/// Reads the body frame by frame, failing as soon as it would exceed `cap` bytes.
async fn read_capped(mut body: Incoming, cap: usize) -> Result<Vec<u8>, Http1Error> {
    // A declared Content-Length over the cap is refused before reading any of it.
    let declared = body.size_hint().lower();
    if declared > cap as u64 {
        return Err(Http1Error::TooLarge(cap));
    }
    let mut out = Vec::with_capacity(declared as usize);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if out.len().saturating_add(data.len()) > cap {
                return Err(Http1Error::TooLarge(cap));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// The probe's stream, with an unexpected end of stream read as a plain one: BMCs often close
/// TLS without close_notify, and for a read-to-close body that is the end of the body.
struct CloseIsEof<'a, S>(&'a mut S);

impl<S: AsyncRead + Unpin> AsyncRead for CloseIsEof<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut *self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CloseIsEof<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Runs `get` against a peer that reads the request head, answers `reply` and closes.
    /// Returns the response and the request bytes the peer saw.
    async fn exchange(
        reply: impl AsRef<[u8]>,
        cap: usize,
    ) -> (Result<Response<Vec<u8>>, Http1Error>, Vec<u8>) {
        let reply = reply.as_ref().to_vec();
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let peer = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match server.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = server.write_all(&reply).await;
            let _ = server.shutdown().await;
            seen
        });
        let result = get(&mut client, "127.0.0.1:9443", "/redfish/v1/", cap).await;
        (result, peer.await.expect("peer task"))
    }

    async fn parse(reply: impl AsRef<[u8]>, cap: usize) -> Result<Response<Vec<u8>>, Http1Error> {
        exchange(reply, cap).await.0
    }

    #[tokio::test]
    async fn sends_the_same_request_as_before() {
        let (result, request) =
            exchange(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 100).await;
        assert_eq!(result.expect("parses").status(), 204);
        assert_eq!(
            String::from_utf8(request).expect("text"),
            "GET /redfish/v1/ HTTP/1.1\r\nHost: 127.0.0.1:9443\r\nAccept: application/json\r\n\
             User-Agent: mojo-server\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn content_length_body() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloEXTRA",
            100,
        )
        .await
        .expect("parses");
        assert_eq!(r.status(), 200);
        assert_eq!(r.body(), b"hello");
        assert_eq!(
            r.headers().get("x-a").and_then(|v| v.to_str().ok()),
            Some("b")
        );
    }

    #[tokio::test]
    async fn chunked_body_with_extension_and_trailer() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n",
            100,
        )
        .await
        .expect("parses");
        assert_eq!(r.body(), b"Wikipedia");
    }

    #[tokio::test]
    async fn read_to_close_body() {
        let r = parse(b"HTTP/1.0 200 OK\r\n\r\n{\"a\":1}", 100)
            .await
            .expect("parses");
        assert_eq!(r.body(), b"{\"a\":1}");
    }

    /// A TLS peer that hangs up without close_notify ends a read-to-close body, it does not fail it.
    #[tokio::test]
    async fn unexpected_eof_ends_a_read_to_close_body() {
        let mut stream = UncleanClose::new(b"HTTP/1.0 200 OK\r\n\r\n{\"a\":1}");
        let r = get(&mut stream, "h", "/redfish/v1/", 100)
            .await
            .expect("parses");
        assert_eq!(r.body(), b"{\"a\":1}");
    }

    #[tokio::test]
    async fn caps_are_enforced() {
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", 100).await,
            Err(Http1Error::TooLarge(100))
        ));
        let chunked = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n".as_slice(),
            &[b'x'; 0x40],
            b"\r\n0\r\n\r\n",
        ]
        .concat();
        assert!(matches!(
            parse(&chunked, 10).await,
            Err(Http1Error::TooLarge(10))
        ));
        let big = [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), &[b'x'; 200]].concat();
        assert!(matches!(
            parse(&big, 100).await,
            Err(Http1Error::TooLarge(100))
        ));
    }

    #[tokio::test]
    async fn header_caps_are_enforced() {
        let huge = [
            b"HTTP/1.1 200 OK\r\nX-Big: ".as_slice(),
            &[b'a'; MAX_HEAD],
            b"\r\n\r\n",
        ]
        .concat();
        assert!(matches!(
            parse(&huge, 100).await,
            Err(Http1Error::Malformed(_))
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        assert!(matches!(
            parse(&many, 100).await,
            Err(Http1Error::Malformed(_))
        ));
    }

    /// A peer that never stops sending headers or body is cut off at the cap, not read forever.
    #[tokio::test]
    async fn endless_peers_are_cut_off() {
        for head in [
            b"HTTP/1.1 200 OK\r\nX-Endless: ".as_slice(),
            b"HTTP/1.1 200 OK\r\n\r\n".as_slice(),
        ] {
            let (mut client, mut server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = server.read(&mut buf).await;
                let _ = server.write_all(head).await;
                while server.write_all(&[b'a'; 4096]).await.is_ok() {}
            });
            let result = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                get(&mut client, "h", "/redfish/v1/", 1024 * 1024),
            )
            .await
            .expect("cut off before the timeout");
            assert!(
                matches!(
                    result,
                    Err(Http1Error::Malformed(_) | Http1Error::TooLarge(_))
                ),
                "{result:?}"
            );
        }
    }

    /// A service that talks first (an SSH banner) is not HTTP, and the reason says so.
    #[tokio::test]
    async fn a_peer_that_speaks_first_is_not_http() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        server
            .write_all(b"SSH-2.0-OpenSSH_9.2\r\n")
            .await
            .expect("banner");
        let result = get(&mut client, "h", "/redfish/v1/", 100).await;
        match result {
            Err(Http1Error::Malformed(reason)) => {
                assert!(reason.contains("unexpected message"), "{reason}")
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn garbage_is_not_http() {
        assert!(matches!(
            parse(b"<html>hello</html>\r\n\r\n", 100).await,
            Err(Http1Error::Malformed(_))
        ));
        assert!(matches!(
            parse(b"SSH-2.0-OpenSSH_9.2\r\n", 100).await,
            Err(Http1Error::Malformed(_))
        ));
        assert!(matches!(
            parse(b"", 100).await,
            Err(Http1Error::Malformed(_))
        ));
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100).await;
        assert!(matches!(r, Err(Http1Error::Malformed(_))), "{r:?}");
    }

    /// A stream that swallows writes and, once written to, yields its bytes and then fails reads
    /// with `UnexpectedEof`, as tokio-rustls does when the peer closes without close_notify.
    struct UncleanClose {
        reply: &'static [u8],
        written: bool,
        reader: Option<std::task::Waker>,
    }

    impl UncleanClose {
        fn new(reply: &'static [u8]) -> Self {
            Self {
                reply,
                written: false,
                reader: None,
            }
        }
    }

    impl AsyncRead for UncleanClose {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if !self.written {
                self.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if self.reply.is_empty() {
                return Poll::Ready(Err(std::io::ErrorKind::UnexpectedEof.into()));
            }
            let n = self.reply.len().min(buf.remaining());
            buf.put_slice(&self.reply[..n]);
            self.reply = &self.reply[n..];
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for UncleanClose {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.written = true;
            if let Some(reader) = self.reader.take() {
                reader.wake();
            }
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}
