//! Evaluates state queries over JSON values: filters on dotted paths, multi-key sort and
//! offset-token pages.

use std::cmp::Ordering;

use contract::state_query::{Filter, Order, Query};
use contract::{Error, Result};
use serde_json::Value;

/// The value at a dotted path (`person.org`), if any.
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, part| v.get(part))
}

/// True when `value` satisfies `filter`.
pub fn matches(filter: &Filter, value: &Value) -> bool {
    let cmp = |path: &str, operand: &Value| lookup(value, path).and_then(|v| compare(v, operand));
    match filter {
        Filter::Eq(path, operand) => lookup(value, path).is_some_and(|v| equal(v, operand)),
        Filter::Neq(path, operand) => !lookup(value, path).is_some_and(|v| equal(v, operand)),
        Filter::Gt(path, operand) => cmp(path, operand) == Some(Ordering::Greater),
        Filter::Gte(path, operand) => matches!(cmp(path, operand), Some(Ordering::Greater | Ordering::Equal)),
        Filter::Lt(path, operand) => cmp(path, operand) == Some(Ordering::Less),
        Filter::Lte(path, operand) => matches!(cmp(path, operand), Some(Ordering::Less | Ordering::Equal)),
        Filter::In(path, operands) => lookup(value, path).is_some_and(|v| operands.iter().any(|o| equal(v, o))),
        Filter::And(filters) => filters.iter().all(|f| matches(f, value)),
        Filter::Or(filters) => filters.iter().any(|f| matches(f, value)),
    }
}

/// Equality with numbers compared by value (`12` equals `12.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

/// Orders two values of the same kind; values of different kinds are incomparable.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A total order for sorting: absent < null < bools < numbers < strings < arrays < objects.
fn sort_order(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None => 0,
            Some(Value::Null) => 1,
            Some(Value::Bool(_)) => 2,
            Some(Value::Number(_)) => 3,
            Some(Value::String(_)) => 4,
            Some(Value::Array(_)) => 5,
            Some(Value::Object(_)) => 6,
        }
    }
    match (a, b) {
        (Some(x), Some(y)) => {
            compare(x, y).unwrap_or_else(|| rank(a).cmp(&rank(b)).then_with(|| x.to_string().cmp(&y.to_string())))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A stored item as the evaluator sees it: key, parsed value, and whatever the store carries.
pub type Row<T> = (String, Value, T);

/// Runs `query` over rows (in key order) and returns the page asked for and the token of the
/// next page.
pub fn run<T>(query: &Query, rows: Vec<Row<T>>) -> Result<(Vec<Row<T>>, Option<String>)> {
    let mut hits: Vec<_> =
        rows.into_iter().filter(|(_, v, _)| query.filter.as_ref().is_none_or(|f| matches(f, v))).collect();
    // A stable sort keeps key order among equal sort keys, so pages are deterministic.
    hits.sort_by(|(ka, a, _), (kb, b, _)| {
        query
            .sort
            .iter()
            .map(|s| {
                let o = sort_order(lookup(a, &s.key), lookup(b, &s.key));
                if s.order == Order::Desc { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| ka.cmp(kb))
    });
    let offset = match &query.page.token {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .map_err(|_| Error::InvalidArgument(format!("page token `{token}` was not issued by this store")))?,
    };
    let total = hits.len();
    let page: Vec<_> = hits.into_iter().skip(offset).take(query.page.limit.unwrap_or(usize::MAX)).collect();
    let next = offset + page.len();
    let token = (query.page.limit.is_some() && next < total).then(|| next.to_string());
    Ok((page, token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows() -> Vec<(String, Value, ())> {
        [
            ("a", json!({"person": {"org": "Dev Ops", "id": 1036}, "state": "CA"})),
            ("b", json!({"person": {"org": "Finance", "id": 1071}, "state": "WA"})),
            ("c", json!({"person": {"org": "Finance", "id": 1007}, "state": "CA"})),
            ("d", json!({"person": {"org": "Dev Ops", "id": 1100}, "state": "OR"})),
            ("e", json!({"product": {"value": 12}, "status": "INACTIVE"})),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v, ()))
        .collect()
    }

    fn keys(query: Value) -> (Vec<String>, Option<String>) {
        let q = Query::from_json(&query).expect("query");
        let (page, token) = run(&q, rows()).expect("run");
        (page.into_iter().map(|(k, _, _)| k).collect(), token)
    }

    #[test]
    fn filters() {
        assert_eq!(keys(json!({"filter": {"EQ": {"person.org": "Finance"}}})).0, ["b", "c"]);
        assert_eq!(keys(json!({"filter": {"NEQ": {"state": "CA"}}})).0, ["b", "d", "e"]);
        assert_eq!(keys(json!({"filter": {"IN": {"state": ["WA", "OR"]}}})).0, ["b", "d"]);
        assert_eq!(keys(json!({"filter": {"GT": {"person.id": 1071}}})).0, ["d"]);
        assert_eq!(keys(json!({"filter": {"GTE": {"person.id": 1071}}})).0, ["b", "d"]);
        assert_eq!(keys(json!({"filter": {"LT": {"person.id": 1036}}})).0, ["c"]);
        assert_eq!(keys(json!({"filter": {"LTE": {"person.id": 1036.0}}})).0, ["a", "c"]);
        assert_eq!(keys(json!({"filter": {"GT": {"product.value": 11.1}}})).0, ["e"]);
        assert_eq!(keys(json!({"filter": {"EQ": {"product.value": 12.0}}})).0, ["e"]);
        assert_eq!(
            keys(json!({"filter": {"OR": [{"EQ": {"person.org": "Dev Ops"}},
                {"AND": [{"EQ": {"person.org": "Finance"}}, {"IN": {"state": ["CA"]}}]}]}}))
            .0,
            ["a", "c", "d"]
        );
        assert_eq!(keys(json!({"filter": {"GT": {"state": 1}}})).0, Vec::<String>::new(), "kinds differ");
    }

    #[test]
    fn sort_and_pages() {
        let sorted = json!({"filter": {"EXISTS_NOT_AN_OP": {}}});
        assert!(Query::from_json(&sorted).is_err());
        assert_eq!(
            keys(json!({"sort": [{"key": "state", "order": "DESC"}, {"key": "person.id"}]})).0,
            ["b", "d", "c", "a", "e"]
        );
        let (first, token) = keys(json!({"sort": [{"key": "person.id"}], "page": {"limit": 2}}));
        assert_eq!((first, token.clone()), (vec!["e".into(), "c".into()], Some("2".into())));
        let (second, token) = keys(json!({"sort": [{"key": "person.id"}], "page": {"limit": 2, "token": token}}));
        assert_eq!((second, token.clone()), (vec!["a".into(), "b".into()], Some("4".into())));
        let (third, token) = keys(json!({"sort": [{"key": "person.id"}], "page": {"limit": 2, "token": token}}));
        assert_eq!((third, token), (vec!["d".into()], None));
    }
}
