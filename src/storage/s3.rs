//! The S3 store: any S3-compatible server (AWS, s3s-fs, garage, MinIO).
//! Links are SigV4 presigned GETs, so the server itself checks them: a
//! tampered, expired or deleted link fails there, not in our code.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, ProvideCredentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use chrono::{DateTime, Utc};

use super::{
    ObjectInfo, PutOptions, SignedLink, Store, StoreError, check_bucket, check_key, content_disposition, local,
};

/// Objects at least this large are uploaded in parts (S3's smallest part
/// is 5 MiB, so the threshold is also the part size).
pub const DEFAULT_MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
const MIN_PART: usize = 5 * 1024 * 1024;

/// Where the server is and who we are to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `None`: AWS itself, by region.
    pub endpoint: Option<String>,
    /// `None`: the AWS region chain (`AWS_REGION`, the profile, and on AWS
    /// the instance metadata), else `us-east-1`.
    pub region: Option<String>,
    /// Bucket in the path (`host/bucket/key`), as most self-hosted servers want.
    pub path_style: bool,
    /// `None`: the AWS credential chain ([`S3Config::credentials`]).
    pub keys: Option<StaticKeys>,
    pub multipart_threshold: usize,
}

/// Keys given in the settings; they win over every other source.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticKeys {
    // Never print the secret (settings are logged at start).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl S3Config {
    /// Where the credentials come from, for the start-up log.
    pub fn credentials(&self) -> &'static str {
        match self.keys {
            Some(_) => "static keys from the settings",
            None => "the AWS chain: environment, profile files, web identity, ECS container, EC2 instance metadata",
        }
    }

    /// The SDK's shared configuration: the static keys if set, else
    /// aws-config's default credential chain (resolved on first use and
    /// refreshed before expiry); the region likewise. Against a self-hosted
    /// endpoint the region chain skips the instance metadata (it is not on
    /// AWS, and the lookup would stall start-up).
    async fn sdk_config(&self) -> SdkConfig {
        let region = match (&self.region, &self.endpoint) {
            (Some(region), _) => RegionProviderChain::first_try(Region::new(region.clone())),
            (None, None) => RegionProviderChain::default_provider().or_else(Region::new(DEFAULT_REGION)),
            (None, Some(_)) => RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                .or_else(ProfileFileRegionProvider::new())
                .or_else(Region::new(DEFAULT_REGION)),
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
        if let Some(keys) = &self.keys {
            loader = loader.credentials_provider(Credentials::new(
                &keys.access_key,
                &keys.secret_key,
                keys.session_token.clone(),
                None,
                "rendition-settings",
            ));
        }
        loader.load().await
    }
}

const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    /// The chain the client signs with, asked once at start-up.
    credentials: Option<SharedCredentialsProvider>,
    bucket: String,
    multipart_threshold: usize,
}

