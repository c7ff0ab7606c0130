//! Turns stored mail content into a lettre message: parsed sender and recipient mailboxes (so no
//! header can be injected through an address; the recipient must be an address IMS accepts, see
//! `users::email`), a stable Message-ID from the outbox id, and a
//! multipart/alternative body with the text and HTML parts.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::{MailContent, SendError};

pub fn build(
    id: &str,
    from: &Mailbox,
    domain: &str,
    content: &MailContent,
) -> Result<Message, SendError> {
    // Only an address IMS itself accepts (ASCII, no display name): what `users::email` stored.
    let to: Mailbox = crate::users::email::normalize(&content.to)
        .and_then(|address| address.parse().ok())
        .ok_or_else(|| SendError::permanent("the recipient address is not valid"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(content.subject.clone())
        .message_id(Some(format!("<{id}@{domain}>")))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(content.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(content.html.clone()),
                ),
        )
        .map_err(|_| SendError::permanent("the message could not be built"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(to: &str, subject: &str) -> MailContent {
        MailContent {
            to: to.into(),
            subject: subject.into(),
            text: "hello".into(),
            html: "<p>hello</p>".into(),
        }
    }

    #[test]
    fn headers_cannot_be_injected() {
        let from: Mailbox = "IMS <no-reply@factory.example>".parse().unwrap();
        assert!(build(
            "1",
            &from,
            "x",
            &content("a@b.example\r\nBcc: evil@x.example", "s")
        )
        .is_err());
        let m = build(
            "1",
            &from,
            "x",
            &content("a@b.example", "Hi\r\nBcc: evil@x.example"),
        )
        .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc: evil"), "{raw}");
        assert!(raw.contains("Message-ID: <1@x>"));
        assert!(raw.contains("multipart/alternative"));
    }

    #[test]
    fn only_addresses_ims_accepts_are_recipients() {
        // Found by the `mail_message` fuzz target: lettre takes a non-ASCII domain and writes it
        // raw into the header; IMS never stores such an address, so it never sends to one.
        let from: Mailbox = "IMS <no-reply@factory.example>".parse().unwrap();
        for to in ["acice@fa\u{28d}", "Name <a@b.example>", "a@b"] {
            assert!(build("1", &from, "x", &content(to, "s")).is_err(), "{to}");
        }
        assert!(build("1", &from, "x", &content("A@B.example", "s")).is_ok());
    }
}
