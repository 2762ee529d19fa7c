//! The lexer: splits a template into text and actions (applying `{{-`/`-}}` trimming and
//! dropping comments) and an action into tokens, as Go's `text/template/parse` lexer does.

use std::fmt;

/// A piece of the template: literal text, or the tokens of one `{{ ... }}` action.
#[derive(Debug)]
pub(super) enum Item {
    Text(String),
    Action { tokens: Vec<Token>, pos: usize },
}

/// One token inside an action.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Dot,
    /// `.Name` (without the dot).
    Field(String),
    /// `$` or `$name` (with the dollar).
    Var(String),
    /// A function name.
    Ident(String),
    /// A quoted or raw string, unquoted.
    Str(String),
    /// A number literal as written.
    Num(String),
    /// A character constant, which Go treats as an integer.
    Char(u32),
    Bool(bool),
    Nil,
    Pipe,
    LeftParen,
    RightParen,
    Comma,
    Declare,
    Assign,
    If,
    Else,
    End,
    Range,
    With,
    Break,
    Continue,
    Define,
    Template,
    Block,
    /// A printable ASCII character with no meaning of its own (Go's `itemChar`).
    Other(char),
    /// A lexing error, reported when the parser reaches it (as Go's lexer does).
    Error(String),
}

/// A token with where it starts and whether a space precedes it (Go's lexer emits space
/// tokens; operands must be separated, field chains must not be).
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) pos: usize,
    pub(super) space_before: bool,
    /// The source text, for error messages.
    pub(super) text: String,
}

impl fmt::Display for Token {
    /// Go's `item.String()`: keywords in angle brackets, the rest quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tok {
            Tok::If
            | Tok::Else
            | Tok::End
            | Tok::Range
            | Tok::With
            | Tok::Break
            | Tok::Continue
            | Tok::Define
            | Tok::Template
            | Tok::Block
            | Tok::Nil
            | Tok::Dot => write!(f, "<{}>", self.text),
            Tok::Error(ref message) => f.write_str(message),
            _ => write!(f, "{:?}", self.text),
        }
    }
}

/// A lexing error at a byte offset (it becomes a [`Tok::Error`] token).
struct LexError {
    pos: usize,
    message: String,
}

fn err<T>(pos: usize, message: impl Into<String>) -> Result<T, LexError> {
    Err(LexError {
        pos,
        message: message.into(),
    })
}

/// Go's `isSpace` inside templates.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits `src` into text and action items. Lexing stops at the first error, which ends the
/// item list as an action holding a [`Tok::Error`] token, so that parse errors earlier in the
/// template are reported first, as Go does.
pub(super) fn lex(src: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut i = 0;
    let mut trim_next_text = false;
    loop {
        let rest = &src[i..];
        let Some(open) = rest.find("{{") else {
            push_text(&mut items, rest, trim_next_text, false);
            return items;
        };
        let start = i + open;
        let mut j = start + 2;
        let trim_left = src[j..].starts_with('-') && src[j + 1..].starts_with(is_space);
        if trim_left {
            j += 2;
        }
        push_text(&mut items, &rest[..open], trim_next_text, trim_left);
        let mut tokens = Vec::new();
        let lexed = if src[j..].starts_with("/*") {
            lex_comment(src, j)
        } else {
            lex_action(src, start, j, &mut tokens)
        };
        match lexed {
            Ok((end, trim)) => {
                if !tokens.is_empty() || !src[j..].starts_with("/*") {
                    items.push(Item::Action { tokens, pos: start });
                }
                i = end;
                trim_next_text = trim;
            }
            Err(e) => {
                tokens.push(Token {
                    tok: Tok::Error(e.message),
                    pos: e.pos,
                    space_before: true,
                    text: String::new(),
                });
                items.push(Item::Action { tokens, pos: start });
                return items;
            }
        }
    }
}

fn push_text(items: &mut Vec<Item>, text: &str, trim_start: bool, trim_end: bool) {
    let mut text = text;
    if trim_start {
        text = text.trim_start_matches(is_space);
    }
    if trim_end {
        text = text.trim_end_matches(is_space);
    }
    if !text.is_empty() {
        items.push(Item::Text(text.to_owned()));
    }
}

