//! The AWS Secrets Manager store behind `IMS_SECRETS_ID`: one secret, or several separated by
//! commas (names or ARNs, encrypted with the customer-managed KMS key), each a `SecretString` that
//! is a JSON object of `NAME: value` pairs. A value is a string, or a JSON object or array (a key
//! set kept as structured JSON), handed on as its JSON text. A secret in the format Secrets
//! Manager's RDS rotation maintains (`engine`, `username`, `password`, …) supplies its `password`
//! as `DATABASE_PASSWORD`, so the rotation reaches IMS without a restart. A name found in two
//! secrets is refused (one would silently win). Errors name the secret and the key, never a value:
//! a missing secret, one the task role may not read or decrypt, and one that is not such an object
//! are all clear start errors.

use std::collections::HashMap;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client;
use secrecy::SecretString;

use super::SecretError;

/// A client for the secrets IMS reads.
#[derive(Clone)]
pub struct Store {
    client: Client,
    ids: Vec<String>,
}

/// A value and the secret (id and version) it came from.
struct Entry {
    value: SecretString,
    secret: String,
    version: Option<String>,
    /// For a password from an RDS credentials secret: the user it belongs to.
    user: Option<String>,
}

/// One secret's values, and the user of an RDS credentials secret.
struct Parsed {
    values: HashMap<String, SecretString>,
    rds_user: Option<String>,
}

/// One read of every secret: the values by name.
pub struct Snapshot {
    /// `IMS_SECRETS_ID` as configured, for messages.
    pub id: String,
    values: HashMap<String, Entry>,
}

impl Snapshot {
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.values.get(name).map(|e| &e.value)
    }

    /// The secret `name` came from.
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|e| e.secret.as_str())
    }

    /// The database user an RDS credentials secret names (its password is for that user).
    pub fn database_user(&self) -> Option<&str> {
        self.values
            .get("DATABASE_PASSWORD")
            .and_then(|e| e.user.as_deref())
    }

    /// The version of the secret `name` came from.
    pub fn version(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|e| e.version.as_deref())
    }
}

/// The secret ids in `IMS_SECRETS_ID` (comma-separated; names and ARNs never hold a comma).
pub fn ids(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Store {
    pub fn new(sdk: &aws_config::SdkConfig, id: &str) -> Self {
        Self {
            client: Client::new(sdk),
            ids: ids(id),
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

    /// Reads the current version of every secret and merges them.
    pub async fn fetch(&self) -> Result<Snapshot, SecretError> {
        let mut values: HashMap<String, Entry> = HashMap::new();
        for id in &self.ids {
            let (version, parsed) = self.fetch_one(id).await?;
            for (name, value) in parsed.values {
                if let Some(other) = values.get(&name) {
                    return Err(SecretError::Store {
                        id: id.clone(),
                        reason: format!(
                            "{name} is also in {}; keep each secret in one place",
                            other.secret
                        ),
                    });
                }
                let user = (name == "DATABASE_PASSWORD")
                    .then(|| parsed.rds_user.clone())
                    .flatten();
                let entry = Entry {
                    value,
                    secret: id.clone(),
                    version: version.clone(),
                    user,
                };
                values.insert(name, entry);
            }
        }
        Ok(Snapshot {
            id: self.ids.join(","),
            values,
        })
    }

    async fn fetch_one(&self, id: &str) -> Result<(Option<String>, Parsed), SecretError> {
        let id = id.to_owned();
        let out = self
            .client
            .get_secret_value()
            .secret_id(&id)
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
        Ok((out.version_id().map(str::to_owned), parse(&id, text)?))
    }
}

/// Parses the secret's JSON object; the error names the offending key, never a value.
fn parse(id: &str, text: &str) -> Result<Parsed, SecretError> {
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
    // The RDS rotation format: its `password` is the database password; its other fields
    // (engine, host, port, username, dbname) are not secrets IMS reads.
    let rds = map.contains_key("engine") && map.contains_key("username");
    if rds && map.contains_key("DATABASE_PASSWORD") {
        return Err(malformed(
            "it is an RDS credentials secret and also holds DATABASE_PASSWORD; keep one".into(),
        ));
    }
    let rds_user = rds
        .then(|| {
            map.get("username")
                .and_then(|u| u.as_str())
                .map(str::to_owned)
        })
        .flatten();
    let values = map
        .into_iter()
        .filter(|(name, _)| {
            !rds || ![
                "engine",
                "host",
                "port",
                "username",
                "dbname",
                "dbClusterIdentifier",
                "dbInstanceIdentifier",
                "masterarn",
            ]
            .contains(&name.as_str())
        })
        .map(|(name, value)| {
            let name = if rds && name == "password" {
                "DATABASE_PASSWORD".to_owned()
            } else {
                name
            };
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
        .collect::<Result<_, _>>()?;
    Ok(Parsed { values, rds_user })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn values_are_strings_or_structured_json_and_errors_hide_values() {
        let parsed = parse(
            "ims/prod",
            r#"{"OTP_PEPPER":"canary-pepper","JWT_SIGNING_KEYS":{"keys":[]}}"#,
        )
        .unwrap()
        .values;
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

    #[test]
    fn an_rds_credentials_secret_supplies_the_database_password() {
        let parsed = parse(
            "ims/db",
            r#"{"engine":"postgres","host":"db","port":5432,"username":"ims","password":"canary-pw","dbname":"ims"}"#,
        )
        .unwrap();
        assert_eq!(parsed.rds_user.as_deref(), Some("ims"));
        let parsed = parsed.values;
        assert_eq!(parsed["DATABASE_PASSWORD"].expose_secret(), "canary-pw");
        assert_eq!(parsed.len(), 1, "the connection fields are not secrets");
        let both = parse(
            "ims/db",
            r#"{"engine":"postgres","username":"ims","password":"a","DATABASE_PASSWORD":"b"}"#,
        );
        assert!(both.is_err());
        assert_eq!(
            ids(" a, arn:aws:secretsmanager:eu-west-1:1:secret:b-x ,"),
            ["a", "arn:aws:secretsmanager:eu-west-1:1:secret:b-x"]
        );
    }
}
