//! A minimal HTTP/1.1 layer for the embedded-service example: one bounded request per
//! connection, read from any [`BufRead`], and a JSON response written back.
//!
//! It serves the example and nothing more. It has no keep-alive, no chunked bodies and no
//! `Expect: 100-continue`. A real service would use a maintained HTTP server. This file shows
//! the limits that such a server must enforce before any request data reaches the engine.
//!
//! # Limits
//!
//! - The request line and the headers together take at most [`MAX_HEADER_BYTES`] bytes,
//!   counted with their line endings, and at most [`MAX_HEADERS`] header lines.
//! - The body takes at most [`MAX_BODY_BYTES`] bytes and is read only as far as
//!   `Content-Length` says. A request with `Transfer-Encoding` is rejected with 501.
//! - Every failure is an [`HttpError`] that names the status to answer with. Reading never
//!   panics on any input.
//!
//! # Strictness
//!
//! The request line must be exactly `METHOD SP /target SP HTTP/1.x`. Header names are tokens
//! and are compared case-insensitively. A repeated header is rejected, because a request that
//! carries two `X-Signature` or `Content-Length` values has no single meaning. Lines may end in
//! CRLF or a bare LF.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

/// Maximum size of the request line and the headers together, in bytes.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Maximum number of header lines.
pub const MAX_HEADERS: usize = 32;
/// Maximum body size in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How many bytes of a rejected line an error message repeats.
const ECHO_LIMIT: usize = 60;

/// A parsed HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    path: String,
    /// Header names in lower case, with their raw values.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    /// The method as sent, such as `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The raw request path without the query string, not percent-decoded.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value of header `name`, matched case-insensitively, with surrounding spaces removed.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(stored, _)| stored.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }

    /// The exact body bytes; empty when the request had none.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// Reads one request from `reader`, within the limits in the module docs.
///
/// # Errors
///
/// [`HttpError`] when the request is malformed or over a limit, and then its
/// [`status`](HttpError::status) is the status to respond with. Also when the connection fails
/// or closes before the request is complete, and then there is no status and the caller closes
/// the connection.
pub fn read_request(reader: &mut impl BufRead) -> Result<Request, HttpError> {
    let mut budget = MAX_HEADER_BYTES;

    let line = read_line(reader, &mut budget)?;
    let (method, path) = parse_request_line(&line)?;

    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(HttpError(Kind::TooManyHeaders));
        }
        let (name, value) = parse_header_line(&line)?;
        if headers.iter().any(|(stored, _)| *stored == name) {
            return Err(HttpError(Kind::DuplicateHeader(name)));
        }
        headers.push((name, value));
    }

    if headers.iter().any(|(name, _)| name == "transfer-encoding") {
        return Err(HttpError(Kind::TransferEncoding));
    }
    let length = match headers.iter().find(|(name, _)| name == "content-length") {
        Some((_, value)) => parse_content_length(value)?,
        None => 0,
    };
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(read_failed)?;

    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Reads one line within `budget` bytes and returns it without its line ending.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<Vec<u8>, HttpError> {
    let mut line = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX);
    reader
        .by_ref()
        .take(limit)
        .read_until(b'\n', &mut line)
        .map_err(read_failed)?;
    if line.last() != Some(&b'\n') {
        // Either the budget ran out or the peer closed the connection mid-line.
        return Err(if line.len() == *budget {
            HttpError(Kind::HeadersTooLarge)
        } else {
            HttpError(Kind::Incomplete)
        });
    }
    *budget -= line.len();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

/// Parses `METHOD SP /target SP HTTP/1.x` into the method and the path without its query.
fn parse_request_line(line: &[u8]) -> Result<(String, String), HttpError> {
    let malformed = || HttpError(Kind::RequestLine(echo(line)));
    let mut parts = line.split(|&byte| byte == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    if method.is_empty() || !method.iter().all(|&byte| is_token_byte(byte)) {
        return Err(malformed());
    }
    // The target must be origin-form, of visible ASCII only, so it is also valid UTF-8.
    let visible = target.iter().all(|&byte| (0x21..=0x7e).contains(&byte));
    if target.first() != Some(&b'/') || !visible {
        return Err(malformed());
    }
    match version {
        b"HTTP/1.1" | b"HTTP/1.0" => {}
        other if other.starts_with(b"HTTP/") => {
            return Err(HttpError(Kind::Version(echo(other))));
        }
        _ => return Err(malformed()),
    }
    let path = target.split(|&byte| byte == b'?').next().unwrap_or(target);
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| malformed())
    };
    Ok((text(method)?, text(path)?))
}