impl S3Store {
    /// A store on `bucket`, with credentials and region resolved as
    /// [`S3Config`] says. More buckets share the client: [`Store::bucket`].
    pub async fn connect(config: &S3Config, bucket: &str) -> Result<S3Store, StoreError> {
        check_bucket(bucket)?;
        let sdk = config.sdk_config().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(config.path_style)
            // Every rendition is hashed once already (its sha256 is in its
            // metadata and the result); a CRC per request on top costs CPU on
            // every job. The SDK still adds one where an operation requires it.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
            credentials: sdk.credentials_provider(),
            bucket: bucket.to_string(),
            multipart_threshold: config.multipart_threshold.max(MIN_PART),
        })
    }

    /// Asks the credential chain once (start-up), so that a worker with no
    /// usable credentials says so plainly instead of failing every job.
    pub async fn check_credentials(&self) -> Result<(), StoreError> {
        let Some(provider) = &self.credentials else {
            return Err(StoreError::failed("no S3 credentials provider is configured"));
        };
        match provider.provide_credentials().await {
            Ok(_) => Ok(()),
            Err(e) => Err(StoreError::io(
                format!("no S3 credentials: {}", DisplayErrorContext(&e)),
                e,
            )),
        }
    }

    pub fn bucket_name(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists (tests and first starts).
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        if self.client.head_bucket().bucket(&self.bucket).send().await.is_ok() {
            return Ok(());
        }
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            // Another worker made it first.
            Err(e) if self.client.head_bucket().bucket(&self.bucket).send().await.is_ok() => {
                let _ = e;
                Ok(())
            }
            Err(e) => Err(sdk(e)),
        }
    }

    /// One GET: what `head` would say (ETag, metadata) and the body, unread.
    async fn get_object(&self, key: &str) -> Result<(ObjectInfo, ByteStream), StoreError> {
        check_key(key)?;
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if status_of(&e) == Some(404) => return Err(StoreError::NotFound(key.to_string())),
            Err(e) => return Err(sdk(e)),
        };
        let info = ObjectInfo {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            identity: out.e_tag().unwrap_or_default().to_string(),
            meta: user_metadata(out.metadata()),
        };
        Ok((info, out.body))
    }

    async fn put_in_parts(&self, key: &str, body: Body<'_>, options: PutOptions) -> Result<(), StoreError> {
        let mut create = self.client.create_multipart_upload().bucket(&self.bucket).key(key);
        create = create.content_type(options.content_type);
        if let Some(name) = &options.filename {
            create = create.content_disposition(content_disposition(name));
        }
        for (k, v) in options.meta {
            create = create.metadata(k, v);
        }
        let upload = create.send().await.map_err(sdk)?;
        let id = upload.upload_id().unwrap_or_default().to_string();
        match self.upload_parts(key, &id, &body).await {
            Ok(parts) => {
                let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
                let complete = self.client.complete_multipart_upload().bucket(&self.bucket).key(key);
                complete
                    .upload_id(&id)
                    .multipart_upload(done)
                    .send()
                    .await
                    .map_err(sdk)?;
                Ok(())
            }
            Err(e) => {
                // Leave no orphaned parts behind a failed upload.
                let abort = self.client.abort_multipart_upload().bucket(&self.bucket).key(key);
                let _ = abort.upload_id(&id).send().await;
                Err(e)
            }
        }
    }

    /// Parts of the multipart size (larger when S3's 10 000 parts would
    /// not hold the object), one in memory at a time.
    async fn upload_parts(&self, key: &str, id: &str, body: &Body<'_>) -> Result<Vec<CompletedPart>, StoreError> {
        let part_size = part_size(self.multipart_threshold as u64, body.len());
        let mut parts = Vec::new();
        for (i, offset) in (0..body.len()).step_by(part_size as usize).enumerate() {
            let number = i as i32 + 1;
            let length = part_size.min(body.len() - offset);
            let part = self.client.upload_part().bucket(&self.bucket).key(key).upload_id(id);
            let out = part
                .part_number(number)
                .body(body.part(offset, length).await?)
                .send()
                .await
                .map_err(sdk)?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
        }
        Ok(parts)
    }

    async fn put_body(&self, key: &str, body: Body<'_>, options: PutOptions) -> Result<(), StoreError> {
        check_key(key)?;
        if body.len() >= self.multipart_threshold as u64 {
            return self.put_in_parts(key, body, options).await;
        }
        let mut put = self.client.put_object().bucket(&self.bucket).key(key);
        put = put.content_type(options.content_type);
        if let Some(name) = &options.filename {
            put = put.content_disposition(content_disposition(name));
        }
        for (k, v) in options.meta {
            put = put.metadata(k, v);
        }
        let length = body.len();
        put.body(body.part(0, length).await?).send().await.map_err(sdk)?;
        Ok(())
    }
}

/// S3's limit on the parts of one upload.
const MAX_PARTS: u64 = 10_000;

/// Parts of `threshold` bytes, or larger when `len` would need more than
/// S3's 10 000.
fn part_size(threshold: u64, len: u64) -> u64 {
    threshold.max(len.div_ceil(MAX_PARTS))
}

/// What an object is written from: bytes in memory, or a file read a part
/// at a time.
enum Body<'a> {
    Bytes(Vec<u8>),
    File { path: &'a Path, len: u64 },
}

impl Body<'_> {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    async fn part(&self, offset: u64, length: u64) -> Result<ByteStream, StoreError> {
        match self {
            Body::Bytes(bytes) => Ok(ByteStream::from(
                bytes[offset as usize..(offset + length) as usize].to_vec(),
            )),
            Body::File { path, .. } => ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(length))
                .build()
                .await
                .map_err(|e| StoreError::io(format!("local file {}: {e}", path.display()), e)),
        }
    }
}

/// Any failure talking to the server is worth a retry; "not found" is
/// decided by the callers, who know which answer means it.
fn sdk<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::io(format!("s3: {}", DisplayErrorContext(&e)), e)
}

/// User metadata as stored (S3 lower-cases the names on the way in).
fn user_metadata(meta: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    meta.map(|m| m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect())
        .unwrap_or_default()
}

fn status_of<E, R: HasStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(|r| r.status_code())
}

/// The HTTP status of a raw response, whatever the SDK's type for it.
trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// A GET's body, whole.
async fn collect(body: ByteStream) -> Result<Vec<u8>, StoreError> {
    let body = body
        .collect()
        .await
        .map_err(|e| StoreError::io(format!("s3 body: {e}"), e))?;
    Ok(body.into_bytes().to_vec())
}

