//! Documents on Amazon S3 (`IMS_STORAGE_URL=s3://bucket/prefix`): each object under the prefix
//! by its generated key, written with SSE-KMS (the bucket's KMS key). No presigned URLs: downloads
//! go through IMS, which checks the reader's access, streams the object as S3 sends it and checks
//! the checksum on the way.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;

use super::{valid_key, Storage, StorageError, StorageFuture};

pub struct S3Storage {
    client: Client,
    bucket: String,
    prefix: String,
}

/// `bucket/prefix` (the part after `s3://`) as (bucket, prefix ending in `/` or empty).
pub fn parse_location(rest: &str) -> anyhow::Result<(String, String)> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !bucket_ok {
        anyhow::bail!("IMS_STORAGE_URL must be s3://bucket/prefix with a valid bucket name");
    }
    let prefix = prefix.trim_matches('/');
    Ok((
        bucket.to_owned(),
        if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        },
    ))
}

impl S3Storage {
    pub fn new(sdk: &aws_config::SdkConfig, url: &str, path_style: bool) -> anyhow::Result<Self> {
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        let (bucket, prefix) = parse_location(rest)?;
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build();
        Ok(Self {
            client: Client::from_conf(conf),
            bucket,
            prefix,
        })
    }

    fn object(&self, key: &str) -> Result<String, StorageError> {
        if !valid_key(key) {
            return Err(StorageError::Unavailable("invalid key".into()));
        }
        Ok(format!("{}{key}", self.prefix))
    }
}

fn unavailable<E: std::fmt::Display>(e: E) -> StorageError {
    StorageError::Unavailable(e.to_string().chars().take(200).collect())
}

impl Storage for S3Storage {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
        content_type: &'a str,
    ) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let object = self.object(key)?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(object)
                .content_type(content_type)
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .body(ByteStream::from(bytes.to_vec()))
                .send()
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn open<'a>(&'a self, key: &'a str) -> StorageFuture<'a, super::ByteStream> {
        Box::pin(async move {
            let object = self.object(key)?;
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(object)
                .send()
                .await
                .map_err(|e| match e.as_service_error() {
                    Some(s) if s.is_no_such_key() => StorageError::NotFound,
                    _ => unavailable(e),
                })?;
            let chunks = futures_util::stream::unfold(Some(out.body), |body| async move {
                let mut body = body?;
                match body.next().await? {
                    Ok(chunk) => Some((Ok(chunk), Some(body))),
                    Err(e) => Some((Err(unavailable(e)), None)),
                }
            });
            Ok(Box::pin(chunks) as super::ByteStream)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let object = self.object(key)?;
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(object)
                .send()
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_into_bucket_and_prefix() {
        assert_eq!(
            parse_location("docs-bucket/ims/prod").unwrap(),
            ("docs-bucket".into(), "ims/prod/".into())
        );
        assert_eq!(
            parse_location("docs-bucket").unwrap(),
            ("docs-bucket".into(), String::new())
        );
        assert!(parse_location("Bad_Bucket/x").is_err());
        assert!(parse_location("").is_err());
    }
}
