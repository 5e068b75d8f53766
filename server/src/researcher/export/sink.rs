//! Where exported bytes go, chunk by chunk.

use std::io::{self, Write};

use axum::body::Bytes;

use crate::researcher::ResearcherError;

/// Where exported bytes go: a file (or any writer), or a channel feeding an HTTP response.
pub enum Sink {
    Writer(Box<dyn Write + Send>),
    Channel(tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>),
}

impl Sink {
    pub(super) async fn send(&mut self, chunk: Vec<u8>) -> Result<(), ResearcherError> {
        if chunk.is_empty() {
            return Ok(());
        }
        match self {
            Sink::Writer(writer) => writer.write_all(&chunk)?,
            Sink::Channel(sender) => sender.send(Ok(Bytes::from(chunk))).await.map_err(|_| {
                ResearcherError::Io(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the download was cancelled",
                ))
            })?,
        }
        Ok(())
    }

    pub(super) fn finish(&mut self) -> Result<(), ResearcherError> {
        if let Sink::Writer(writer) = self {
            writer.flush()?;
        }
        Ok(())
    }
}
