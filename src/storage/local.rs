//! The embedded `file` backend: each object is one file named after its key in a private directory
//! (mode 0700, files 0600 on unix). A put writes a temporary file in the same directory, syncs it
//! and renames it over the target, so a crash or a full disk leaves either the old object or the
//! new one, never a torn file. The content type is not stored here; the database keeps it.

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{valid_key, ByteStream, Storage, StorageError, StorageFuture, CHUNK_BYTES};

/// Documents as files in one directory.
pub struct LocalStorage {
    dir: PathBuf,
}

impl LocalStorage {
    /// Uses `dir`, creating it (and its parents) if missing and making it private to this user.
    pub fn new(dir: PathBuf) -> anyhow::Result<Self> {
        create_private_dir(&dir)?;
        Ok(Self { dir })
    }

    /// The file for `key`, once the key is known to be a plain name.
    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        if !valid_key(key) {
            return Err(StorageError::Unavailable("invalid key".into()));
        }
        Ok(self.dir.join(key))
    }
}

impl Storage for LocalStorage {
    fn name(&self) -> &'static str {
        "file"
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
        _content_type: &'a str,
    ) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let target = self.path(key)?;
            let dir = self.dir.clone();
            let tmp_name = format!(".tmp-{key}-{}", uuid::Uuid::new_v4().simple());
            let bytes = bytes.to_vec();
            tokio::task::spawn_blocking(move || write_atomically(&dir, &tmp_name, &target, &bytes))
                .await
                .map_err(|_| StorageError::Unavailable("storage task failed".into()))?
                .map_err(io_error)
        })
    }

    fn open<'a>(&'a self, key: &'a str) -> StorageFuture<'a, ByteStream> {
        Box::pin(async move {
            let file = match tokio::fs::File::open(self.path(key)?).await {
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(StorageError::NotFound),
                result => result.map_err(io_error)?,
            };
            let chunks = futures_util::stream::unfold(Some(file), |file| async move {
                let mut file = file?;
                let mut buf = vec![0u8; CHUNK_BYTES];
                match file.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Bytes::from(buf)), Some(file)))
                    }
                    Err(e) => Some((Err(io_error(e)), None)),
                }
            });
            Ok(Box::pin(chunks) as ByteStream)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(key)?).await {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                result => result.map_err(io_error),
            }
        })
    }
}

/// Creates `dir` and its parents if missing; on unix, sets its mode to 0700.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the storage directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).with_context(|| {
            format!(
                "cannot make the storage directory {} private",
                dir.display()
            )
        })?;
    }
    Ok(())
}

/// Writes `bytes` to `dir/tmp_name`, syncs it, renames it onto `target` and syncs the directory.
/// The temporary file is removed if any step before the rename fails.
fn write_atomically(dir: &Path, tmp_name: &str, target: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(tmp_name);
    let written = write_new_file(&tmp, bytes).and_then(|()| fs::rename(&tmp, target));
    if written.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir);
    Ok(())
}

