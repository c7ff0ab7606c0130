//! Upload checks that run before a document is stored: [`check`] accepts only the content types
//! IMS serves and verifies that the bytes really are of the declared type (magic numbers, the
//! ZIP central directory of XLSX/DOCX, clean UTF-8 for text), so a renamed executable is refused
//! at the door; [`safe_name`] turns a client-supplied file name into one that is safe to show and
//! to offer as a download name. Neither is a malware scanner: documents are still served as
//! attachments with `nosniff`.

/// The content types IMS accepts for documents.
pub const ALLOWED: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "text/csv",
    "text/plain",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
];

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// Longest file name [`safe_name`] returns, in characters.
const MAX_NAME_CHARS: usize = 120;
/// Longest extension [`safe_name`] keeps when it shortens a name, in characters.
const MAX_EXTENSION_CHARS: usize = 10;

/// Why an upload was refused. The texts are meant for the uploader.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error(
        "content type {0} is not accepted; accepted: PDF, PNG, JPEG, CSV, plain text, XLSX, DOCX"
    )]
    NotAllowed(String),
    #[error("the file's bytes are not a {0}")]
    Mismatch(&'static str),
    #[error("the file is empty")]
    Empty,
}

/// Normalises the declared type (lowercase, parameters like `; charset=utf-8` stripped), checks it
/// is allowed and that the bytes really are of that type. Returns the normalised content type.
pub fn check(declared: &str, bytes: &[u8]) -> Result<&'static str, Rejected> {
    let normalised = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some(content_type) = ALLOWED.iter().copied().find(|t| *t == normalised) else {
        return Err(Rejected::NotAllowed(printable(&normalised)));
    };
    if bytes.is_empty() {
        return Err(Rejected::Empty);
    }
    let (looks_right, label) = match content_type {
        "application/pdf" => (bytes.starts_with(b"%PDF-"), "PDF document"),
        "image/png" => (bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG image"),
        "image/jpeg" => (bytes.starts_with(b"\xff\xd8\xff"), "JPEG image"),
        "text/csv" => (is_clean_text(bytes), "CSV file"),
        "text/plain" => (is_clean_text(bytes), "plain text file"),
        XLSX => (is_office_zip(bytes, b"xl/"), "spreadsheet (XLSX)"),
        DOCX => (is_office_zip(bytes, b"word/"), "Word document (DOCX)"),
        _ => (false, "accepted type"),
    };
    if looks_right {
        Ok(content_type)
    } else {
        Err(Rejected::Mismatch(label))
    }
}

/// The extension expected for an accepted content type, e.g. `"pdf"`, to suggest a file name.
pub fn extension(content_type: &str) -> Option<&'static str> {
    Some(match content_type {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "text/csv" => "csv",
        "text/plain" => "txt",
        XLSX => "xlsx",
        DOCX => "docx",
        _ => return None,
    })
}

/// A declared type as it may be echoed back: printable ASCII only, at most 100 characters.
fn printable(declared: &str) -> String {
    declared
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}

/// Valid UTF-8 (after an optional byte order mark) without NUL or control characters other than
/// tab, carriage return, line feed and form feed.
fn is_clean_text(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    std::str::from_utf8(bytes).is_ok_and(|text| {
        !text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n' | '\x0c'))
    })
}

/// A ZIP archive (local header signature first) whose central directory lists an entry whose name
/// starts with `prefix` (`xl/` for XLSX, `word/` for DOCX).
fn is_office_zip(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
        && zip_entry_names(bytes).is_some_and(|names| names.iter().any(|n| n.starts_with(prefix)))
}

