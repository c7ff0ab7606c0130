//! Secret resolution. Every secret `NAME` resolves, in order, from the environment variable
//! `IMS_NAME`, from the file named by `IMS_NAME_FILE`, or from the key `NAME` of the JSON secret
//! named by `IMS_SECRETS_ID` ([`store`], read once before the configuration is parsed and again on
//! an interval by [`refresh`]). Setting both `IMS_NAME` and `IMS_NAME_FILE` is refused, because one
//! of them would silently win. Values only ever live in [`SecretString`], whose `Debug` is redacted;
//! errors name the secret, never its value.

pub mod refresh;
pub mod store;

use std::collections::HashMap;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

/// The secrets IMS knows about, by their contract names.
pub const KNOWN: &[&str] = &[
    "JWT_SIGNING_KEYS",
    "OTP_PEPPER",
    "SMTP_PASSWORD",
    "DATABASE_PASSWORD",
    "AI_API_KEY",
];

/// Where a secret's value came from; shown (never the value) by `ims check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env,
    File(PathBuf),
    Generated(PathBuf),
    /// The key of that name in the Secrets Manager secret with this id.
    Store(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name}: both IMS_{name} and IMS_{name}_FILE are set; set only one")]
    Ambiguous { name: String },
    #[error("secret {name}: cannot read the file named by IMS_{name}_FILE ({path}): {kind}")]
    Unreadable {
        name: String,
        path: PathBuf,
        kind: std::io::ErrorKind,
    },
    #[error("secret {name}: the value is empty")]
    Empty { name: String },
    #[error("secret {name}: IMS_SECRETS_ID is set, but the secret store was not read (load the configuration with Config::load)")]
    StoreUnread { name: String },
    #[error("IMS_SECRETS_ID {id}: {reason}")]
    Store { id: String, reason: String },
    #[error("secret {name}: not set as IMS_{name} or IMS_{name}_FILE, and the secret {id} (IMS_SECRETS_ID) has no key {name}; with a secret store it is never generated locally")]
    MissingInStore { name: String, id: String },
}

/// A resolved secret and where it came from.
pub struct Resolved {
    pub value: SecretString,
    pub source: Source,
}

/// Resolves secrets from a snapshot of the environment (so tests can pass their own) and, when
/// `IMS_SECRETS_ID` is set, from one read of that secret.
pub struct Resolver<'a> {
    env: &'a HashMap<String, String>,
    store: Option<&'a store::Snapshot>,
}

impl<'a> Resolver<'a> {
    pub fn new(env: &'a HashMap<String, String>, store: Option<&'a store::Snapshot>) -> Self {
        Self { env, store }
    }

    /// Resolves `name`; `Ok(None)` when it is configured nowhere.
    pub fn resolve(&self, name: &str) -> Result<Option<Resolved>, SecretError> {
        let direct = self.env.get(&format!("IMS_{name}"));
        let file = self.env.get(&format!("IMS_{name}_FILE"));
        match (direct, file) {
            (Some(_), Some(_)) => Err(SecretError::Ambiguous { name: name.into() }),
            (Some(value), None) => non_empty(name, value.clone()).map(|value| {
                Some(Resolved {
                    value,
                    source: Source::Env,
                })
            }),
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                let text = std::fs::read_to_string(&path).map_err(|e| SecretError::Unreadable {
                    name: name.into(),
                    path: path.clone(),
                    kind: e.kind(),
                })?;
                let trimmed = text.strip_suffix('\n').unwrap_or(&text);
                let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
                non_empty(name, trimmed.to_owned()).map(|value| {
                    Some(Resolved {
                        value,
                        source: Source::File(path),
                    })
                })
            }
            (None, None) => match self.store {
                Some(snapshot) => match snapshot.get(name) {
                    Some(value) => non_empty(name, value.expose_secret().to_owned()).map(|value| {
                        Some(Resolved {
                            value,
                            source: Source::Store(
                                snapshot.origin(name).unwrap_or(&snapshot.id).to_owned(),
                            ),
                        })
                    }),
                    None => Ok(None),
                },
                None if self.env.contains_key("IMS_SECRETS_ID") => {
                    Err(SecretError::StoreUnread { name: name.into() })
                }
                None => Ok(None),
            },
        }
    }
}

fn non_empty(name: &str, value: String) -> Result<SecretString, SecretError> {
    if value.trim().is_empty() {
        Err(SecretError::Empty { name: name.into() })
    } else {
        Ok(SecretString::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_wins_and_file_is_read_without_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("ims-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pepper");
        std::fs::write(&path, "from-file\n").unwrap();
        let e = env(&[("IMS_OTP_PEPPER_FILE", path.to_str().unwrap())]);
        let got = Resolver::new(&e, None)
            .resolve("OTP_PEPPER")
            .unwrap()
            .unwrap();
        assert_eq!(got.value.expose_secret(), "from-file");
        assert_eq!(got.source, Source::File(path));

        let e = env(&[("IMS_OTP_PEPPER", "direct")]);
        let got = Resolver::new(&e, None)
            .resolve("OTP_PEPPER")
            .unwrap()
            .unwrap();
        assert_eq!(got.value.expose_secret(), "direct");
    }

    #[test]
    fn both_set_is_refused_and_the_error_names_no_value() {
        let e = env(&[
            ("IMS_SMTP_PASSWORD", "canary-value-123"),
            ("IMS_SMTP_PASSWORD_FILE", "/nonexistent"),
        ]);
        let err = Resolver::new(&e, None)
            .resolve("SMTP_PASSWORD")
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(text.contains("SMTP_PASSWORD"));
        assert!(!text.contains("canary-value-123"));
    }

    #[test]
    fn missing_file_and_empty_values_are_errors() {
        let e = env(&[("IMS_AI_API_KEY_FILE", "/nonexistent/ims-key")]);
        assert!(matches!(
            Resolver::new(&e, None).resolve("AI_API_KEY"),
            Err(SecretError::Unreadable { .. })
        ));
        let e = env(&[("IMS_AI_API_KEY", "  ")]);
        assert!(matches!(
            Resolver::new(&e, None).resolve("AI_API_KEY"),
            Err(SecretError::Empty { .. })
        ));
        assert!(Resolver::new(&env(&[]), None)
            .resolve("AI_API_KEY")
            .unwrap()
            .is_none());
    }
}
