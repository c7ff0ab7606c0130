//! The emails IMS sends, as plain text and HTML, in the product's voice: what happened, the code and
//! when it expires, what to do if it wasn't you. A code mail contains the code as its only
//! six-digit number. Links use `IMS_PUBLIC_URL`, never a request's Host header. Every inserted value
//! is HTML-escaped.

use url::Url;

use crate::auth::otp::{Purpose, CODE_TTL_SECS};

#[derive(Debug, Clone)]
pub struct Rendered {
    pub template: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, paragraphs: &[String]) -> String {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:sans-serif;line-height:1.5;color:#1b1f24\">\n{body}\
         <p style=\"color:#57606a;font-size:small\">IMS — production management</p>\n</body></html>\n",
        escape(title)
    )
}

/// Why a code is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeReason {
    /// The user asked (forgot password / verify email).
    Requested,
    /// An admin created the account.
    NewAccount,
}

/// A code mail. It greets without the user's name: a name could contain digits, and the code must be
/// the only six-digit number in the mail.
pub fn code(purpose: Purpose, reason: CodeReason, code: &str, public_url: &Url) -> Rendered {
    let minutes = CODE_TTL_SECS / 60;
    let (template, subject, what, how) = match (purpose, reason) {
        (Purpose::PasswordReset, CodeReason::Requested) => (
            "password_reset_code",
            "Your IMS password reset code",
            "Someone asked to reset the password of your IMS account.".to_owned(),
            "Enter this code on the password reset page, then choose a new password:".to_owned(),
        ),
        (Purpose::PasswordReset, CodeReason::NewAccount) => (
            "welcome_set_password",
            "Welcome to IMS: set your password",
            "An administrator created an IMS account for you.".to_owned(),
            "To choose your password, open IMS, pick \"Forgot password\" and enter this code:"
                .to_owned(),
        ),
        (Purpose::EmailVerification, CodeReason::Requested) => (
            "email_verification_code",
            "Your IMS email verification code",
            "Someone asked to verify this email address for an IMS account.".to_owned(),
            "Enter this code in IMS to confirm the address:".to_owned(),
        ),
        (Purpose::EmailVerification, CodeReason::NewAccount) => (
            "welcome_verify_email",
            "Welcome to IMS: confirm your email address",
            "An administrator created an IMS account for you.".to_owned(),
            "Before you first sign in, confirm this address by entering this code in IMS:"
                .to_owned(),
        ),
    };
    let not_you = "If this wasn't you, ignore this email: nothing changes without the code. \
                   Never share the code; IMS staff will never ask for it.";
    let text = format!(
        "Hello,\n\n{what}\n{how}\n\n    {code}\n\nThe code works once and expires in {minutes} minutes.\n\
         Open IMS: {public_url}\n\n{not_you}\n"
    );
    let html = page(
        subject,
        &[
            "Hello,".to_owned(),
            format!("{}<br>{}", escape(&what), escape(&how)),
            format!("<strong style=\"font-size:1.6em;letter-spacing:0.2em\">{code}</strong>"),
            format!("The code works once and expires in {minutes} minutes."),
            format!("<a href=\"{}\">Open IMS</a>", escape(public_url.as_str())),
            escape(not_you),
        ],
    );
    Rendered {
        template,
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// After a password change or reset: no code, no secret.
pub fn password_changed(name: &str, public_url: &Url) -> Rendered {
    let subject = "Your IMS password was changed";
    let what = "The password of your IMS account was just changed, and every other session was signed out.";
    let not_you = "If this wasn't you, reset your password now with \"Forgot password\" and tell your IMS administrator.";
    Rendered {
        template: "password_changed",
        subject: subject.into(),
        text: format!("Hello {name},\n\n{what}\n\n{not_you}\nOpen IMS: {public_url}\n"),
        html: page(
            subject,
            &[
                format!("Hello {},", escape(name)),
                escape(what),
                escape(not_you),
                format!("<a href=\"{}\">Open IMS</a>", escape(public_url.as_str())),
            ],
        ),
    }
}

/// After repeated failed sign-ins locked the account's email.
pub fn account_locked(name: &str, lock_minutes: u64, public_url: &Url) -> Rendered {
    let subject = "Sign-in to your IMS account was paused";
    let what = format!(
        "There were several failed attempts to sign in to your IMS account, so sign-in is paused for {lock_minutes} minutes."
    );
    let not_you = "If this wasn't you, someone may be guessing your password: once the pause ends, \
                   consider changing it, and tell your IMS administrator, who can also lift the pause.";
    Rendered {
        template: "account_locked",
        subject: subject.into(),
        text: format!("Hello {name},\n\n{what}\n\n{not_you}\nOpen IMS: {public_url}\n"),
        html: page(
            subject,
            &[
                format!("Hello {},", escape(name)),
                escape(&what),
                escape(not_you),
                format!("<a href=\"{}\">Open IMS</a>", escape(public_url.as_str())),
            ],
        ),
    }
}

/// An alert raised by a manager's rule.
pub fn alert(name: &str, message: &str, public_url: &Url) -> Rendered {
    let subject = format!(
        "IMS alert: {}",
        message.chars().take(120).collect::<String>()
    );
    Rendered {
        template: "alert",
        subject: subject.clone(),
        text: format!("Hello {name},\n\n{message}\n\nSee the dashboard: {public_url}\n"),
        html: page(
            &subject,
            &[
                format!("Hello {},", escape(name)),
                escape(message),
                format!(
                    "<a href=\"{}\">Open the dashboard</a>",
                    escape(public_url.as_str())
                ),
            ],
        ),
    }
}

/// A line leader's tasks after the planner published a schedule; one line per task.
pub fn tasks_published(name: &str, period: &str, tasks: &[String], public_url: &Url) -> Rendered {
    let subject = format!("Your production tasks for {period}");
    let list = tasks
        .iter()
        .map(|t| format!("- {t}"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut paragraphs = vec![
        format!("Hello {},", escape(name)),
        escape(&format!(
            "The schedule for {period} was published. Your tasks:"
        )),
    ];
    paragraphs.extend(tasks.iter().map(|t| escape(t)));
    paragraphs.push(format!(
        "<a href=\"{}\">Open your tasks</a>",
        escape(public_url.as_str())
    ));
    Rendered {
        template: "tasks_published",
        subject: subject.clone(),
        text: format!(
            "Hello {name},\n\nThe schedule for {period} was published. Your tasks:\n{list}\n\nOpen your tasks: {public_url}\n"
        ),
        html: page(&subject, &paragraphs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn six_digit_runs(text: &str) -> Vec<String> {
        let mut runs = Vec::new();
        let mut current = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_digit() {
                current.push(c);
            } else {
                if current.len() == 6 {
                    runs.push(current.clone());
                }
                current.clear();
            }
        }
        runs
    }

    #[test]
    fn the_code_is_the_only_six_digit_number_and_names_are_escaped() {
        let url = Url::parse("https://ims.factory.example:8443/").unwrap();
        for purpose in [Purpose::PasswordReset, Purpose::EmailVerification] {
            for reason in [CodeReason::Requested, CodeReason::NewAccount] {
                let r = code(purpose, reason, "042917", &url);
                assert_eq!(six_digit_runs(&r.text), vec!["042917"]);
                assert_eq!(six_digit_runs(&r.html), vec!["042917"]);
                assert!(r.text.contains("10 minutes"));
                assert!(r.text.contains("https://ims.factory.example:8443/"));
            }
        }
        for r in [
            password_changed("<b>Ana</b>", &url),
            account_locked("Ana", 15, &url),
        ] {
            assert!(six_digit_runs(&r.text).is_empty());
            assert!(six_digit_runs(&r.html).is_empty());
        }
        assert!(password_changed("<b>Ana</b>", &url)
            .html
            .contains("&lt;b&gt;Ana&lt;/b&gt;"));
    }
}
