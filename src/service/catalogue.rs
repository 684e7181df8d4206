//! The firmware/OS catalogues' storage rules: an uploaded file is streamed to
//! `<data dir>/firmware/` or `<data dir>/os/` and checksummed on the way (never held in
//! memory), bounded by `MOJO_MAX_UPLOAD`; a partial or orphaned file is removed; the row is
//! written only once the file is in place, and deleting a row deletes its file.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::ctx::Ctx;
use crate::db::catalogue::{self as db, CatalogueWrite, Kind, StoredFile};
use crate::db::{baselines, DbError};
use crate::media::{self, MediaError, ServedFile};

/// How messages name an entry of a catalogue.
fn label(kind: Kind) -> &'static str {
    match kind {
        Kind::Firmware => "Firmware",
        Kind::Os => "OS image",
    }
}

/// The message of a create without a file.
pub const NO_FILE: &str = "No file was submitted.";
/// The message of an empty upload (DRF's text).
pub const EMPTY_FILE: &str = "The submitted file is empty.";

/// Why a catalogue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The upload is bigger than `MOJO_MAX_UPLOAD` (the partial file is gone).
    #[error("Upload exceeds the limit of {limit} bytes (MOJO_MAX_UPLOAD).")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// An input is missing or wrong.
    #[error("{field}: {msg}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The message.
        msg: &'static str,
    },
    /// No such row.
    #[error("no such catalogue item")]
    NotFound,
    /// The upload's content is already in the catalogue (the message names the entry).
    #[error("{0}")]
    Duplicate(String),
    /// The entry is in use and cannot be deleted (the message names the user).
    #[error("{0}")]
    InUse(String),
    /// The upload stream failed (the client's body could not be read).
    #[error("{0}")]
    Read(#[source] std::io::Error),
    /// The file could not be stored.
    #[error("upload storage: {0}")]
    Io(#[source] std::io::Error),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Result alias of this module.
pub type CatalogueResult<T> = Result<T, CatalogueError>;

/// Sub-directory of the data dir holding a catalogue's files.
fn dir_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Firmware => "firmware",
        Kind::Os => "os",
    }
}

/// The directory holding a catalogue's files.
pub fn upload_dir(ctx: &Ctx, kind: Kind) -> PathBuf {
    ctx.config.data_dir.join(dir_name(kind))
}

/// Removes a partly or wholly written upload unless it was kept.
struct PendingFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A received upload, not yet in the catalogue: dropping it removes the file.
pub struct Received {
    pending: PendingFile,
    stored_name: String,
    file_name: String,
    size: u64,
    sha256: String,
}

