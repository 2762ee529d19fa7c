//! The evaluator: walks the parsed template over a `serde_json::Value` with Go's semantics
//! for dot, variables and their scopes, fields of maps, pipelines and control structures.

use std::fmt::Display;

use serde_json::Value;

use super::funcs::{self, FuncError, Val};
use super::gofmt;
use super::parse::{Arg, Branch, Command, Node, Pipe};
use super::{MAX_OUTPUT_BYTES, MAX_RANGE_ITERATIONS};

/// An execution error at a node (byte offset and Go's rendering of the node).
#[derive(Debug)]
pub(super) struct ExecError {
    pub(super) pos: usize,
    pub(super) context: String,
    pub(super) message: String,
}

fn err<T>(pos: usize, context: impl Display, message: impl Into<String>) -> Result<T, ExecError> {
    Err(ExecError {
        pos,
        context: context.to_string(),
        message: message.into(),
    })
}

/// Execution switches (see [`super::Template`]'s builder methods).
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    pub(super) missing_key_error: bool,
    pub(super) row_json_escapes_html: bool,
}

/// Runs `nodes` with `data` as both `.` and `$`.
pub(super) fn execute(nodes: &[Node], data: &Value, options: Options) -> Result<String, ExecError> {
    let mut exec = Exec {
        vars: vec![("$", Val::Ref(data))],
        out: String::new(),
        root: data,
        iterations: 0,
        missing_key_error: options.missing_key_error,
        row_json_escapes_html: options.row_json_escapes_html,
    };
    exec.walk(nodes, &Val::Ref(data))?;
    Ok(exec.out)
}

/// How a list of nodes ended.
#[derive(PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a, 't> {
    /// Variables in scope, innermost last.
    vars: Vec<(&'t str, Val<'a>)>,
    out: String,
    root: &'a Value,
    iterations: u64,
    missing_key_error: bool,
    row_json_escapes_html: bool,
}