/// Creates `path` (which must not exist) readable only by this user, writes `bytes` and syncs.
fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the rename durable. Best effort: the object is already in place, and some filesystems
/// cannot sync a directory.
#[cfg(unix)]
fn sync_dir(dir: &Path) {
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(error.kind = %e.kind(), "could not sync the storage directory");
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

/// Maps an I/O error to a [`StorageError`]: a full disk or exhausted quota (ENOSPC, EDQUOT) is
/// [`StorageError::Full`]; anything else is reported by kind only, never with a path.
fn io_error(e: io::Error) -> StorageError {
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => StorageError::Full,
        kind => StorageError::Unavailable(kind.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::new_key;

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new() -> Self {
            Self(std::env::temp_dir().join(format!("ims-storage-test-{}", new_key())))
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn put_then_get_round_trips() {
        let dir = TestDir::new();
        let storage = LocalStorage::new(dir.0.clone()).unwrap();
        let key = new_key();
        let bytes: Vec<u8> = (0..=255).cycle().take(100_000).collect();
        storage.put(&key, &bytes, "application/pdf").await.unwrap();
        assert_eq!(storage.get(&key).await.unwrap(), bytes);
        storage.put(&key, b"", "text/plain").await.unwrap();
        assert_eq!(storage.get(&key).await.unwrap(), b"");
    }

    #[tokio::test]
    async fn new_creates_missing_parent_directories() {
        let dir = TestDir::new();
        let nested = dir.0.join("a").join("b");
        let storage = LocalStorage::new(nested.clone()).unwrap();
        storage.put("k", b"x", "text/plain").await.unwrap();
        assert_eq!(fs::read(nested.join("k")).unwrap(), b"x");
        assert!(
            LocalStorage::new(nested).is_ok(),
            "an existing directory is fine"
        );
    }

    #[tokio::test]
    async fn overwrite_replaces_the_object_and_leaves_no_temporary_files() {
        let dir = TestDir::new();
        let storage = LocalStorage::new(dir.0.clone()).unwrap();
        let key = new_key();
        storage.put(&key, b"first", "text/plain").await.unwrap();
        storage.put(&key, b"second", "text/plain").await.unwrap();
        assert_eq!(storage.get(&key).await.unwrap(), b"second");
        assert_eq!(entries(&dir.0), vec![key]);
    }

    #[tokio::test]
    async fn failed_put_leaves_no_temporary_file() {
        let dir = TestDir::new();
        let storage = LocalStorage::new(dir.0.clone()).unwrap();
        // A directory where the object should go makes the rename fail.
        fs::create_dir(dir.0.join("blocked")).unwrap();
        fs::write(dir.0.join("blocked").join("inside"), b"x").unwrap();
        let err = storage.put("blocked", b"data", "text/plain").await;
        assert!(matches!(err, Err(StorageError::Unavailable(_))), "{err:?}");
        assert_eq!(entries(&dir.0), vec!["blocked".to_string()]);
    }

    #[tokio::test]
    async fn invalid_keys_are_refused_everywhere() {
        let dir = TestDir::new();
        let storage = LocalStorage::new(dir.0.join("docs")).unwrap();
        let too_long = "a".repeat(65);
        for key in ["../x", "A", "", too_long.as_str(), ".", "a/b"] {
            let put = storage.put(key, b"x", "text/plain").await;
            assert!(matches!(put, Err(StorageError::Unavailable(_))), "{key:?}");
            let get = storage.get(key).await;
            assert!(matches!(get, Err(StorageError::Unavailable(_))), "{key:?}");
            let delete = storage.delete(key).await;
            assert!(
                matches!(delete, Err(StorageError::Unavailable(_))),
                "{key:?}"
            );
        }
        assert!(!dir.0.join("x").exists());
        assert!(entries(&dir.0.join("docs")).is_empty());
    }

    #[tokio::test]
    async fn missing_objects_are_not_found_and_delete_is_idempotent() {
        let dir = TestDir::new();
        let storage = LocalStorage::new(dir.0.clone()).unwrap();
        let key = new_key();
        assert!(matches!(
            storage.get(&key).await,
            Err(StorageError::NotFound)
        ));
        storage.delete(&key).await.unwrap();
        storage.put(&key, b"x", "text/plain").await.unwrap();
        storage.delete(&key).await.unwrap();
        assert!(matches!(
            storage.get(&key).await,
            Err(StorageError::NotFound)
        ));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn directory_is_0700_and_objects_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TestDir::new();
        fs::create_dir(&dir.0).unwrap();
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o755)).unwrap();
        let storage = LocalStorage::new(dir.0.clone()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.0), 0o700);
        storage.put("k", b"x", "text/plain").await.unwrap();
        assert_eq!(mode(&dir.0.join("k")), 0o600);
    }

    #[test]
    fn full_disk_and_quota_errors_map_to_full_without_paths() {
        #[cfg(target_os = "linux")]
        for errno in [28, 122] {
            let mapped = io_error(io::Error::from_raw_os_error(errno));
            assert!(matches!(mapped, StorageError::Full), "errno {errno}");
        }
        assert!(matches!(
            io_error(ErrorKind::StorageFull.into()),
            StorageError::Full
        ));
        let other = io_error(io::Error::new(
            ErrorKind::PermissionDenied,
            "/secret/path/x",
        ));
        let text = other.to_string();
        assert!(text.contains("permission denied"), "{text}");
        assert!(!text.contains("/secret"), "{text}");
    }
}
