//! The AWS Secrets Manager store behind `IMS_SECRETS_ID`: one secret (name or ARN, encrypted with
//! the customer-managed KMS key) whose `SecretString` is a JSON object of `NAME: value` pairs. A
//! value is a string, or a JSON object or array (a key set kept as structured JSON), which is handed
//! on as its JSON text. Errors name the secret and the key, never a value: a missing secret, one
//! the task role may not read or decrypt, and one that is not such an object are all clear start
//! errors.

use std::collections::HashMap;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};

use super::SecretError;

/// A client for the one secret IMS reads.
#[derive(Clone)]
pub struct Store {
    client: Client,
    id: String,
}

/// One read of the secret: its version and its values by name.
pub struct Snapshot {
    pub id: String,
    pub version: Option<String>,
    values: HashMap<String, SecretString>,
}

impl Snapshot {
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.values.get(name)
    }

    /// True when `name` is here with exactly `value`.
    pub fn holds(&self, name: &str, value: &SecretString) -> bool {
        self.get(name)
            .is_some_and(|v| v.expose_secret() == value.expose_secret())
    }
}

impl Store {
    pub fn new(sdk: &aws_config::SdkConfig, id: &str) -> Self {
        Self {
            client: Client::new(sdk),
            id: id.to_owned(),
        }
    }

    /// A store configured from an environment snapshot (before the rest of the configuration is
    /// parsed, because every secret may come from here).
    pub async fn from_env(env: &HashMap<String, String>, id: &str) -> Result<Self, SecretError> {
        let endpoint = match env.get("IMS_AWS_ENDPOINT_URL").map(|v| v.trim()) {
            Some(raw) if !raw.is_empty() => {
                Some(url::Url::parse(raw).map_err(|_| SecretError::Store {
                    id: id.into(),
                    reason: "IMS_AWS_ENDPOINT_URL is not a URL".into(),
                })?)
            }
            _ => None,
        };
        let sdk = crate::aws::sdk_config_for(endpoint.as_ref())
            .await
            .map_err(|e| SecretError::Store {
                id: id.into(),
                reason: e.to_string(),
            })?;
        Ok(Self::new(&sdk, id))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Reads the current version of the secret.
    pub async fn fetch(&self) -> Result<Snapshot, SecretError> {
        let id = self.id.clone();
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.id)
            .send()
            .await
            .map_err(|e| {
                let reason = match &e {
                    SdkError::ServiceError(s) if s.err().is_resource_not_found_exception() => {
                        "it does not exist (check the name or ARN and the region)".to_owned()
                    }
                    SdkError::ServiceError(s) => match s.err().code() {
                        Some("DecryptionFailure") => {
                            "it cannot be decrypted: the task role needs kms:Decrypt on the secret's key".to_owned()
                        }
                        Some("AccessDeniedException") => {
                            "access denied: the task role needs secretsmanager:GetSecretValue on it".to_owned()
                        }
                        Some(code) => format!("Secrets Manager answered {code}"),
                        None => "Secrets Manager refused the request".to_owned(),
                    },
                    SdkError::TimeoutError(_) => "Secrets Manager timed out".to_owned(),
                    _ => "cannot reach Secrets Manager".to_owned(),
                };
                SecretError::Store { id: id.clone(), reason }
            })?;
        let text = out.secret_string().ok_or_else(|| SecretError::Store {
            id: id.clone(),
            reason:
                "it has no SecretString (a binary secret); store a JSON object of NAME: value pairs"
                    .into(),
        })?;
        Ok(Snapshot {
            values: parse(&id, text)?,
            version: out.version_id().map(str::to_owned),
            id,
        })
    }
}

/// Parses the secret's JSON object; the error names the offending key, never a value.
fn parse(id: &str, text: &str) -> Result<HashMap<String, SecretString>, SecretError> {
    let malformed = |reason: String| SecretError::Store {
        id: id.into(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| {
        malformed("it is not JSON; store a JSON object of NAME: value pairs".into())
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(malformed(
            "it is not a JSON object of NAME: value pairs".into(),
        ));
    };
    map.into_iter()
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(s) => s,
                v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_)) => v.to_string(),
                _ => {
                    return Err(malformed(format!(
                        "the value of {name} must be a string (or a JSON object)"
                    )))
                }
            };
            Ok((name, SecretString::from(text)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_strings_or_structured_json_and_errors_hide_values() {
        let parsed = parse(
            "ims/prod",
            r#"{"OTP_PEPPER":"canary-pepper","JWT_SIGNING_KEYS":{"keys":[]}}"#,
        )
        .unwrap();
        assert_eq!(parsed["OTP_PEPPER"].expose_secret(), "canary-pepper");
        assert_eq!(parsed["JWT_SIGNING_KEYS"].expose_secret(), r#"{"keys":[]}"#);

        for bad in [
            "canary-not-json",
            r#"["canary"]"#,
            r#"{"DATABASE_PASSWORD": 12345678}"#,
            r#"{"DATABASE_PASSWORD": "canary"#,
        ] {
            let text = parse("ims/prod", bad).err().unwrap().to_string();
            assert!(text.contains("ims/prod"), "{text}");
            assert!(
                !text.contains("canary") && !text.contains("12345678"),
                "{text}"
            );
        }
        let text = parse("ims/prod", r#"{"DATABASE_PASSWORD": true}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(text.contains("DATABASE_PASSWORD"), "{text}");
    }
}