impl<'a, 't> Exec<'a, 't> {
    fn walk(&mut self, nodes: &'t [Node], dot: &Val<'a>) -> Result<Flow, ExecError> {
        for node in nodes {
            let flow = match node {
                Node::Text(text) => {
                    self.write(text)?;
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let value = self.pipe(pipe, dot, true)?;
                    if pipe.decls.is_empty() {
                        let text = match value.non_nil() {
                            None => "<no value>".to_owned(),
                            Some(v) => gofmt::v_string(Some(v)),
                        };
                        self.write(&text)?;
                    }
                    Flow::Normal
                }
                Node::If(branch) => self.if_or_with(branch, dot, false)?,
                Node::With(branch) => self.if_or_with(branch, dot, true)?,
                Node::Range(branch) => self.range(branch, dot)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn write(&mut self, text: &str) -> Result<(), ExecError> {
        if self.out.len() + text.len() > MAX_OUTPUT_BYTES {
            return err(
                0,
                "",
                format!("template output exceeds {MAX_OUTPUT_BYTES} bytes"),
            );
        }
        self.out.push_str(text);
        Ok(())
    }

    fn if_or_with(
        &mut self,
        branch: &'t Branch,
        dot: &Val<'a>,
        is_with: bool,
    ) -> Result<Flow, ExecError> {
        let mark = self.vars.len();
        let value = self.pipe(&branch.pipe, dot, true)?;
        let flow = if !value.truth() {
            self.walk(&branch.otherwise, dot)?
        } else if is_with {
            self.walk(&branch.body, &value)?
        } else {
            self.walk(&branch.body, dot)?
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range(&mut self, branch: &'t Branch, dot: &Val<'a>) -> Result<Flow, ExecError> {
        let mark = self.vars.len();
        let value = self.pipe(&branch.pipe, dot, false)?;
        let pos = branch.pipe.cmds.first().map_or(0, |c| c.pos);
        let mut ran = false;
        match value {
            Val::Missing | Val::Ref(Value::Null) | Val::Own(Value::Null) => {}
            Val::Ref(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    ran = true;
                    let flow = self.iteration(branch, Val::Own(Value::from(i)), Val::Ref(item))?;
                    if flow == Flow::Break {
                        break;
                    }
                }
            }
            Val::Own(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    ran = true;
                    let flow = self.iteration(branch, Val::Own(Value::from(i)), Val::Own(item))?;
                    if flow == Flow::Break {
                        break;
                    }
                }
            }
            Val::Ref(Value::Object(map)) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for key in keys {
                    let item = map.get(key).map_or(Val::Missing, Val::Ref);
                    ran = true;
                    let flow =
                        self.iteration(branch, Val::Own(Value::String(key.clone())), item)?;
                    if flow == Flow::Break {
                        break;
                    }
                }
            }
            Val::Own(Value::Object(map)) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                for (key, item) in entries {
                    ran = true;
                    let flow =
                        self.iteration(branch, Val::Own(Value::String(key)), Val::Own(item))?;
                    if flow == Flow::Break {
                        break;
                    }
                }
            }
            Val::Ref(Value::Number(n)) if !n.is_f64() => {
                ran = self.range_int(branch, n.as_i64().unwrap_or(0), pos)?;
            }
            Val::Own(Value::Number(n)) if !n.is_f64() => {
                ran = self.range_int(branch, n.as_i64().unwrap_or(0), pos)?;
            }
            other => {
                let shown = gofmt::v_string(other.non_nil());
                let context = branch.pipe.cmds.first().map(ToString::to_string);
                let context = context.unwrap_or_default();
                return err(pos, context, format!("range can't iterate over {shown}"));
            }
        }
        if !ran {
            self.walk(&branch.otherwise, dot)?;
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    /// Go 1.22's range over an integer: 0..count; returns whether the body ran.
    fn range_int(&mut self, branch: &'t Branch, count: i64, pos: usize) -> Result<bool, ExecError> {
        if branch.pipe.decls.len() > 1 {
            let context = branch.pipe.cmds.first().map(ToString::to_string);
            let context = context.unwrap_or_default();
            return err(
                pos,
                &context,
                format!("can't use {count} to iterate over more than one variable"),
            );
        }
        for i in 0..count {
            let i = Val::Own(Value::from(i));
            if self.iteration(branch, i.clone(), i)? == Flow::Break {
                break;
            }
        }
        Ok(count > 0)
    }

    /// One pass of a range body with `.` (and the declared variables) set.
    fn iteration(
        &mut self,
        branch: &'t Branch,
        key: Val<'a>,
        item: Val<'a>,
    ) -> Result<Flow, ExecError> {
        self.iterations += 1;
        if self.iterations > MAX_RANGE_ITERATIONS {
            let pos = branch.pipe.cmds.first().map_or(0, |c| c.pos);
            let context = branch.pipe.cmds.first().map(ToString::to_string);
            return err(
                pos,
                context.unwrap_or_default(),
                format!("range exceeds {MAX_RANGE_ITERATIONS} iterations"),
            );
        }
        let mark = self.vars.len();
        let decls = &branch.pipe.decls;
        let bound: Vec<Val<'a>> = match decls.len() {
            0 => Vec::new(),
            1 => vec![item.clone()],
            _ => vec![key, item.clone()],
        };
        for (name, value) in decls.iter().zip(bound) {
            if branch.pipe.is_assign {
                self.set_var(name, value, &branch.pipe)?;
            } else {
                self.vars.push((name, value));
            }
        }
        let flow = self.walk(&branch.body, &item)?;
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn set_var(&mut self, name: &'t str, value: Val<'a>, pipe: &Pipe) -> Result<(), ExecError> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = value;
                Ok(())
            }
            None => err(
                pipe.cmds.first().map_or(0, |c| c.pos),
                pipe,
                format!("undefined variable: {name}"),
            ),
        }
    }

