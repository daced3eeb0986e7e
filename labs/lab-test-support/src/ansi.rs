//! Strip terminal escape codes from captured output, so tests compare the words a reader sees.

/// `text` without its ANSI escape sequences: each `ESC` up to and including the next letter
/// (`ESC [ 1 ; 32 m` and the like) goes.
pub fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::strip_ansi;

    #[test]
    fn colour_codes_go_and_the_words_stay() {
        assert_eq!(
            strip_ansi("\u{1b}[1;32mOK\u{1b}[0m 200 in \u{1b}[2m3 ms\u{1b}[0m"),
            "OK 200 in 3 ms"
        );
        assert_eq!(strip_ansi("plain text"), "plain text");
    }
}