/// A right delimiter at `j`: `Some((end, trim))` for `}}` or ` -}}`.
fn right_delim(src: &str, j: usize) -> Option<(usize, bool)> {
    let rest = &src[j..];
    if rest.starts_with("}}") {
        return Some((j + 2, false));
    }
    let mut chars = rest.chars();
    if chars.next().is_some_and(is_space) && chars.as_str().starts_with("-}}") {
        return Some((j + 4, true));
    }
    None
}

/// `/* ... */` right after the left delimiter, then the right delimiter.
fn lex_comment(src: &str, j: usize) -> Result<(usize, bool), LexError> {
    let Some(close) = src[j + 2..].find("*/") else {
        return err(j, "unclosed comment");
    };
    let after = j + 2 + close + 2;
    match right_delim(src, after) {
        Some(end) => Ok(end),
        None => err(after, "comment ends before closing delimiter"),
    }
}

/// The tokens of one action starting after its left delimiter (and trim marker) at `j`.
fn lex_action(
    src: &str,
    start: usize,
    mut j: usize,
    tokens: &mut Vec<Token>,
) -> Result<(usize, bool), LexError> {
    let mut space_before = j > start + 2;
    let mut paren_depth = 0usize;
    loop {
        if let Some((end, trim)) = right_delim(src, j) {
            if paren_depth > 0 {
                return err(j, "unclosed left paren");
            }
            return Ok((end, trim));
        }
        let Some(c) = src[j..].chars().next() else {
            return err(start, "unclosed action");
        };
        if is_space(c) {
            space_before = true;
            j += 1;
            continue;
        }
        let begin = j;
        let next = src[j + c.len_utf8()..].chars().next();
        let tok = match c {
            '|' => {
                j += 1;
                Tok::Pipe
            }
            '(' => {
                j += 1;
                paren_depth += 1;
                Tok::LeftParen
            }
            ')' => {
                if paren_depth == 0 {
                    return err(j, "unexpected right paren");
                }
                paren_depth -= 1;
                j += 1;
                Tok::RightParen
            }
            ',' => {
                j += 1;
                Tok::Comma
            }
            ':' => {
                if next != Some('=') {
                    return err(j, "expected :=");
                }
                j += 2;
                Tok::Declare
            }
            '=' => {
                j += 1;
                Tok::Assign
            }
            '"' => {
                let (value, end) = lex_quote(src, j)?;
                j = end;
                Tok::Str(value)
            }
            '`' => {
                let Some(close) = src[j + 1..].find('`') else {
                    return err(j, "unterminated raw quoted string");
                };
                let value = src[j + 1..j + 1 + close].to_owned();
                j += close + 2;
                Tok::Str(value)
            }
            '\'' => {
                let (value, end) = lex_char(src, j)?;
                j = end;
                Tok::Char(value)
            }
            '$' => {
                j = scan_alnum(src, j + 1);
                Tok::Var(src[begin..j].to_owned())
            }
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => {
                j = lex_number(src, j)?;
                Tok::Num(src[begin..j].to_owned())
            }
            '.' if next.is_some_and(is_alnum) => {
                j = scan_alnum(src, j + 1);
                Tok::Field(src[begin + 1..j].to_owned())
            }
            '.' => {
                j += 1;
                Tok::Dot
            }
            '0'..='9' => {
                j = lex_number(src, j)?;
                Tok::Num(src[begin..j].to_owned())
            }
            '+' | '-' if next.is_some_and(|n| n.is_ascii_digit() || n == '.') => {
                j = lex_number(src, j)?;
                Tok::Num(src[begin..j].to_owned())
            }
            c if is_alnum(c) => {
                j = scan_alnum(src, j);
                keyword(&src[begin..j])
            }
            c if c.is_ascii_graphic() => {
                j += 1;
                Tok::Other(c)
            }
            c => {
                return err(
                    j,
                    format!("unrecognized character in action: U+{:04X} {c:?}", c as u32),
                )
            }
        };
        tokens.push(Token {
            tok,
            pos: begin,
            space_before,
            text: src[begin..j].to_owned(),
        });
        space_before = false;
    }
}

