//! The parser: turns lexed items into a tree of text, actions and control structures, and
//! checks what Go checks at parse time (known functions, declared variables, `break` inside
//! `range`, executable pipeline stages).

use std::fmt;

use serde_json::Number;

use super::funcs;
use super::lex::{Item, Tok, Token};
use super::MAX_NESTING;

/// A node of the parsed template.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Break,
    Continue,
}

/// A control structure: its pipeline, its body and its `else` part.
#[derive(Debug, Clone)]
pub(super) struct Branch {
    pub(super) pipe: Pipe,
    pub(super) body: Vec<Node>,
    pub(super) otherwise: Vec<Node>,
}

/// `[$a[, $b] (:=|=)] command [| command]...`
#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub(super) decls: Vec<String>,
    pub(super) is_assign: bool,
    pub(super) cmds: Vec<Command>,
}

/// One stage of a pipeline: a function call or a single operand.
#[derive(Debug, Clone)]
pub(super) struct Command {
    pub(super) pos: usize,
    pub(super) args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Dot {
        pos: usize,
    },
    Field {
        pos: usize,
        names: Vec<String>,
    },
    Var {
        pos: usize,
        name: String,
        names: Vec<String>,
    },
    Func {
        pos: usize,
        name: String,
    },
    Str {
        pos: usize,
        value: String,
        text: String,
    },
    Num {
        pos: usize,
        value: Number,
        text: String,
    },
    Bool {
        pos: usize,
        value: bool,
    },
    Nil {
        pos: usize,
    },
    Paren {
        pos: usize,
        pipe: Box<Pipe>,
        names: Vec<String>,
    },
}

impl Arg {
    pub(super) fn pos(&self) -> usize {
        match self {
            Arg::Dot { pos }
            | Arg::Field { pos, .. }
            | Arg::Var { pos, .. }
            | Arg::Func { pos, .. }
            | Arg::Str { pos, .. }
            | Arg::Num { pos, .. }
            | Arg::Bool { pos, .. }
            | Arg::Nil { pos }
            | Arg::Paren { pos, .. } => *pos,
        }
    }
}

fn write_fields(f: &mut fmt::Formatter<'_>, names: &[String]) -> fmt::Result {
    names.iter().try_for_each(|n| write!(f, ".{n}"))
}

