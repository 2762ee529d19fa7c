//! Decompression and hashing on one thread, the consumer (the layer unpacker) on another: a
//! pull's CPU work (inflate, SHA-256 of the uncompressed stream) overlaps the unpacker's file
//! writes. Chunks go through a bounded channel, so memory stays a few MiB.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver};

use crate::digest::{Digest, HashingReader};

/// Bytes per chunk handed to the consumer.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks in flight between the threads.
const CHUNKS_IN_FLIGHT: usize = 8;

/// Reads `decoded` on a second thread, hashing it, while `consume` reads the same bytes here.
/// Returns what `consume` returned and the digest and size of the whole of `decoded` (read to
/// its end even when `consume` stopped early).
pub(super) fn pipelined<T>(
    decoded: &mut (dyn Read + Send),
    consume: impl FnOnce(&mut dyn Read) -> T,
) -> (T, io::Result<(Digest, u64)>) {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut reader = HashingReader::new(decoded);
            loop {
                let mut buf = vec![0u8; CHUNK_BYTES];
                let n = match read_some(&mut reader, &mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                };
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                if tx.send(Ok(buf)).is_err() {
                    // The consumer is done: hash the rest without handing it over.
                    break;
                }
            }
            drop(tx);
            reader.finish_draining()
        });
        let mut chan = ChannelReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        };
        let out = consume(&mut chan);
        drop(chan);
        let hashed = producer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("decompression thread panicked")));
        (out, hashed)
    })
}

/// Fills `buf` as far as the source gives without blocking on a short read twice.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_sees_every_byte_and_the_hash_covers_the_rest() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut src = &data[..];
        let (seen, hashed) = pipelined(&mut src, |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| v)
        });
        assert_eq!(seen.unwrap(), data);
        assert_eq!(
            hashed.unwrap(),
            (Digest::of_bytes(&data), data.len() as u64)
        );

        // A consumer that stops early: the hash still covers everything.
        let mut src = &data[..];
        let (_, hashed) = pipelined(&mut src, |r| {
            let mut head = [0u8; 10];
            r.read_exact(&mut head)
        });
        assert_eq!(hashed.unwrap().0, Digest::of_bytes(&data));
    }

    #[test]
    fn a_read_error_reaches_the_consumer() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("cut"))
            }
        }
        let (seen, hashed) = pipelined(&mut Broken, |r| r.read_to_end(&mut Vec::new()));
        assert!(seen.is_err());
        assert!(hashed.is_err());
    }
}