/// The entry names in a ZIP archive's central directory, or `None` when the archive is truncated,
/// malformed or ZIP64 (which no office document of acceptable size needs).
fn zip_entry_names(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let end = find_end_of_central_directory(bytes)?;
    let count = read_u16(bytes, end + 10)?;
    let mut at = usize::try_from(read_u32(bytes, end + 16)?).ok()?;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        if bytes.get(at..at + 4)? != b"PK\x01\x02" {
            return None;
        }
        let name_len = read_u16(bytes, at + 28)?;
        let extra_len = read_u16(bytes, at + 30)?;
        let comment_len = read_u16(bytes, at + 32)?;
        names.push(bytes.get(at + 46..at + 46 + name_len)?);
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(names)
}

/// The offset of the end-of-central-directory record: its 22 fixed bytes are followed only by an
/// archive comment of at most 65,535 bytes, so it is searched for backwards from the end.
fn find_end_of_central_directory(bytes: &[u8]) -> Option<usize> {
    let last = bytes.len().checked_sub(22)?;
    let first = last.saturating_sub(usize::from(u16::MAX));
    (first..=last)
        .rev()
        .find(|&at| bytes.get(at..at + 4) == Some(b"PK\x05\x06"))
}

fn read_u16(bytes: &[u8], at: usize) -> Option<usize> {
    let field: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
    Some(usize::from(u16::from_le_bytes(field)))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(field))
}

/// A safe display and download name from a client-supplied one: only the last path component,
/// characters other than letters, digits, space, `.`, `-`, `_`, `(` and `)` replaced by `_` (runs
/// collapsed), spaces and dots trimmed from both ends, at most 120 characters (keeping an extension
/// of up to 10). `None` when nothing usable is left. Never starts with a dot.
pub fn safe_name(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned = replace_unsafe_chars(last);
    let name = shorten(trim_name(&cleaned));
    let name = trim_name(&name);
    if name.chars().any(char::is_alphanumeric) {
        Some(name.to_string())
    } else {
        None
    }
}

