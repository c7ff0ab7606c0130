//! Access-token verification (`Tokens::verify`) against hostile bearer tokens. The input is either
//! a raw token, or an edit of a freshly issued, validly signed one: a segment replaced by the input
//! (so the fuzzer can craft any header or claims JSON inside a well-formed token) or bytes flipped.
//! Invariant: nothing panics, and the only token ever accepted is the one IMS issued.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ims::auth::keys::{generate_key_set_at, parse_key_set};
use ims::auth::roles::Role;
use ims::auth::tokens::Tokens;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    tokens: Tokens,
    issued: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let doc = generate_key_set_at(None, ims::clock::now() - 60).expect("key set");
        let keys = parse_key_set(&doc).expect("parsed key set");
        let tokens = Tokens::new(&keys, "https://ims.fuzz.example".into(), Duration::from_secs(900))
            .expect("tokens");
        let (issued, _) = tokens
            .issue("0193a0c4-6f1e-7c2a-9d41-5b7e2f8a9c10", &[Role::Manager], "session-1", 1)
            .expect("issued");
        assert!(tokens.verify(&issued).is_ok(), "the fixture's own token verifies");
        Fixture { tokens, issued }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let candidate = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => {
            let mut parts: Vec<String> = f.issued.split('.').map(str::to_owned).collect();
            let Some((&which, segment)) = rest.split_first() else {
                return;
            };
            parts[usize::from(which) % 3] = URL_SAFE_NO_PAD.encode(segment);
            parts.join(".")
        }
        _ => {
            let mut bytes = f.issued.clone().into_bytes();
            for pair in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
                bytes[at] ^= pair[2];
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    if let Ok(claims) = f.tokens.verify(&candidate) {
        assert_eq!(candidate, f.issued, "a token IMS did not issue was accepted: {claims:?}");
    }
});
