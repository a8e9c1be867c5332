//! The state query language: filters on dotted JSON paths, sort keys and pages.
//!
//! The wire form is Dapr's query JSON. Parsing is strict: every filter unit is an object with
//! exactly one operator, and the error names the part that is wrong.

use serde_json::Value;

use crate::errors::{Error, Result};

/// A parsed query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// The filter; `None` matches everything.
    pub filter: Option<Filter>,
    /// Sort keys, most significant first.
    pub sort: Vec<Sorting>,
    /// The page asked for.
    pub page: Page,
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `path == value`
    Eq(String, Value),
    /// `path != value`
    Neq(String, Value),
    /// `path > value`
    Gt(String, Value),
    /// `path >= value`
    Gte(String, Value),
    /// `path < value`
    Lt(String, Value),
    /// `path <= value`
    Lte(String, Value),
    /// `path` equals one of the values.
    In(String, Vec<Value>),
    /// Every sub-filter holds.
    And(Vec<Filter>),
    /// At least one sub-filter holds.
    Or(Vec<Filter>),
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Ascending (the default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sorting {
    /// A dotted path into the value.
    pub key: String,
    /// The direction.
    pub order: Order,
}

/// Which page of results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The most results; `None` (or 0) means all.
    pub limit: Option<usize>,
    /// The token a previous page returned.
    pub token: Option<String>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::InvalidArgument(format!("failed to parse JSON query body: {}", message.into()))
}

impl Query {
    /// Parses Dapr's query JSON.
    pub fn from_json(value: &Value) -> Result<Self> {
        let object = value.as_object().ok_or_else(|| bad("the query must be a JSON object"))?;
        let mut query = Query::default();
        for (field, v) in object {
            match field.as_str() {
                "filter" => {
                    let empty = v.as_object().is_some_and(|o| o.is_empty());
                    if !empty {
                        query.filter = Some(Filter::from_json(v)?);
                    }
                }
                "sort" => query.sort = parse_sort(v)?,
                "page" => query.page = parse_page(v)?,
                other => return Err(bad(format!("unknown field `{other}` (expected filter, sort, page)"))),
            }
        }
        Ok(query)
    }

    /// Parses query JSON from bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        Self::from_json(&value)
    }
}

impl Query {
    /// The query as Dapr's query JSON (the inverse of [`Query::from_json`]).
    pub fn to_json(&self) -> Value {
        let mut object = serde_json::Map::new();
        if let Some(filter) = &self.filter {
            object.insert("filter".into(), filter.to_json());
        }
        if !self.sort.is_empty() {
            let sort = self
                .sort
                .iter()
                .map(
                    |s| serde_json::json!({"key": s.key, "order": if s.order == Order::Desc { "DESC" } else { "ASC" }}),
                )
                .collect();
            object.insert("sort".into(), Value::Array(sort));
        }
        if self.page.limit.is_some() || self.page.token.is_some() {
            let mut page = serde_json::Map::new();
            if let Some(limit) = self.page.limit {
                page.insert("limit".into(), limit.into());
            }
            if let Some(token) = &self.page.token {
                page.insert("token".into(), token.clone().into());
            }
            object.insert("page".into(), Value::Object(page));
        }
        Value::Object(object)
    }
}

impl Filter {
    /// The filter as query JSON.
    pub fn to_json(&self) -> Value {
        let unit = |op: &str, path: &str, v: &Value| serde_json::json!({ op: { path: v } });
        match self {
            Filter::Eq(p, v) => unit("EQ", p, v),
            Filter::Neq(p, v) => unit("NEQ", p, v),
            Filter::Gt(p, v) => unit("GT", p, v),
            Filter::Gte(p, v) => unit("GTE", p, v),
            Filter::Lt(p, v) => unit("LT", p, v),
            Filter::Lte(p, v) => unit("LTE", p, v),
            Filter::In(p, vs) => unit("IN", p, &Value::Array(vs.clone())),
            Filter::And(fs) => serde_json::json!({"AND": fs.iter().map(Filter::to_json).collect::<Vec<_>>()}),
            Filter::Or(fs) => serde_json::json!({"OR": fs.iter().map(Filter::to_json).collect::<Vec<_>>()}),
        }
    }

