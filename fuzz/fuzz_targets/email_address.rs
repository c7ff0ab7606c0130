//! The email address check (`users::email::normalize`), which every login, code request and
//! account creation runs on client input. Invariants: nothing panics; an accepted address is
//! ASCII, at most 254 bytes, normalised (normalising it again changes nothing), and is a mailbox
//! the mail builder accepts — IMS never stores an address it cannot send to.
#![no_main]

use ims::users::email::normalize;
use lettre::message::Mailbox;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(email) = normalize(raw) {
        assert!(email.is_ascii() && email.len() <= 254, "{email:?}");
        assert_eq!(normalize(&email).as_deref(), Some(email.as_str()), "not idempotent");
        assert!(!email.chars().any(|c| c.is_ascii_uppercase() || c.is_whitespace()));
        assert!(
            email.parse::<Mailbox>().is_ok(),
            "accepted {email:?}, which the mail builder refuses"
        );
    }
});
