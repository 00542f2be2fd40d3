//! A chunked body (RFC 9112 section 7.1), one step at a time: chunk-size lines with
//! extensions, data, the CRLF after it, and the trailer section up to its empty line.
//! Lenient as servers are: a bare LF ends a line.

use crate::heads::Passthrough;

/// Longest chunk-size line (with extensions) accepted before the body is called malformed.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug)]
pub enum Chunked {
    Size(Vec<u8>),
    Data(u64),
    /// The CRLF after chunk data; `true` once the CR was seen.
    DataEnd(bool),
    /// Trailer lines until an empty one: bytes of the current line, bytes in all.
    Trailers {
        line: usize,
        total: usize,
    },
}

pub enum Next {
    Continue(Chunked),
    End,
    Pass(Passthrough),
}

/// One step through a chunked body: what follows, and how many bytes of `rest` it took.
pub fn chunk_step(chunk: Chunked, rest: &[u8], limit: usize) -> (Next, usize) {
    match chunk {
        Chunked::Data(left) => {
            let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let left = left - take as u64;
            let next = if left == 0 {
                Chunked::DataEnd(false)
            } else {
                Chunked::Data(left)
            };
            (Next::Continue(next), take)
        }
        Chunked::Size(mut line) => {
            let take = rest
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len(), |p| p + 1);
            line.extend_from_slice(&rest[..take]);
            let next = if line.len() > MAX_CHUNK_LINE {
                Next::Pass(Passthrough::BadFraming)
            } else if !line.ends_with(b"\n") {
                Next::Continue(Chunked::Size(line))
            } else {
                match chunk_size(&line) {
                    Some(0) => Next::Continue(Chunked::Trailers { line: 0, total: 0 }),
                    Some(size) => Next::Continue(Chunked::Data(size)),
                    None => Next::Pass(Passthrough::BadFraming),
                }
            };
            (next, take)
        }
        Chunked::DataEnd(cr) => {
            let next = match (rest[0], cr) {
                (b'\r', false) => Next::Continue(Chunked::DataEnd(true)),
                (b'\n', _) => Next::Continue(Chunked::Size(Vec::new())),
                _ => Next::Pass(Passthrough::BadFraming),
            };
            (next, 1)
        }
        Chunked::Trailers { line, total } => {
            let next = match rest[0] {
                b'\n' if line == 0 => Next::End,
                b'\n' => Next::Continue(Chunked::Trailers { line: 0, total }),
                b'\r' => Next::Continue(Chunked::Trailers { line, total }),
                _ if total >= limit => Next::Pass(Passthrough::HeadTooLarge),
                _ => Next::Continue(Chunked::Trailers {
                    line: line + 1,
                    total: total + 1,
                }),
            };
            (next, 1)
        }
    }
}

/// The size on a chunk line (`1a;ext=x\r\n`, or ending in a bare LF).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let mut owned;
    let line = if line.ends_with(b"\r\n") {
        line
    } else {
        owned = line[..line.len() - 1].to_vec();
        owned.extend_from_slice(b"\r\n");
        &owned
    };
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((_, size))) => Some(size),
        _ => None,
    }
}