/// Parses `name: value` into the lower-case name and the value without surrounding spaces.
fn parse_header_line(line: &[u8]) -> Result<(String, Vec<u8>), HttpError> {
    let malformed = || HttpError(Kind::HeaderLine(echo(line)));
    let colon = line
        .iter()
        .position(|&byte| byte == b':')
        .ok_or_else(malformed)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // An empty name, a space before the colon and an obsolete folded line all fail here.
    if name.is_empty() || !name.iter().all(|&byte| is_token_byte(byte)) {
        return Err(malformed());
    }
    let value = value.trim_ascii();
    let allowed = |byte: &u8| *byte == b'\t' || (0x20..=0x7e).contains(byte) || *byte >= 0x80;
    if !value.iter().all(allowed) {
        return Err(malformed());
    }
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    Ok((name, value.to_vec()))
}

fn parse_content_length(value: &[u8]) -> Result<usize, HttpError> {
    let invalid = || HttpError(Kind::ContentLength(echo(value)));
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let text = std::str::from_utf8(value).map_err(|_| invalid())?;
    let length: u64 = text.parse().map_err(|_| invalid())?;
    match usize::try_from(length) {
        Ok(length) if length <= MAX_BODY_BYTES => Ok(length),
        _ => Err(HttpError(Kind::BodyTooLarge(length))),
    }
}

/// A `tchar` of RFC 9110: the bytes allowed in a method or a header name.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn read_failed(error: io::Error) -> HttpError {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        HttpError(Kind::Incomplete)
    } else {
        HttpError(Kind::Io(error))
    }
}

/// Repeats at most [`ECHO_LIMIT`] bytes of a rejected value, escaped to printable ASCII.
fn echo(value: &[u8]) -> String {
    let prefix = value.get(..ECHO_LIMIT).unwrap_or(value);
    let mut text = prefix.escape_ascii().to_string();
    if value.len() > ECHO_LIMIT {
        text.push_str("...");
    }
    text
}

/// A request that could not be read.
#[derive(Debug)]
pub struct HttpError(Kind);

#[derive(Debug)]
enum Kind {
    RequestLine(String),
    Version(String),
    HeadersTooLarge,
    TooManyHeaders,
    HeaderLine(String),
    DuplicateHeader(String),
    ContentLength(String),
    BodyTooLarge(u64),
    TransferEncoding,
    Incomplete,
    Io(io::Error),
}

impl HttpError {
    /// The status to respond with, or `None` when the connection failed or closed early and no
    /// response can be sent.
    pub fn status(&self) -> Option<u16> {
        match &self.0 {
            Kind::RequestLine(_)
            | Kind::HeaderLine(_)
            | Kind::DuplicateHeader(_)
            | Kind::ContentLength(_) => Some(400),
            Kind::BodyTooLarge(_) => Some(413),
            Kind::HeadersTooLarge | Kind::TooManyHeaders => Some(431),
            Kind::TransferEncoding => Some(501),
            Kind::Version(_) => Some(505),
            Kind::Incomplete | Kind::Io(_) => None,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::RequestLine(line) => write!(
                f,
                "malformed request line `{line}`: expected `METHOD /path HTTP/1.1`"
            ),
            Kind::Version(version) => write!(
                f,
                "unsupported HTTP version `{version}`: expected HTTP/1.1 or HTTP/1.0"
            ),
            Kind::HeadersTooLarge => write!(
                f,
                "request line and headers exceed {MAX_HEADER_BYTES} bytes"
            ),
            Kind::TooManyHeaders => write!(f, "request has more than {MAX_HEADERS} headers"),
            Kind::HeaderLine(line) => {
                write!(f, "malformed header line `{line}`: expected `Name: value`")
            }
            Kind::DuplicateHeader(name) => {
                write!(f, "duplicate header `{name}`: send each header once")
            }
            Kind::ContentLength(value) => write!(
                f,
                "invalid content-length `{value}`: expected a decimal byte count"
            ),
            Kind::BodyTooLarge(length) => write!(
                f,
                "request body of `{length}` bytes exceeds the maximum of {MAX_BODY_BYTES} bytes"
            ),
            Kind::TransferEncoding => write!(
                f,
                "transfer-encoding is not supported: send the body with content-length"
            ),
            Kind::Incomplete => {
                write!(f, "connection closed before the request was complete")
            }
            Kind::Io(error) => write!(f, "failed to read the request: {error}"),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Kind::Io(error) => Some(error),
            _ => None,
        }
    }
}

