//! The `file` transport: each message becomes `<outbox id>.eml` in the mail directory, written to a
//! temporary file, synced and renamed, so a reader never sees half a message and a retry of the
//! same message overwrites rather than duplicates it.

use std::path::PathBuf;

use super::{SendError, SendFuture, Transport};

pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    pub fn new(dir: PathBuf) -> anyhow::Result<Self> {
        crate::auth::keys::ensure_private_dir(&dir)?;
        Ok(Self { dir })
    }
}

impl Transport for FileTransport {
    fn name(&self) -> &'static str {
        "file"
    }

    fn send<'a>(&'a self, id: &'a str, message: &'a lettre::Message) -> SendFuture<'a> {
        Box::pin(async move {
            if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(SendError::permanent("invalid message id"));
            }
            let bytes = message.formatted();
            let tmp = self.dir.join(format!(".{id}.eml.tmp"));
            let target = self.dir.join(format!("{id}.eml"));
            let write = async {
                tokio::fs::write(&tmp, &bytes).await?;
                tokio::fs::File::open(&tmp).await?.sync_all().await?;
                tokio::fs::rename(&tmp, &target).await
            };
            write.await.map_err(|e| {
                SendError::transient(format!("cannot write to the mail directory: {}", e.kind()))
            })
        })
    }
}
