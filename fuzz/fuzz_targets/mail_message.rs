//! The `.eml`/MIME builder (`mail::message::build`) with hostile recipients, subjects and bodies
//! (a user's name or an order number can end up in a subject). Invariants: nothing panics; a built
//! message has exactly one `To`, one `From`, one `Subject`, and no header the builder did not write
//! (no header injection through CR/LF), and its header section ends before the body.
#![no_main]

use ims::mail::message::build;
use ims::mail::MailContent;
use lettre::message::Mailbox;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    to: String,
    subject: String,
    text: String,
    html: String,
}

const HEADERS: [&str; 8] = [
    "from", "to", "subject", "message-id", "mime-version", "date", "content-type",
    "content-transfer-encoding",
];

fuzz_target!(|input: Input| {
    let from: Mailbox = "IMS <no-reply@factory.example>".parse().expect("sender");
    let content = MailContent {
        to: input.to,
        subject: input.subject,
        text: input.text,
        html: input.html,
    };
    let Ok(message) = build("0193a0c4-6f1e-7c2a-9d41-5b7e2f8a9c10", &from, "factory.example", &content) else {
        return;
    };
    let bytes = message.formatted();
    let text = String::from_utf8_lossy(&bytes);
    let (head, _) = text.split_once("\r\n\r\n").expect("a header section");
    let mut names = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        let (name, _) = line.split_once(':').expect("a header line");
        let name = name.to_ascii_lowercase();
        assert!(HEADERS.contains(&name.as_str()), "unexpected header {name:?}");
        names.push(name);
    }
    for one in ["from", "to", "subject"] {
        assert_eq!(names.iter().filter(|n| *n == one).count(), 1, "{one} in {head:?}");
    }
    assert!(head.is_ascii(), "non-ASCII header bytes must be encoded");
});