    fn pipe(&mut self, pipe: &'t Pipe, dot: &Val<'a>, declare: bool) -> Result<Val<'a>, ExecError> {
        let mut value: Option<Val<'a>> = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(cmd, dot, value.take())?);
        }
        let value = value.unwrap_or(Val::Missing);
        if declare {
            for name in &pipe.decls {
                if pipe.is_assign {
                    self.set_var(name, value.clone(), pipe)?;
                } else {
                    self.vars.push((name, value.clone()));
                }
            }
        }
        Ok(value)
    }

    fn command(
        &mut self,
        cmd: &'t Command,
        dot: &Val<'a>,
        last: Option<Val<'a>>,
    ) -> Result<Val<'a>, ExecError> {
        let Some(first) = cmd.args.first() else {
            return Ok(Val::Missing);
        };
        if let Arg::Func { pos, name } = first {
            return self.call(name, *pos, (cmd.pos, cmd), &cmd.args[1..], dot, last);
        }
        if cmd.args.len() > 1 || last.is_some() {
            return match first {
                Arg::Field { pos, names } => err(
                    *pos,
                    first,
                    format!(
                        "{} is not a method but has arguments",
                        names.last().map_or("", String::as_str)
                    ),
                ),
                other => err(
                    other.pos(),
                    other,
                    format!("can't give argument to non-function {other}"),
                ),
            };
        }
        if let Arg::Nil { pos } = first {
            return err(*pos, first, "nil is not a command");
        }
        self.arg(first, dot)
    }

    fn arg(&mut self, arg: &'t Arg, dot: &Val<'a>) -> Result<Val<'a>, ExecError> {
        Ok(match arg {
            Arg::Dot { .. } => dot.clone(),
            Arg::Field { names, .. } => self.fields(dot.clone(), names, arg)?,
            Arg::Var { name, names, pos } => {
                let Some((_, value)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return err(*pos, arg, format!("undefined variable: {name}"));
                };
                let value = value.clone();
                self.fields(value, names, arg)?
            }
            Arg::Paren { pipe, names, .. } => {
                let value = self.pipe(pipe, dot, true)?;
                self.fields(value, names, arg)?
            }
            Arg::Func { pos, name } => self.call(name, *pos, (*pos, arg), &[], dot, None)?,
            Arg::Str { value, .. } => Val::Own(Value::String(value.clone())),
            Arg::Num { value, .. } => Val::Own(Value::Number(value.clone())),
            Arg::Bool { value, .. } => Val::Own(Value::Bool(*value)),
            Arg::Nil { .. } => Val::Own(Value::Null),
        })
    }

    fn fields(
        &self,
        mut value: Val<'a>,
        names: &[String],
        node: &Arg,
    ) -> Result<Val<'a>, ExecError> {
        for name in names {
            value = self.field(value, name, node)?;
        }
        Ok(value)
    }

    /// Go's `evalField` on decoded JSON: map lookups; anything else has no fields.
    fn field(&self, receiver: Val<'a>, name: &str, node: &Arg) -> Result<Val<'a>, ExecError> {
        let missing = || {
            if self.missing_key_error {
                err(
                    node.pos(),
                    node,
                    format!("map has no entry for key {name:?}"),
                )
            } else {
                Ok(Val::Missing)
            }
        };
        match receiver {
            Val::Missing if self.missing_key_error => err(
                node.pos(),
                node,
                format!("nil data; no entry for key {name:?}"),
            ),
            Val::Missing => Ok(Val::Missing),
            Val::Ref(Value::Null) | Val::Own(Value::Null) => err(
                node.pos(),
                node,
                format!("nil pointer evaluating interface {{}}.{name}"),
            ),
            Val::Ref(Value::Object(map)) => map.get(name).map_or_else(missing, |v| Ok(Val::Ref(v))),
            Val::Own(Value::Object(mut map)) => {
                map.remove(name).map_or_else(missing, |v| Ok(Val::Own(v)))
            }
            _ => err(
                node.pos(),
                node,
                format!("can't evaluate field {name} in type interface {{}}"),
            ),
        }
    }

    /// Calls a function; `site` is the command (or operand) errors from inside it point at.
    fn call(
        &mut self,
        name: &str,
        pos: usize,
        site: (usize, &dyn Display),
        args: &'t [Arg],
        dot: &Val<'a>,
        last: Option<Val<'a>>,
    ) -> Result<Val<'a>, ExecError> {
        if name == "and" || name == "or" {
            let count = args.len() + usize::from(last.is_some());
            if count == 0 {
                return err(
                    pos,
                    name,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let stop_on = name == "or";
            let mut result = Val::Missing;
            for arg in args {
                result = self.arg(arg, dot)?;
                if result.truth() == stop_on {
                    return Ok(result);
                }
            }
            return Ok(last.unwrap_or(result));
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.arg(arg, dot)?);
        }
        values.extend(last);
        if name == "json" && self.row_json_escapes_html {
            if let [Val::Ref(v)] = values.as_slice() {
                if std::ptr::eq(*v, self.root) {
                    let text = funcs::call(name, &values)
                        .ok()
                        .and_then(|v| v.value().and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_default();
                    let escaped = text
                        .replace('<', "\\u003c")
                        .replace('>', "\\u003e")
                        .replace('&', "\\u0026");
                    return Ok(Val::Own(Value::String(escaped)));
                }
            }
        }
        funcs::call(name, &values).or_else(|e| match e {
            FuncError::Args { want, got } => err(
                pos,
                name,
                format!("wrong number of args for {name}: want {want} got {got}"),
            ),
            FuncError::Call(message) => {
                err(site.0, site.1, format!("error calling {name}: {message}"))
            }
            FuncError::Type { index, expected } => {
                let value = values.get(index).and_then(Val::non_nil);
                let message = match (args.get(index), value) {
                    (Some(node @ (Arg::Str { .. } | Arg::Num { .. } | Arg::Bool { .. })), _) => {
                        match expected {
                            "string" => format!("expected string; found {node}"),
                            "int" => format!("expected integer; found {node}"),
                            _ => format!("can't handle {node} for arg of type {expected}"),
                        }
                    }
                    (_, None) => format!("invalid value; expected {expected}"),
                    (_, Some(v)) => format!(
                        "wrong type for value; expected {expected}; got {}",
                        gofmt::go_type(Some(v))
                    ),
                };
                match args.get(index) {
                    Some(node) => err(node.pos(), node, message),
                    None => err(site.0, site.1, message),
                }
            }
        })
    }
}