impl fmt::Display for Arg {
    /// Go's `Node.String()`, used in execution errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Dot { .. } => f.write_str("."),
            Arg::Field { names, .. } => write_fields(f, names),
            Arg::Var { name, names, .. } => {
                f.write_str(name)?;
                write_fields(f, names)
            }
            Arg::Func { name, .. } => f.write_str(name),
            Arg::Str { text, .. } | Arg::Num { text, .. } => f.write_str(text),
            Arg::Bool { value, .. } => write!(f, "{value}"),
            Arg::Nil { .. } => f.write_str("nil"),
            Arg::Paren { pipe, names, .. } => {
                write!(f, "({pipe})")?;
                write_fields(f, names)
            }
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decls.is_empty() {
            f.write_str(&self.decls.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

/// A parse error at a byte offset.
#[derive(Debug)]
pub(super) struct ParseError {
    pub(super) pos: usize,
    pub(super) message: String,
}

fn err<T>(pos: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        pos,
        message: message.into(),
    })
}

/// Go's "unexpected X in CONTEXT", or the lexing error the token carries.
fn unexpected<T>(t: &Token, context: &str) -> Result<T, ParseError> {
    match &t.tok {
        Tok::Error(message) => err(t.pos, message.clone()),
        _ => err(t.pos, format!("unexpected {t} in {context}")),
    }
}

/// Parses the lexed template into its top-level nodes.
pub(super) fn parse(items: Vec<Item>) -> Result<Vec<Node>, ParseError> {
    let mut parser = Parser {
        items: items.into_iter(),
        vars: vec!["$".to_owned()],
        range_depth: 0,
        depth: 0,
        end_pos: 0,
    };
    let (nodes, stop) = parser.list()?;
    match stop {
        Stop::Eof => Ok(nodes),
        Stop::End { pos } => err(pos, "unexpected {{end}}"),
        Stop::Else { pos, .. } => err(pos, "unexpected {{else}}"),
    }
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End { pos: usize },
    Else { pos: usize, rest: Vec<Token> },
}

#[derive(Clone, Copy, PartialEq)]
enum Control {
    If,
    Range,
    With,
}

impl Control {
    fn name(self) -> &'static str {
        match self {
            Control::If => "if",
            Control::Range => "range",
            Control::With => "with",
        }
    }
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    /// Where the last action started, for errors at the end of input.
    end_pos: usize,
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), ParseError> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (tokens, pos) = match item {
                Item::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Item::Action { tokens, pos } => (tokens, pos),
            };
            self.end_pos = pos;
            let Some(first) = tokens.first() else {
                return err(pos, "missing value for command");
            };
            match first.tok {
                Tok::If => nodes.push(self.control(Control::If, &tokens[1..], pos)?),
                Tok::Range => nodes.push(self.control(Control::Range, &tokens[1..], pos)?),
                Tok::With => nodes.push(self.control(Control::With, &tokens[1..], pos)?),
                Tok::End => {
                    if let Some(extra) = tokens.get(1) {
                        return unexpected(extra, "end");
                    }
                    return Ok((nodes, Stop::End { pos }));
                }
                Tok::Else => {
                    let rest = tokens[1..].to_vec();
                    return Ok((nodes, Stop::Else { pos, rest }));
                }
                Tok::Break | Tok::Continue => {
                    let name = &first.text;
                    if self.range_depth == 0 {
                        return err(pos, format!("{{{{{name}}}}} outside {{{{range}}}}"));
                    }
                    if let Some(extra) = tokens.get(1) {
                        return unexpected(extra, &format!("{{{{{name}}}}}"));
                    }
                    nodes.push(if first.tok == Tok::Break {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                Tok::Define | Tok::Template | Tok::Block => {
                    return err(pos, format!("{{{{{}}}}} is not supported", first.text));
                }
                _ => {
                    let pipe = self.pipeline(&tokens, pos, "command", false)?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn control(&mut self, kind: Control, tokens: &[Token], pos: usize) -> Result<Node, ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return err(pos, "max nesting depth exceeded");
        }
        let mark = self.vars.len();
        let pipe = self.pipeline(tokens, pos, kind.name(), kind == Control::Range)?;
        if kind == Control::Range {
            self.range_depth += 1;
        }
        let (body, stop) = self.list()?;
        if kind == Control::Range {
            self.range_depth -= 1;
        }
        let otherwise = match stop {
            Stop::Eof => return err(self.end_pos, "unexpected EOF"),
            Stop::End { .. } => Vec::new(),
            Stop::Else { pos, rest } => match rest.first().map(|t| &t.tok) {
                None => {
                    let (otherwise, stop) = self.list()?;
                    match stop {
                        Stop::End { .. } => otherwise,
                        Stop::Eof => return err(self.end_pos, "unexpected EOF"),
                        Stop::Else { pos, .. } => return err(pos, "expected end; found {{else}}"),
                    }
                }
                // `{{else if ...}}` is `{{else}}{{if ...}}...{{end}}` sharing the outer end.
                Some(Tok::If) if kind == Control::If => {
                    vec![self.control(kind, &rest[1..], pos)?]
                }
                Some(Tok::With) if kind == Control::With => {
                    vec![self.control(kind, &rest[1..], pos)?]
                }
                Some(_) => return unexpected(&rest[0], "input"),
            },
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        let branch = Branch {
            pipe,
            body,
            otherwise,
        };
        Ok(match kind {
            Control::If => Node::If(branch),
            Control::Range => Node::Range(branch),
            Control::With => Node::With(branch),
        })
    }

    /// A whole action's pipeline (declarations allowed).
    fn pipeline(
        &mut self,
        tokens: &[Token],
        pos: usize,
        context: &str,
        two_decls: bool,
    ) -> Result<Pipe, ParseError> {
        let mut i = 0;
        let pipe = self.pipe_at(tokens, &mut i, pos, context, two_decls, false)?;
        if let Some(t) = tokens.get(i) {
            return unexpected(t, context);
        }
        Ok(pipe)
    }

    /// A pipeline starting at `tokens[*i]`, up to the end or (inside parentheses) a `)`.
    fn pipe_at(
        &mut self,
        tokens: &[Token],
        i: &mut usize,
        pos: usize,
        context: &str,
        two_decls: bool,
        in_paren: bool,
    ) -> Result<Pipe, ParseError> {
        let (decls, is_assign) = self.declarations(tokens, i, context, two_decls)?;
        let mut cmds = Vec::new();
        loop {
            let cmd = self.command(tokens, i)?;
            match cmd {
                Some(cmd) => cmds.push(cmd),
                None if cmds.is_empty() => {
                    let at = tokens.get(*i).map_or(pos, |t| t.pos);
                    return err(at, format!("missing value for {context}"));
                }
                None => {
                    let at = tokens.get(*i).map_or(pos, |t| t.pos);
                    return err(at, "missing command");
                }
            }
            match tokens.get(*i).map(|t| &t.tok) {
                Some(Tok::Pipe) => *i += 1,
                Some(Tok::RightParen) if in_paren => break,
                Some(_) => return unexpected(&tokens[*i], "operand"),
                None => break,
            }
        }
        for (stage, cmd) in cmds.iter().enumerate().skip(1) {
            if let Some(
                Arg::Bool { .. }
                | Arg::Dot { .. }
                | Arg::Nil { .. }
                | Arg::Num { .. }
                | Arg::Str { .. },
            ) = cmd.args.first()
            {
                return err(
                    cmd.pos,
                    format!("non executable command in pipeline stage {}", stage + 1),
                );
            }
        }
        Ok(Pipe {
            decls,
            is_assign,
            cmds,
        })
    }

    /// `$x :=`, `$x =` or (in range) `$i, $x :=` at the start of a pipeline.
    fn declarations(
        &mut self,
        tokens: &[Token],
        i: &mut usize,
        context: &str,
        two_decls: bool,
    ) -> Result<(Vec<String>, bool), ParseError> {
        let var_at = |k: usize| match tokens.get(k) {
            Some(Token {
                tok: Tok::Var(name),
                ..
            }) if tokens
                .get(k + 1)
                .is_none_or(|t| t.space_before || !matches!(t.tok, Tok::Field(_))) =>
            {
                Some(name.clone())
            }
            _ => None,
        };
        let is_decl = |k: usize| match tokens.get(k).map(|t| &t.tok) {
            Some(Tok::Declare) => Some(false),
            Some(Tok::Assign) => Some(true),
            _ => None,
        };
        let start = *i;
        let Some(first) = var_at(start) else {
            return Ok((Vec::new(), false));
        };
        let mut decls = vec![first];
        let mut k = start + 1;
        if tokens.get(k).map(|t| &t.tok) == Some(&Tok::Comma) {
            if !two_decls {
                return err(tokens[k].pos, format!("too many declarations in {context}"));
            }
            let Some(second) = var_at(k + 1) else {
                return Ok((Vec::new(), false));
            };
            decls.push(second);
            k += 2;
        }
        let Some(is_assign) = is_decl(k) else {
            return Ok((Vec::new(), false));
        };
        for (n, name) in decls.iter().enumerate() {
            if is_assign {
                self.check_var(name, tokens[start + 2 * n].pos)?;
            } else {
                self.vars.push(name.clone());
            }
        }
        *i = k + 1;
        Ok((decls, is_assign))
    }

    fn check_var(&self, name: &str, pos: usize) -> Result<(), ParseError> {
        if self.vars.iter().any(|v| v == name) {
            Ok(())
        } else {
            err(pos, format!("undefined variable {name:?}"))
        }
    }

    /// Operands up to `|`, `)` or the end; `None` when there are none.
    fn command(&mut self, tokens: &[Token], i: &mut usize) -> Result<Option<Command>, ParseError> {
        let mut args = Vec::new();
        while let Some(t) = tokens.get(*i) {
            if matches!(t.tok, Tok::Pipe | Tok::RightParen) {
                break;
            }
            if !args.is_empty() && !t.space_before {
                return unexpected(t, "operand");
            }
            args.push(self.operand(tokens, i)?);
        }
        Ok(args.first().map(Arg::pos).map(|pos| Command { pos, args }))
    }

    /// One term and the field chain glued to it.
    fn operand(&mut self, tokens: &[Token], i: &mut usize) -> Result<Arg, ParseError> {
        let t = &tokens[*i];
        *i += 1;
        let pos = t.pos;
        let mut arg = match &t.tok {
            Tok::Dot => Arg::Dot { pos },
            Tok::Field(name) => Arg::Field {
                pos,
                names: vec![name.clone()],
            },
            Tok::Var(name) => {
                self.check_var(name, pos)?;
                Arg::Var {
                    pos,
                    name: name.clone(),
                    names: Vec::new(),
                }
            }
            Tok::Ident(name) => {
                if !funcs::exists(name) {
                    return err(pos, format!("function {name:?} not defined"));
                }
                Arg::Func {
                    pos,
                    name: name.clone(),
                }
            }
            Tok::Str(value) => Arg::Str {
                pos,
                value: value.clone(),
                text: t.text.clone(),
            },
            Tok::Num(text) => Arg::Num {
                pos,
                value: number(text).ok_or_else(|| ParseError {
                    pos,
                    message: format!("illegal number syntax: {text:?}"),
                })?,
                text: text.clone(),
            },
            Tok::Char(c) => Arg::Num {
                pos,
                value: Number::from(*c),
                text: t.text.clone(),
            },
            Tok::Bool(value) => Arg::Bool { pos, value: *value },
            Tok::Nil => Arg::Nil { pos },
            Tok::LeftParen => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return err(pos, "max nesting depth exceeded");
                }
                let pipe = self.pipe_at(tokens, i, pos, "parenthesized pipeline", false, true)?;
                self.depth -= 1;
                match tokens.get(*i) {
                    Some(Token {
                        tok: Tok::RightParen,
                        ..
                    }) => *i += 1,
                    _ => return err(pos, "unclosed left paren"),
                }
                Arg::Paren {
                    pos,
                    pipe: Box::new(pipe),
                    names: Vec::new(),
                }
            }
            Tok::Error(message) => return err(pos, message.clone()),
            _ => return err(pos, format!("unexpected {t} in operand")),
        };
        while let Some(Token {
            tok: Tok::Field(name),
            space_before: false,
            pos: field_pos,
            ..
        }) = tokens.get(*i)
        {
            match &mut arg {
                Arg::Field { names, pos } | Arg::Var { names, pos, .. } => {
                    // Go reports a chained field at its last element.
                    *pos = *field_pos;
                    names.push(name.clone());
                }
                Arg::Paren { names, .. } => names.push(name.clone()),
                other => {
                    let term = other.to_string();
                    return err(*field_pos, format!("unexpected . after term {term:?}"));
                }
            }
            *i += 1;
        }
        Ok(arg)
    }
}

/// A number literal: with `.`, `e` or `E` (not hex) a float, otherwise an integer, as Go's
/// `idealConstant` decides.
fn number(text: &str) -> Option<Number> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (negative, unsigned) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        let value = i64::from_str_radix(hex, 16).ok()?;
        return Some(Number::from(if negative { -value } else { value }));
    }
    if unsigned.contains(['.', 'e', 'E']) {
        let value: f64 = unsigned.parse().ok()?;
        return Number::from_f64(if negative { -value } else { value });
    }
    if negative {
        return clean.parse::<i64>().ok().map(Number::from);
    }
    match unsigned.parse::<i64>() {
        Ok(v) => Some(Number::from(v)),
        Err(_) => unsigned.parse::<u64>().ok().map(Number::from),
    }
}