/// Streams `chunks` to a temporary file in the catalogue's directory while hashing it.
///
/// Fails with [`CatalogueError::TooLarge`] as soon as the size passes `MOJO_MAX_UPLOAD`, and
/// with [`CatalogueError::Read`] when the stream fails; either way the partial file is removed.
pub async fn receive<S>(
    ctx: &Ctx,
    kind: Kind,
    file_name: &str,
    chunks: S,
) -> CatalogueResult<Received>
where
    S: Stream<Item = std::io::Result<Bytes>>,
{
    let dir = upload_dir(ctx, kind);
    let limit = ctx.config.max_upload;
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(CatalogueError::Io)?;
    let stored_name = hex::encode(rand::random::<[u8; 16]>());
    let pending = PendingFile {
        path: dir.join(format!(".upload-{stored_name}")),
        keep: false,
    };
    let mut file = tokio::fs::File::create(&pending.path)
        .await
        .map_err(CatalogueError::Io)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.try_next().await.map_err(CatalogueError::Read)? {
        size += chunk.len() as u64;
        if size > limit {
            return Err(CatalogueError::TooLarge { limit });
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(CatalogueError::Io)?;
    }
    file.flush().await.map_err(CatalogueError::Io)?;
    file.sync_all().await.map_err(CatalogueError::Io)?;
    Ok(Received {
        pending,
        stored_name,
        file_name: file_name.to_string(),
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Moves a received upload into the catalogue and writes its row with the metadata `cols`;
/// returns the new id. Without a file: [`CatalogueError::Invalid`] (`file`, [`NO_FILE`]).
/// If the row cannot be written the file is removed.
pub async fn create(
    ctx: &Ctx,
    kind: Kind,
    received: Option<Received>,
    cols: CatalogueWrite,
    user: &str,
) -> CatalogueResult<i64> {
    let Some(mut received) = received else {
        return Err(CatalogueError::Invalid {
            field: "file",
            msg: NO_FILE,
        });
    };
    if received.size == 0 {
        return Err(CatalogueError::Invalid {
            field: "file",
            msg: EMPTY_FILE,
        });
    }
    if let Some(existing) = db::id_by_sha256(&ctx.db, kind, &received.sha256).await? {
        return Err(CatalogueError::Duplicate(format!(
            "{} {existing} has the same content (sha256 {}).",
            label(kind),
            received.sha256
        )));
    }
    let final_path = upload_dir(ctx, kind).join(&received.stored_name);
    tokio::fs::rename(&received.pending.path, &final_path)
        .await
        .map_err(CatalogueError::Io)?;
    received.pending.path = final_path;
    let file = StoredFile {
        size: i64::try_from(received.size).unwrap_or(i64::MAX),
        sha256: received.sha256.clone(),
        stored_name: received.stored_name.clone(),
        file_name: received.file_name.clone(),
    };
    let mut tx = ctx.db.begin().await?;
    let id = db::insert(&mut tx, kind, &file, cols).await?;
    tx.commit().await?;
    received.pending.keep = true;
    tracing::info!(table = kind.table(), id, size = received.size, user = %user, "upload stored");
    Ok(id)
}

/// Changes the metadata columns that carry a value.
pub async fn update(ctx: &Ctx, kind: Kind, id: i64, cols: CatalogueWrite) -> CatalogueResult<()> {
    let mut tx = ctx.db.begin().await?;
    db::update(&mut tx, kind, id, cols).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a row and then its file ([`CatalogueError::NotFound`] without such a row). A file
/// that cannot be removed is logged, not reported.
pub async fn delete(ctx: &Ctx, kind: Kind, id: i64, user: &str) -> CatalogueResult<()> {
    let mut tx = ctx.db.begin().await?;
    let stored = db::stored_name(&mut tx, kind, id)
        .await?
        .ok_or(CatalogueError::NotFound)?;
    if kind == Kind::Firmware {
        if let Some((baseline, name)) = baselines::first_using(&mut tx, id).await? {
            return Err(CatalogueError::InUse(format!(
                "Firmware {id} is used by firmware baseline {baseline} ({name})."
            )));
        }
    }
    db::delete(&mut tx, kind, id).await?;
    tx.commit().await?;
    remove_stored(&upload_dir(ctx, kind), &stored).await;
    tracing::info!(table = kind.table(), id, user = %user, "catalogue item deleted");
    Ok(())
}

async fn remove_stored(dir: &Path, stored: &str) {
    let path = dir.join(stored);
    if let Err(e) = tokio::fs::remove_file(&path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "could not remove an uploaded file");
        }
    }
}

/// The file a media URL names, when its signature is right and unexpired and the entry
/// exists; anything else is [`MediaError::Refused`] (nothing is served).
pub async fn open_signed(
    ctx: &Ctx,
    kind: &str,
    id: &str,
    expires: &str,
    signature: &str,
) -> Result<ServedFile, MediaError> {
    let kind = media::kind_from_segment(kind).ok_or(MediaError::Refused)?;
    let id: i64 = id.parse().map_err(|_| MediaError::Refused)?;
    let expires: u64 = expires.parse().map_err(|_| MediaError::Refused)?;
    if !ctx.media.verify(kind, id, expires, signature) {
        return Err(MediaError::Refused);
    }
    stored(ctx, kind, id).await?.ok_or(MediaError::Refused)
}

/// The stored file of a catalogue entry, None without such an entry.
pub async fn stored(ctx: &Ctx, kind: Kind, id: i64) -> Result<Option<ServedFile>, MediaError> {
    let Some(file) = db::media_file(&ctx.db, kind, id).await? else {
        return Ok(None);
    };
    let dir = upload_dir(ctx, kind);
    Ok(Some(ServedFile {
        path: dir.join(&file.stored_name),
        file,
    }))
}
