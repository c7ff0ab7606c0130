//! Email addresses: normalised (trimmed, lower-cased) and checked against a conservative subset of
//! RFC 5321 that every mail system accepts. IMS stores and compares only the normalised form.

/// The normalised address, or `None` when it is not an address IMS accepts.
pub fn normalize(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    if email.len() < 3 || email.len() > 254 {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
    {
        return None;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    {
        return None;
    }
    Some(email)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn accepts_ordinary_addresses_and_normalises_them() {
        assert_eq!(
            normalize("  Ana.Perez+smt@Factory.EXAMPLE ").as_deref(),
            Some("ana.perez+smt@factory.example")
        );
        assert!(normalize("x@a.io").is_some());
    }

    #[test]
    fn refuses_what_mail_systems_would() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a..b@example.com",
            ".a@example.com",
            "a@-x.com",
            "a@x..com",
            "a b@example.com",
            "a@b@example.com",
            "a\n@example.com",
            "ü@example.com",
        ] {
            assert!(normalize(bad).is_none(), "{bad:?}");
        }
        assert!(normalize(&format!("{}@example.com", "a".repeat(65))).is_none());
        assert!(normalize(&format!("a@{}.com", "b".repeat(250))).is_none());
    }
}