fn keyword(word: &str) -> Tok {
    match word {
        "if" => Tok::If,
        "else" => Tok::Else,
        "end" => Tok::End,
        "range" => Tok::Range,
        "with" => Tok::With,
        "break" => Tok::Break,
        "continue" => Tok::Continue,
        "define" => Tok::Define,
        "template" => Tok::Template,
        "block" => Tok::Block,
        "true" => Tok::Bool(true),
        "false" => Tok::Bool(false),
        "nil" => Tok::Nil,
        _ => Tok::Ident(word.to_owned()),
    }
}

fn scan_alnum(src: &str, from: usize) -> usize {
    src[from..]
        .char_indices()
        .find(|(_, c)| !is_alnum(*c))
        .map_or(src.len(), |(k, _)| from + k)
}

/// A number: optional sign, decimal/hex digits, fraction, exponent; like Go, a letter or digit
/// right after it is an error.
fn lex_number(src: &str, from: usize) -> Result<usize, LexError> {
    let bytes = src.as_bytes();
    let mut j = from;
    if matches!(bytes.get(j), Some(b'+' | b'-')) {
        j += 1;
    }
    let digits = |j: &mut usize, hex: bool| {
        while let Some(&b) = bytes.get(*j) {
            if b.is_ascii_digit() || b == b'_' || (hex && b.is_ascii_hexdigit()) {
                *j += 1;
            } else {
                break;
            }
        }
    };
    if bytes.get(j) == Some(&b'0') && matches!(bytes.get(j + 1), Some(b'x' | b'X')) {
        j += 2;
        digits(&mut j, true);
    } else {
        digits(&mut j, false);
        if bytes.get(j) == Some(&b'.') {
            j += 1;
            digits(&mut j, false);
        }
        if matches!(bytes.get(j), Some(b'e' | b'E')) {
            j += 1;
            if matches!(bytes.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            digits(&mut j, false);
        }
    }
    if src[j..].starts_with(|c: char| is_alnum(c) || c == '.') {
        let end = scan_alnum(src, j);
        return err(from, format!("bad number syntax: {:?}", &src[from..end]));
    }
    Ok(j)
}

/// A double-quoted string with Go's escapes; returns the value and the end offset.
fn lex_quote(src: &str, from: usize) -> Result<(String, usize), LexError> {
    let mut out = String::new();
    let mut chars = src[from + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return Ok((out, from + 1 + k + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                out.push(unescape(e, &mut chars, from)?);
            }
            c => out.push(c),
        }
    }
    err(from, "unterminated quoted string")
}

/// A character constant such as `'a'` or `'\n'`.
fn lex_char(src: &str, from: usize) -> Result<(u32, usize), LexError> {
    let mut chars = src[from + 1..].char_indices();
    let value = match chars.next() {
        Some((_, '\\')) => match chars.next() {
            Some((_, e)) => unescape(e, &mut chars, from)?,
            None => return err(from, "unterminated character constant"),
        },
        Some((_, c)) if c != '\'' && c != '\n' => c,
        _ => return err(from, "malformed character constant"),
    };
    match chars.next() {
        Some((k, '\'')) => Ok((value as u32, from + 1 + k + 1)),
        _ => err(from, "unterminated character constant"),
    }
}

/// The character an escape sequence (after its backslash) stands for.
fn unescape(e: char, chars: &mut std::str::CharIndices<'_>, pos: usize) -> Result<char, LexError> {
    let mut hex = |n: usize| -> Result<char, LexError> {
        let mut value = 0u32;
        for _ in 0..n {
            let digit = chars.next().and_then(|(_, c)| c.to_digit(16));
            let Some(digit) = digit else {
                return err(pos, "invalid syntax");
            };
            value = value * 16 + digit;
        }
        char::from_u32(value).map_or_else(|| err(pos, "invalid syntax"), Ok)
    };
    Ok(match e {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'v' => '\x0b',
        '\\' => '\\',
        '"' => '"',
        '\'' => '\'',
        'x' => hex(2)?,
        'u' => hex(4)?,
        'U' => hex(8)?,
        '0'..='7' => {
            let mut value = e as u32 - '0' as u32;
            for _ in 0..2 {
                let digit = chars.next().and_then(|(_, c)| c.to_digit(8));
                let Some(digit) = digit else {
                    return err(pos, "invalid syntax");
                };
                value = value * 8 + digit;
            }
            char::from_u32(value).map_or_else(|| err(pos, "invalid syntax"), Ok)?
        }
        _ => return err(pos, "invalid syntax"),
    })
}
