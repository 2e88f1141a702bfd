//! Conditions: CEL expressions (the Common Expression Language) over a ticket and its
//! requester, for rules (`condition`) and process stages (`when`).
//!
//! An expression is compiled when the rule or process is saved, so a typo is a 422 naming the
//! field and the position, and compiled programs are cached by their text. Evaluation is
//! bounded: an expression is at most [`MAX_SOURCE`] bytes, nests at most
//! [`MAX_COMPREHENSION_DEPTH`] list macros (`all`, `exists`, `map`, `filter`…), and any list
//! it can iterate holds at most [`MAX_LIST`] items, so the work one evaluation does is bounded
//! by the size of the expression, not by what the host sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Context, Program, Value as Cel};
use serde_json::{Map, Value};

use super::validate::{Faults, join};

/// Longest expression accepted, in bytes.
pub const MAX_SOURCE: usize = 4096;
/// List macros nested deeper than this are refused when the expression is saved.
pub const MAX_COMPREHENSION_DEPTH: usize = 2;
/// A ticket list longer than this makes the evaluation fail (the stage runs, the rule does
/// not match) rather than iterate it.
pub const MAX_LIST: usize = 1000;
/// Compiled programs kept; the cache is emptied when it fills.
const CACHE_SIZE: usize = 1024;

/// Why an expression does not compile, with where (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "is not a valid CEL expression: line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

fn cache() -> &'static Mutex<HashMap<String, Arc<Program>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Program>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Compiles `source` (or takes it from the cache), refusing what evaluation could not bound.
pub fn compile(source: &str) -> Result<Arc<Program>, CompileError> {
    if let Some(p) = cache().lock().ok().and_then(|c| c.get(source).cloned()) {
        return Ok(p);
    }
    let at_start = |message: String| CompileError {
        line: 1,
        column: 1,
        message,
    };
    if source.trim().is_empty() {
        return Err(at_start("the expression is empty".into()));
    }
    if source.len() > MAX_SOURCE {
        return Err(at_start(format!(
            "the expression is longer than {MAX_SOURCE} bytes"
        )));
    }
    let program = Program::compile(source).map_err(|errors| {
        let first = errors.errors.first();
        CompileError {
            line: first.map_or(1, |e| e.pos.0.max(1) as usize),
            column: first.map_or(1, |e| e.pos.1.max(0) as usize + 1),
            message: first.map_or_else(|| "syntax error".into(), |e| e.msg.clone()),
        }
    })?;
    let depth = comprehension_depth(program.expression());
    if depth > MAX_COMPREHENSION_DEPTH {
        return Err(at_start(format!(
            "list macros (all, exists, map, filter…) nest {depth} deep; at most \
             {MAX_COMPREHENSION_DEPTH} are allowed"
        )));
    }
    let program = Arc::new(program);
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CACHE_SIZE {
            c.clear();
        }
        c.insert(source.to_string(), program.clone());
    }
    Ok(program)
}

/// How deeply comprehensions (what list macros expand to) nest in `e`.
fn comprehension_depth(e: &IdedExpr) -> usize {
    let deepest = |items: &mut dyn Iterator<Item = &IdedExpr>| {
        items.map(comprehension_depth).max().unwrap_or(0)
    };
    match &e.expr {
        Expr::Comprehension(c) => {
            let inner = [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ];
            1 + deepest(&mut inner.into_iter())
        }
        Expr::Call(call) => deepest(&mut call.target.iter().map(|t| &**t).chain(&call.args)),
        Expr::List(list) => deepest(&mut list.elements.iter()),
        Expr::Select(s) => comprehension_depth(&s.operand),
        Expr::Map(m) => deepest(&mut m.entries.iter().flat_map(|en| entry_parts(&en.expr))),
        Expr::Struct(s) => deepest(&mut s.entries.iter().flat_map(|en| entry_parts(&en.expr))),
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => 0,
    }
}

fn entry_parts(e: &EntryExpr) -> Vec<&IdedExpr> {
    match e {
        EntryExpr::StructField(f) => vec![&f.value],
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
    }
}

/// Reads an optional condition at `path.key`, compiling it: a fault names the field and the
/// position. Newlines and tabs are allowed; other control characters are not.
pub fn read(f: &mut Faults, m: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
    let s: String = f.opt(m, path, key)?;
    let field = join(path, key);
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        f.push(
            field,
            "must not contain control characters other than newlines and tabs",
        );
        return None;
    }
    match compile(&s) {
        Ok(_) => Some(s),
        Err(e) => {
            f.push(field, e.to_string());
            None
        }
    }
}

/// What a condition is evaluated over: `ticket` (id, title, status, requester_id,
/// attributes) and `requester` (the requester's principal, or null).
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub ticket: Value,
    pub requester: Value,
}

/// Evaluates `source` over `facts`: true or false, or why it could not say.
pub fn evaluate(source: &str, facts: &Facts) -> Result<bool, String> {
    evaluate_over(
        source,
        &[("ticket", &facts.ticket), ("requester", &facts.requester)],
    )
}