/// An HTTP response with a JSON body. Every response closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    /// Makes a response with status `status` and `body` serialised as JSON.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    /// Makes a `{"error": message}` response.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    /// Adds a header, such as `Retry-After`.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Writes the status line, the headers and the body to `writer`.
    ///
    /// # Errors
    ///
    /// The I/O error of the first write that failed.
    pub fn write_to(&self, writer: &mut impl Write) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason_phrase(self.status),
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        writer.write_all(&self.body)?;
        writer.flush()
    }
}

/// The standard reason phrase of the statuses this layer sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Request, HttpError> {
        read_request(&mut &bytes[..])
    }

    fn rejection(bytes: &[u8]) -> (Option<u16>, String) {
        match read(bytes) {
            Ok(request) => panic!("expected a rejection, got {request:?}"),
            Err(error) => (error.status(), error.to_string()),
        }
    }

    #[test]
    fn parses_signed_get() {
        let request = read(
            b"GET /v1/secret/sk_abcdefghij?x=1 HTTP/1.1\r\nHost: localhost\r\nX-machine-id:  abc \r\n\r\n",
        )
        .unwrap();
        assert_eq!(request.method(), "GET");
        assert_eq!(request.path(), "/v1/secret/sk_abcdefghij");
        assert_eq!(request.header("X-Machine-Id"), Some(&b"abc"[..]));
        assert_eq!(request.header("host"), Some(&b"localhost"[..]));
        assert_eq!(request.header("X-Nonce"), None);
        assert!(request.body().is_empty());
    }

    #[test]
    fn reads_body_by_content_length() {
        let request =
            read(b"POST /v1/secrets/list HTTP/1.1\nContent-Length: 5\n\nhello, and more").unwrap();
        assert_eq!(request.body(), b"hello");
    }

    #[test]
    fn malformed_request_lines_are_400() {
        let cases: [&[u8]; 9] = [
            b"\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /path\r\n\r\n",
            b"GET  /path HTTP/1.1\r\n\r\n",
            b"GET /path HTTP/1.1 extra\r\n\r\n",
            b"GET path HTTP/1.1\r\n\r\n",
            b"G(T /path HTTP/1.1\r\n\r\n",
            b"GET /pa\xffth HTTP/1.1\r\n\r\n",
            b"GET /path FTP/1.1\r\n\r\n",
        ];
        for case in cases {
            let (status, message) = rejection(case);
            assert_eq!(status, Some(400), "{}", case.escape_ascii());
            assert!(message.starts_with("malformed request line `"), "{message}");
        }
    }

    #[test]
    fn other_http_version_is_505() {
        let (status, message) = rejection(b"GET / HTTP/2.0\r\n\r\n");
        assert_eq!(status, Some(505));
        assert_eq!(
            message,
            "unsupported HTTP version `HTTP/2.0`: expected HTTP/1.1 or HTTP/1.0"
        );
    }

    #[test]
    fn header_section_is_bounded() {
        let mut request = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES));
        request.extend(b"\r\n\r\n");
        let (status, message) = rejection(&request);
        assert_eq!(status, Some(431));
        assert_eq!(message, "request line and headers exceed 8192 bytes");
    }

    #[test]
    fn header_section_fits_exactly() {
        let head = b"GET / HTTP/1.1\r\nX-Pad: ".len() + b"\r\n\r\n".len();
        let mut request = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES - head));
        request.extend(b"\r\n\r\n");
        assert_eq!(request.len(), MAX_HEADER_BYTES);
        assert!(read(&request).is_ok());
        request.insert(20, b'a');
        assert_eq!(rejection(&request).0, Some(431));
    }

    #[test]
    fn header_count_is_bounded() {
        let mut request = b"GET / HTTP/1.1\r\n".to_vec();
        for index in 0..MAX_HEADERS {
            request.extend(format!("X-H{index}: v\r\n").as_bytes());
        }
        let mut over = request.clone();
        request.extend(b"\r\n");
        assert!(read(&request).is_ok());

        over.extend(b"X-One-Too-Many: v\r\n\r\n");
        let (status, message) = rejection(&over);
        assert_eq!(status, Some(431));
        assert_eq!(message, "request has more than 32 headers");
    }

    #[test]
    fn body_is_bounded() {
        let request = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        let (status, message) = rejection(request.as_bytes());
        assert_eq!(status, Some(413));
        assert_eq!(
            message,
            "request body of `65537` bytes exceeds the maximum of 65536 bytes"
        );

        let huge = rejection(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n");
        assert_eq!(huge.0, Some(400));
        assert!(huge.1.starts_with("invalid content-length `"), "{}", huge.1);
    }

    #[test]
    fn bad_content_length_is_400() {
        for value in ["", "-1", "+5", "5 5", "0x10", "١"] {
            let request = format!("POST / HTTP/1.1\r\nContent-Length: {value}\r\n\r\n");
            let (status, message) = rejection(request.as_bytes());
            assert_eq!(status, Some(400), "{value:?}");
            assert!(message.starts_with("invalid content-length"), "{message}");
        }
    }

    #[test]
    fn transfer_encoding_is_501() {
        let (status, message) =
            rejection(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        assert_eq!(status, Some(501));
        assert_eq!(
            message,
            "transfer-encoding is not supported: send the body with content-length"
        );
    }

    #[test]
    fn malformed_header_lines_are_400() {
        let cases: [&[u8]; 5] = [
            b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-Nonce : abc\r\n\r\n",
            b"GET / HTTP/1.1\r\n: empty name\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
        ];
        for case in cases {
            let (status, message) = rejection(case);
            assert_eq!(status, Some(400), "{}", case.escape_ascii());
            assert!(message.starts_with("malformed header line `"), "{message}");
        }
    }

    #[test]
    fn duplicate_header_is_400() {
        let (status, message) =
            rejection(b"GET / HTTP/1.1\r\nX-Signature: a\r\nx-signature: b\r\n\r\n");
        assert_eq!(status, Some(400));
        assert_eq!(
            message,
            "duplicate header `x-signature`: send each header once"
        );
    }

    #[test]
    fn truncated_request_gets_no_status() {
        let cases: [&[u8]; 4] = [
            b"",
            b"GET / HTTP/1.1",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
        ];
        for case in cases {
            let (status, message) = rejection(case);
            assert_eq!(status, None, "{}", case.escape_ascii());
            assert_eq!(message, "connection closed before the request was complete");
        }
    }

    #[test]
    fn long_request_line_is_echoed_shortened() {
        let mut line = b"GET /".to_vec();
        line.extend(std::iter::repeat_n(b'a', 200));
        line.extend(b"\r\n\r\n");
        let (status, message) = rejection(&line);
        assert_eq!(status, Some(400));
        assert!(message.contains("aaa...`"), "{message}");
        assert!(message.len() < 150, "{message}");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A fixed pseudo-random sequence (xorshift) keeps the test deterministic.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"GET /:\r\n HTTP/1.1Content-Length0123456789\xff\x00";
        for _ in 0..2_000 {
            let mut bytes = Vec::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let length = usize::try_from(state % 200).unwrap();
            for _ in 0..length {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let index = usize::try_from(state % alphabet.len() as u64).unwrap();
                bytes.push(alphabet[index]);
            }
            if let Err(error) = read(&bytes) {
                assert!(!error.to_string().is_empty());
            }
        }
    }

    #[test]
    fn response_is_written_with_headers() {
        let mut written = Vec::new();
        Response::error(429, "too many failed attempts")
            .with_header("Retry-After", "900".to_owned())
            .write_to(&mut written)
            .unwrap();
        let text = String::from_utf8(written).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: 36\r\nConnection: close\r\nRetry-After: 900\r\n\r\n{\"error\":\"too many failed attempts\"}"
        );
    }
}