/// A GET's body into the file at `to`, a chunk at a time.
async fn write_body(mut body: ByteStream, to: &Path) -> Result<(), StoreError> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(to).await.map_err(|e| local(to, e))?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StoreError::io(format!("s3 body: {e}"), e))?;
        file.write_all(&chunk).await.map_err(|e| local(to, e))?;
    }
    file.flush().await.map_err(|e| local(to, e))
}

impl Store for S3Store {
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.read(key).await?.1)
    }

    /// One GET: refused by its Content-Length, and read a chunk at a time
    /// up to `max + 1` bytes whatever the header said.
    async fn get_at_most(&self, key: &str, max: u64) -> Result<Vec<u8>, StoreError> {
        let (info, mut body) = self.get_object(key).await?;
        if info.size > max {
            return Err(super::too_big(key, max));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StoreError::io(format!("s3 body: {e}"), e))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(super::too_big(key, max));
            }
        }
        Ok(bytes)
    }

    /// One GET: the body, and the ETag and metadata from its headers.
    async fn read(&self, key: &str) -> Result<(ObjectInfo, Vec<u8>), StoreError> {
        let (info, body) = self.get_object(key).await?;
        Ok((info, collect(body).await?))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        check_key(key)?;
        let out = match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if status_of(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(sdk(e)),
        };
        Ok(Some(ObjectInfo {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            identity: out.e_tag().unwrap_or_default().to_string(),
            meta: user_metadata(out.metadata()),
        }))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, options: PutOptions) -> Result<(), StoreError> {
        self.put_body(key, Body::Bytes(bytes), options).await
    }

    /// The GET's body written to the file as it arrives.
    async fn download(&self, key: &str, to: &Path) -> Result<ObjectInfo, StoreError> {
        let (info, body) = self.get_object(key).await?;
        write_body(body, to).await?;
        Ok(info)
    }

    async fn read_or_download(
        &self,
        key: &str,
        max: u64,
        to: &Path,
    ) -> Result<(ObjectInfo, Option<Vec<u8>>), StoreError> {
        let (info, body) = self.get_object(key).await?;
        if info.size < max {
            return Ok((info, Some(collect(body).await?)));
        }
        write_body(body, to).await?;
        Ok((info, None))
    }

    async fn upload(&self, key: &str, from: &Path, options: PutOptions) -> Result<(), StoreError> {
        let len = tokio::fs::metadata(from).await.map_err(|e| local(from, e))?.len();
        self.put_body(key, Body::File { path: from, len }, options).await
    }

    async fn sign(&self, key: &str, expires_at: DateTime<Utc>) -> Result<SignedLink, StoreError> {
        check_key(key)?;
        let now = Utc::now();
        let ttl = (expires_at - now).to_std().unwrap_or(Duration::from_secs(1));
        let config = PresigningConfig::builder()
            .start_time(SystemTime::from(now))
            .expires_in(ttl.max(Duration::from_secs(1)))
            .build()
            .map_err(|e| StoreError::io(format!("presign: {e}"), e))?;
        let get = self.client.get_object().bucket(&self.bucket).key(key);
        let request = get.presigned(config).await.map_err(sdk)?;
        Ok(SignedLink {
            url: request.uri().to_string(),
            expires_at,
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let list = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix);
            let out = list.set_continuation_token(token.take()).send().await.map_err(sdk)?;
            keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            match out.next_continuation_token() {
                Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(sdk(e)),
        }
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    fn bucket(&self, name: &str) -> Result<S3Store, StoreError> {
        check_bucket(name)?;
        Ok(S3Store {
            bucket: name.to_string(),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_s3_s_ten_thousand() {
        let mib = 1 << 20;
        assert_eq!(part_size(16 * mib, 6 * mib), 16 * mib);
        for len in [16 * mib * MAX_PARTS, 16 * mib * MAX_PARTS + 1, 1 << 40, 5 << 40] {
            let size = part_size(16 * mib, len);
            assert!(len.div_ceil(size) <= MAX_PARTS, "{len} bytes in parts of {size}");
            assert!(size >= 16 * mib);
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let config = S3Config {
            endpoint: None,
            region: None,
            path_style: true,
            keys: Some(StaticKeys {
                access_key: "AK".into(),
                secret_key: "very-secret".into(),
                session_token: Some("token-secret".into()),
            }),
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
        };
        let text = format!("{config:?}");
        assert!(
            text.contains("AK") && !text.contains("very-secret") && !text.contains("token-secret"),
            "{text}"
        );
    }
}