/// Evaluates `source` over named JSON values (a host action's `when` over `event`).
pub fn evaluate_over(source: &str, vars: &[(&str, &Value)]) -> Result<bool, String> {
    let program = compile(source).map_err(|e| e.to_string())?;
    let mut context = Context::default();
    for (name, value) in vars {
        context.add_variable_from_value(*name, to_cel(value)?);
    }
    match program.execute(&context) {
        Ok(Cel::Bool(b)) => Ok(b),
        Ok(other) => Err(format!(
            "the expression gave {} where true or false was needed",
            type_name(&other)
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn type_name(v: &Cel) -> &'static str {
    match v {
        Cel::List(_) => "a list",
        Cel::Map(_) => "a map",
        Cel::Int(_) | Cel::UInt(_) => "an integer",
        Cel::Float(_) => "a number",
        Cel::String(_) => "a string",
        Cel::Bytes(_) => "bytes",
        Cel::Null => "null",
        _ => "a value",
    }
}

/// JSON as CEL sees it: integers are `int`, other numbers `double`, objects maps.
fn to_cel(v: &Value) -> Result<Cel, String> {
    Ok(match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cel::Int(i),
            None => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => {
            if items.len() > MAX_LIST {
                return Err(format!(
                    "a list of the ticket holds {} items; conditions read at most {MAX_LIST}",
                    items.len()
                ));
            }
            Cel::List(Arc::new(
                items.iter().map(to_cel).collect::<Result<_, _>>()?,
            ))
        }
        Value::Object(m) => {
            let mut map: HashMap<String, Cel> = HashMap::with_capacity(m.len());
            for (k, v) in m {
                map.insert(k.clone(), to_cel(v)?);
            }
            Cel::from(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(attributes: Value) -> Facts {
        Facts {
            ticket: json!({"id": "T-1", "title": "New laptop", "status": "new",
                           "requester_id": "u-7", "attributes": attributes}),
            requester: json!({"id": "u-7", "display_name": "Ada", "roles": ["engineer"]}),
        }
    }

    #[test]
    fn the_seed_conditions_evaluate_over_ticket_and_requester() {
        let f = facts(json!({"service_subcategory": "laptops", "amount": 1800, "tags": ["it"]}));
        let table = [
            ("ticket.attributes.service_subcategory == 'laptops'", true),
            ("ticket.attributes.amount > 100", true),
            ("ticket.attributes.amount > 100.5", true),
            ("ticket.attributes.amount > 2000", false),
            ("'engineer' in requester.roles", true),
            ("'manager' in requester.roles", false),
            (
                "'it' in ticket.attributes.tags && ticket.status == 'new'",
                true,
            ),
            ("has(ticket.attributes.price)", false),
            ("ticket.attributes.tags.exists(t, t.startsWith('i'))", true),
        ];
        for (expr, want) in table {
            assert_eq!(evaluate(expr, &f), Ok(want), "{expr}");
        }
        let fractional = facts(json!({"amount": 100.25}));
        assert_eq!(
            evaluate("ticket.attributes.amount > 100", &fractional),
            Ok(true)
        );
    }

    #[test]
    fn what_cannot_be_evaluated_is_an_error_not_false() {
        let f = facts(json!({}));
        for expr in [
            "ticket.attributes.amount > 100",
            "ticket.title",
            "ticket.attributes.x.y == 1",
            "requester.roles > 1",
        ] {
            assert!(evaluate(expr, &f).is_err(), "{expr}");
        }
        let nobody = Facts {
            requester: Value::Null,
            ..facts(json!({}))
        };
        assert!(evaluate("'x' in requester.roles", &nobody).is_err());
        assert_eq!(evaluate("requester == null", &nobody), Ok(true));
    }

    #[test]
    fn compile_errors_carry_their_position() {
        let e = compile("ticket.attributes.amount >").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.column > 1, "{e:?}");
        let e = compile("ticket.status == 'new' &&\n  ticket.attributes.(").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(compile("").is_err());
        assert!(compile(&"1 + ".repeat(2000)).is_err());
    }

    #[test]
    fn evaluation_is_bounded_by_the_expression_not_the_ticket() {
        let three = "ticket.attributes.l.all(a, ticket.attributes.l.all(b, \
                     ticket.attributes.l.all(c, a + b + c > 0)))";
        assert!(compile(three).is_err());
        let two = "ticket.attributes.l.all(a, ticket.attributes.l.all(b, a + b >= 0))";
        assert!(compile(two).is_ok());
        let many: Vec<i64> = (0..(MAX_LIST as i64 + 1)).collect();
        assert!(evaluate(two, &facts(json!({ "l": many }))).is_err());
        let most: Vec<i64> = (0..MAX_LIST as i64).collect();
        assert_eq!(evaluate(two, &facts(json!({ "l": most }))), Ok(true));
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(compile(&deep).is_err());
    }
}
