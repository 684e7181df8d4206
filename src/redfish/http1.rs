//! A deliberately tiny HTTP/1.1 client for discovery probes: one `GET`, `Connection: close`,
//! Content-Length, chunked or read-to-close bodies, hard caps on header and body size.
//!
//! A full client (reqwest) costs a connection pool, a resolver and a TLS config per instance; a
//! scan runs hundreds of probes at once, so the probe speaks HTTP itself over a stream it owns.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest header block accepted.
const MAX_HEAD: usize = 32 * 1024;
/// Largest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Why a probe's HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Http1Error {
    /// Reading or writing the stream failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer's bytes are not an HTTP/1.x response.
    #[error("not HTTP: {0}")]
    Malformed(String),
    /// The body was larger than the cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
}

/// A parsed response: status, lower-cased header names, body.
#[derive(Debug)]
pub(crate) struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// Header (name, value) pairs, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// First value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path` and reads the whole response.
pub(crate) async fn get<S>(
    stream: &mut S,
    host: &str,
    path: &str,
    body_cap: usize,
) -> Result<RawResponse, Http1Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\
         User-Agent: mojo-server\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    read_response(stream, body_cap).await
}

/// Buffered reader over the stream with the few primitives HTTP framing needs.
struct Framed<'a, R> {
    inner: &'a mut R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<'a, R: AsyncRead + Unpin> Framed<'a, R> {
    fn new(inner: &'a mut R) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(8192),
            pos: 0,
            eof: false,
        }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more bytes; returns false at end of stream.
    async fn fill(&mut self) -> Result<bool, Http1Error> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let mut chunk = [0u8; 8192];
        let n = match self.inner.read(&mut chunk).await {
            Ok(n) => n,
            // BMCs often close TLS without close_notify; for a read-to-close body that is the end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// One CRLF- (or LF-) terminated line without its terminator.
    async fn line(&mut self) -> Result<Vec<u8>, Http1Error> {
        loop {
            if let Some(i) = self.available().iter().position(|b| *b == b'\n') {
                let mut line = self.available()[..i].to_vec();
                self.pos += i + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.available().len() > MAX_LINE {
                return Err(Http1Error::Malformed("line too long".into()));
            }
            if !self.fill().await? {
                return Err(Http1Error::Malformed("connection closed mid-body".into()));
            }
        }
    }

    /// Appends exactly `n` bytes to `out`.
    async fn take(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), Http1Error> {
        while n > 0 {
            if self.available().is_empty() && !self.fill().await? {
                return Err(Http1Error::Malformed("connection closed mid-body".into()));
            }
            let k = n.min(self.available().len());
            out.extend_from_slice(&self.available()[..k]);
            self.pos += k;
            n -= k;
        }
        Ok(())
    }
}

/// Reads and decodes one response from the stream.
pub(crate) async fn read_response<R>(
    stream: &mut R,
    body_cap: usize,
) -> Result<RawResponse, Http1Error>
where
    R: AsyncRead + Unpin,
{
    let mut framed = Framed::new(stream);
    let (status, headers, head_len) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(framed.available()) {
            Ok(httparse::Status::Complete(len)) => {
                let status = parsed.code.unwrap_or(0);
                let headers = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).trim().to_string(),
                        )
                    })
                    .collect::<Vec<_>>();
                break (status, headers, len);
            }
            Ok(httparse::Status::Partial) => {
                if framed.available().len() > MAX_HEAD {
                    return Err(Http1Error::Malformed("header block too large".into()));
                }
                if !framed.fill().await? {
                    let what = if framed.available().is_empty() {
                        "connection closed without a response"
                    } else {
                        "connection closed mid-header"
                    };
                    return Err(Http1Error::Malformed(what.into()));
                }
            }
            Err(e) => return Err(Http1Error::Malformed(e.to_string())),
        }
    };
    framed.pos += head_len;
    let mut response = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        read_chunked(&mut framed, body_cap, &mut response.body).await?;
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| Http1Error::Malformed("bad Content-Length".into()))?;
        if length > body_cap {
            return Err(Http1Error::TooLarge(body_cap));
        }
        let mut body = Vec::with_capacity(length);
        framed.take(length, &mut body).await?;
        response.body = body;
    } else {
        loop {
            let avail = framed.available().len();
            if response.body.len() + avail > body_cap {
                return Err(Http1Error::TooLarge(body_cap));
            }
            response.body.extend_from_slice(framed.available());
            framed.pos += avail;
            if !framed.fill().await? {
                break;
            }
        }
    }
    Ok(response)
}

async fn read_chunked<R: AsyncRead + Unpin>(
    framed: &mut Framed<'_, R>,
    body_cap: usize,
    body: &mut Vec<u8>,
) -> Result<(), Http1Error> {
    loop {
        let line = framed.line().await?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| Http1Error::Malformed("bad chunk size".into()))?;
        if size == 0 {
            // Trailers until the empty line; a peer that just closes here is tolerated.
            loop {
                match framed.line().await {
                    Ok(trailer) if trailer.is_empty() => return Ok(()),
                    Ok(_) => continue,
                    Err(_) => return Ok(()),
                }
            }
        }
        if body.len().saturating_add(size) > body_cap {
            return Err(Http1Error::TooLarge(body_cap));
        }
        framed.take(size, body).await?;
        let end = framed.line().await?;
        if !end.is_empty() {
            return Err(Http1Error::Malformed("chunk without CRLF".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8], cap: usize) -> Result<RawResponse, Http1Error> {
        let mut reader = bytes;
        read_response(&mut reader, cap).await
    }

    #[tokio::test]
    async fn content_length_body() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloEXTRA",
            100,
        )
        .await
        .expect("parses");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("x-a"), Some("b"));
    }

    #[tokio::test]
    async fn chunked_body_with_extension_and_trailer() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n",
            100,
        )
        .await
        .expect("parses");
        assert_eq!(r.body, b"Wikipedia");
    }

    #[tokio::test]
    async fn read_to_close_body() {
        let r = parse(b"HTTP/1.0 200 OK\r\n\r\n{\"a\":1}", 100)
            .await
            .expect("parses");
        assert_eq!(r.body, b"{\"a\":1}");
    }

    #[tokio::test]
    async fn caps_are_enforced() {
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", 100).await,
            Err(Http1Error::TooLarge(100))
        ));
        assert!(matches!(
            parse(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n",
                10
            )
            .await,
            Err(Http1Error::TooLarge(10))
        ));
        let big = [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), &[b'x'; 200]].concat();
        assert!(matches!(
            parse(&big, 100).await,
            Err(Http1Error::TooLarge(100))
        ));
    }

    #[tokio::test]
    async fn garbage_is_not_http() {
        assert!(matches!(
            parse(b"<html>hello</html>\r\n\r\n", 100).await,
            Err(Http1Error::Malformed(_))
        ));
        assert!(matches!(
            parse(b"", 100).await,
            Err(Http1Error::Malformed(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100).await,
            Err(Http1Error::Malformed(_))
        ));
    }
}