    /// Parses one filter unit.
    pub fn from_json(value: &Value) -> Result<Self> {
        let object = value.as_object().ok_or_else(|| bad(format!("a filter must be an object, got `{value}`")))?;
        let mut entries = object.iter();
        let (Some((op, arg)), None) = (entries.next(), entries.next()) else {
            return Err(bad(format!("a filter must have exactly one operator, got {} in `{value}`", object.len())));
        };
        match op.as_str() {
            "AND" | "OR" => {
                let items = arg.as_array().ok_or_else(|| bad(format!("`{op}` takes an array of filters")))?;
                if items.is_empty() {
                    return Err(bad(format!("`{op}` needs at least one filter")));
                }
                let parsed = items.iter().map(Filter::from_json).collect::<Result<Vec<_>>>()?;
                Ok(if op == "AND" { Filter::And(parsed) } else { Filter::Or(parsed) })
            }
            "EQ" | "NEQ" | "GT" | "GTE" | "LT" | "LTE" | "IN" => {
                let (path, operand) = single_field(op, arg)?;
                Ok(match op.as_str() {
                    "EQ" => Filter::Eq(path, operand),
                    "NEQ" => Filter::Neq(path, operand),
                    "GT" => Filter::Gt(path, operand),
                    "GTE" => Filter::Gte(path, operand),
                    "LT" => Filter::Lt(path, operand),
                    "LTE" => Filter::Lte(path, operand),
                    _ => match operand {
                        Value::Array(values) => Filter::In(path, values),
                        other => return Err(bad(format!("`IN` takes an array, got `{other}`"))),
                    },
                })
            }
            other => Err(bad(format!("unknown operator `{other}` (expected EQ, NEQ, GT, GTE, LT, LTE, IN, AND, OR)"))),
        }
    }
}

fn single_field(op: &str, arg: &Value) -> Result<(String, Value)> {
    let object = arg.as_object().ok_or_else(|| bad(format!("`{op}` takes an object `{{\"path\": value}}`")))?;
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some((path, value)), None) if !path.is_empty() => Ok((path.clone(), value.clone())),
        _ => Err(bad(format!("`{op}` takes exactly one field, got `{arg}`"))),
    }
}

fn parse_sort(value: &Value) -> Result<Vec<Sorting>> {
    let items = value.as_array().ok_or_else(|| bad("`sort` must be an array"))?;
    items
        .iter()
        .map(|item| {
            let key = item
                .get("key")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| bad(format!("every sort entry needs a `key`, got `{item}`")))?;
            let order = match item.get("order").and_then(Value::as_str) {
                None | Some("ASC") | Some("") => Order::Asc,
                Some("DESC") => Order::Desc,
                Some(other) => return Err(bad(format!("sort order must be ASC or DESC, got `{other}`"))),
            };
            Ok(Sorting { key: key.to_owned(), order })
        })
        .collect()
}

fn parse_page(value: &Value) -> Result<Page> {
    let object = value.as_object().ok_or_else(|| bad("`page` must be an object"))?;
    let limit = match object.get("limit") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let n = v.as_u64().ok_or_else(|| bad(format!("`page.limit` must be a non-negative integer, got `{v}`")))?;
            usize::try_from(n).ok().filter(|n| *n > 0)
        }
    };
    let token = match object.get("token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => return Err(bad(format!("`page.token` must be a string, got `{v}`"))),
    };
    Ok(Page { limit, token })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_err(input: Value, expected_fragment: &str) {
        let err = Query::from_json(&input).expect_err("should fail").to_string();
        assert!(err.contains(expected_fragment), "`{err}` lacks `{expected_fragment}`");
    }

    #[test]
    fn parses_the_documented_example() {
        let q = Query::from_json(&json!({
            "filter": {"OR": [{"EQ": {"person.org": "Dev Ops"}},
                              {"AND": [{"EQ": {"person.org": "Finance"}}, {"IN": {"state": ["CA", "WA"]}}]}]},
            "sort": [{"key": "state", "order": "DESC"}, {"key": "person.id"}],
            "page": {"limit": 3, "token": "2"}
        }))
        .expect("valid");
        assert_eq!(q.sort.len(), 2);
        assert_eq!(q.sort[0].order, Order::Desc);
        assert_eq!(q.page, Page { limit: Some(3), token: Some("2".into()) });
        assert!(matches!(q.filter, Some(Filter::Or(ref v)) if v.len() == 2));
        assert_eq!(Query::from_json(&q.to_json()).expect("round trip"), q);
    }

    #[test]
    fn rejects_malformed_queries() {
        check_err(json!([]), "must be a JSON object");
        check_err(json!({"filter": {"EQ": {"a": 1}, "NEQ": {"b": 2}}}), "exactly one operator");
        check_err(json!({"filter": {"LIKE": {"a": 1}}}), "unknown operator `LIKE`");
        check_err(json!({"filter": {"IN": {"a": 1}}}), "`IN` takes an array");
        check_err(json!({"filter": {"AND": []}}), "needs at least one filter");
        check_err(json!({"sort": [{"order": "ASC"}]}), "needs a `key`");
        check_err(json!({"sort": [{"key": "a", "order": "UP"}]}), "ASC or DESC");
        check_err(json!({"page": {"limit": -1}}), "non-negative integer");
        check_err(json!({"where": {}}), "unknown field `where`");
    }
}