/// Keeps letters, digits (any script), combining accents, space, `.`, `-`, `_`, `(`, `)`; replaces
/// anything else by `_`, with runs of `_` collapsed to one.
fn replace_unsafe_chars(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let keep = c.is_alphanumeric()
            || matches!(c, ' ' | '.' | '-' | '_' | '(' | ')')
            || ('\u{300}'..='\u{36f}').contains(&c);
        let c = if keep { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out
}

fn trim_name(name: &str) -> &str {
    name.trim_matches([' ', '.'])
}

/// Cuts a name to [`MAX_NAME_CHARS`], keeping a short extension.
fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_string();
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| (1..=MAX_EXTENSION_CHARS).contains(&ext.chars().count()));
    match extension {
        Some(ext) => {
            let stem_chars = MAX_NAME_CHARS - 1 - ext.chars().count();
            let stem: String = name.chars().take(stem_chars).collect();
            format!("{}.{ext}", trim_name(&stem))
        }
        None => name.chars().take(MAX_NAME_CHARS).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
    const EXE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0This program cannot be run";

    /// A minimal stored (uncompressed) ZIP archive with the given entries, as office suites write
    /// them: local headers, then the central directory, then its end record.
    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = u32::try_from(out.len()).unwrap();
            let name_len = u16::try_from(name.len()).unwrap().to_le_bytes();
            let size = u32::try_from(data.len()).unwrap().to_le_bytes();
            out.extend_from_slice(b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0");
            out.extend_from_slice(&size);
            out.extend_from_slice(&size);
            out.extend_from_slice(&name_len);
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0\0\0\0\0");
            central.extend_from_slice(&size);
            central.extend_from_slice(&size);
            central.extend_from_slice(&name_len);
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let central_offset = u32::try_from(out.len()).unwrap().to_le_bytes();
        let central_size = u32::try_from(central.len()).unwrap().to_le_bytes();
        let count = u16::try_from(entries.len()).unwrap().to_le_bytes();
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&count);
        out.extend_from_slice(&count);
        out.extend_from_slice(&central_size);
        out.extend_from_slice(&central_offset);
        out.extend_from_slice(&[0, 0]);
        out
    }

    fn xlsx() -> Vec<u8> {
        zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("_rels/.rels", b"<Relationships/>"),
            ("xl/workbook.xml", b"<workbook/>"),
            ("xl/worksheets/sheet1.xml", b"<worksheet/>"),
        ])
    }

    fn docx() -> Vec<u8> {
        zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("_rels/.rels", b"<Relationships/>"),
            ("word/document.xml", b"<w:document/>"),
        ])
    }

    #[test]
    fn every_allowed_type_is_accepted_with_real_magic_bytes() {
        let (xlsx, docx) = (xlsx(), docx());
        let samples: [(&str, &[u8]); 7] = [
            ("application/pdf", PDF),
            ("image/png", PNG),
            ("image/jpeg", JPEG),
            ("text/csv", b"\xef\xbb\xbfpart,qty\r\nR1 10k\xc3\xa9,5\r\n"),
            ("text/plain", b"line one\n\tindented\x0cnext page\n"),
            (XLSX, &xlsx),
            (DOCX, &docx),
        ];
        for (declared, bytes) in samples {
            assert_eq!(check(declared, bytes), Ok(declared));
        }
        assert_eq!(ALLOWED.len(), samples.len());
    }

    #[test]
    fn declared_type_is_normalised() {
        assert_eq!(check("text/csv; charset=UTF-8", b"a,b\n"), Ok("text/csv"));
        assert_eq!(check(" Application/PDF ", PDF), Ok("application/pdf"));
    }

    #[test]
    fn bytes_of_another_type_are_a_mismatch() {
        assert_eq!(
            check("application/pdf", PNG),
            Err(Rejected::Mismatch("PDF document"))
        );
        assert!(matches!(
            check("application/pdf", EXE),
            Err(Rejected::Mismatch(_))
        ));
        assert!(matches!(
            check("image/png", JPEG),
            Err(Rejected::Mismatch(_))
        ));
        assert!(matches!(
            check("image/jpeg", PNG),
            Err(Rejected::Mismatch(_))
        ));
        assert!(matches!(
            check("text/plain", EXE),
            Err(Rejected::Mismatch(_))
        ));
        assert!(matches!(check(XLSX, &docx()), Err(Rejected::Mismatch(_))));
        assert!(matches!(check(DOCX, &xlsx()), Err(Rejected::Mismatch(_))));
        assert!(matches!(check(DOCX, PDF), Err(Rejected::Mismatch(_))));
    }

    #[test]
    fn zip_must_list_the_office_part_in_its_central_directory() {
        let other = zip(&[("notes/xl/word/readme.txt", b"xl/ word/")]);
        assert!(matches!(check(XLSX, &other), Err(Rejected::Mismatch(_))));
        assert!(matches!(check(DOCX, &other), Err(Rejected::Mismatch(_))));
        let full = xlsx();
        let truncated = &full[..full.len() - 10];
        assert!(matches!(check(XLSX, truncated), Err(Rejected::Mismatch(_))));
        assert!(matches!(
            check(XLSX, b"PK\x03\x04xl/"),
            Err(Rejected::Mismatch(_))
        ));
    }

    #[test]
    fn text_must_be_clean_utf8() {
        assert_eq!(
            check("text/csv", b"a,b\0,c\n"),
            Err(Rejected::Mismatch("CSV file"))
        );
        assert!(matches!(
            check("text/plain", b"caf\xe9\n"),
            Err(Rejected::Mismatch(_))
        ));
        assert!(matches!(
            check("text/plain", b"bell\x07"),
            Err(Rejected::Mismatch(_))
        ));
        assert!(matches!(
            check("text/plain", "c1 \u{85}".as_bytes()),
            Err(Rejected::Mismatch(_))
        ));
        // Markup is just text; it is served as an attachment with nosniff.
        let html = b"<html><script>alert(1)</script></html>\n";
        assert_eq!(check("text/plain", html), Ok("text/plain"));
    }

    #[test]
    fn other_types_are_not_allowed_and_echoed_safely() {
        assert_eq!(
            check("application/x-msdownload", EXE),
            Err(Rejected::NotAllowed("application/x-msdownload".into()))
        );
        assert!(matches!(
            check("text/html", b"<p>"),
            Err(Rejected::NotAllowed(_))
        ));
        assert!(matches!(check("", PDF), Err(Rejected::NotAllowed(_))));
        let Err(Rejected::NotAllowed(echo)) = check(&format!("x/\n\u{1b}{}", "y".repeat(500)), PDF)
        else {
            panic!("expected NotAllowed");
        };
        assert!(echo.len() <= 100 && echo.chars().all(|c| c.is_ascii_graphic()));
    }

    #[test]
    fn empty_files_are_rejected() {
        for declared in ALLOWED {
            assert_eq!(check(declared, b""), Err(Rejected::Empty));
        }
    }

    #[test]
    fn extension_covers_every_allowed_type() {
        assert_eq!(extension("application/pdf"), Some("pdf"));
        assert_eq!(extension(XLSX), Some("xlsx"));
        assert!(ALLOWED.iter().all(|t| extension(t).is_some()));
        assert_eq!(extension("text/html"), None);
    }

    #[test]
    fn safe_name_keeps_only_the_last_path_component() {
        assert_eq!(safe_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            safe_name("C:\\Users\\x\\report.pdf").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(safe_name("dir/").as_deref(), None);
    }

    #[test]
    fn safe_name_replaces_unsafe_characters_and_leading_dots() {
        assert_eq!(safe_name(".htaccess").as_deref(), Some("htaccess"));
        assert_eq!(safe_name("a<script>.pdf").as_deref(), Some("a_script_.pdf"));
        assert_eq!(safe_name("a\"; b\r\n.pdf").as_deref(), Some("a_ b_.pdf"));
        assert_eq!(
            safe_name("invoice\u{202e}fdp.exe").as_deref(),
            Some("invoice_fdp.exe")
        );
        assert_eq!(
            safe_name("  report (2).PDF. ").as_deref(),
            Some("report (2).PDF")
        );
    }

    #[test]
    fn safe_name_keeps_letters_of_any_script() {
        assert_eq!(
            safe_name("Bản vẽ SMT-1.pdf").as_deref(),
            Some("Bản vẽ SMT-1.pdf")
        );
        // The same name decomposed, as some macOS clients send it.
        let decomposed = "Ba\u{309}n ve\u{303}\u{302} SMT-1.pdf";
        assert_eq!(safe_name(decomposed).as_deref(), Some(decomposed));
        assert_eq!(
            safe_name("báo_cáo_日本.xlsx").as_deref(),
            Some("báo_cáo_日本.xlsx")
        );
    }

    #[test]
    fn safe_name_refuses_names_with_nothing_usable() {
        for raw in ["", "..", "/", "....", " . ", "<>", "___", "C:\\"] {
            assert_eq!(safe_name(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn safe_name_caps_long_names_keeping_the_extension() {
        let long = format!("{}.pdf", "x".repeat(300));
        let name = safe_name(&long).unwrap();
        assert!(name.chars().count() <= 120, "{}", name.len());
        assert!(name.ends_with(".pdf"));
        assert!(name.starts_with("xxx"));

        let accented = format!("{}.docx", "é".repeat(300));
        let name = safe_name(&accented).unwrap();
        assert_eq!(name.chars().count(), 120);
        assert!(name.ends_with(".docx"));

        let long_extension = format!("a.{}", "b".repeat(300));
        assert_eq!(safe_name(&long_extension).unwrap().chars().count(), 120);

        let dots_at_cut = format!("{}{}.pdf", "a".repeat(100), ".".repeat(100));
        let name = safe_name(&dots_at_cut).unwrap();
        assert_eq!(name, format!("{}.pdf", "a".repeat(100)));
    }
}
