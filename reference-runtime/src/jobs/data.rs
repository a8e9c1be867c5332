//! A job's data. The HTTP API takes any JSON and keeps it as daprd does, an `Any` holding a
//! `google.protobuf.Value`; the gRPC API takes any `Any`. An HTTP app gets the JSON back as the
//! trigger's body (another `Any`, its bytes), and `GET` shows it as protojson does.

use prost::Message;
use prost_types::value::Kind;
use serde_json::{Value, json};

/// The type URL of `google.protobuf.Value`.
pub const VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.Value";

/// JSON data as the API keeps it.
pub fn from_json(value: &Value) -> prost_types::Any {
    let encoded = crate::grpc::subscribe::proto_value(value).encode_to_vec();
    prost_types::Any { type_url: VALUE_TYPE.to_owned(), value: encoded }
}

fn json_of(value: prost_types::Value) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        // Whole numbers come back whole, as protojson writes them.
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => json!(n as i64),
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.into_iter().map(json_of).collect()),
        Some(Kind::StructValue(s)) => Value::Object(s.fields.into_iter().map(|(k, v)| (k, json_of(v))).collect()),
    }
}

/// The JSON a `google.protobuf.Value` holds; `None` for any other `Any`.
pub fn to_json(data: &prost_types::Any) -> Option<Value> {
    if data.type_url != VALUE_TYPE {
        return None;
    }
    prost_types::Value::decode(data.value.as_slice()).ok().map(json_of)
}

/// The data as `GET` shows it: `{"@type", "value"}` (the bytes in base64 for a type that is
/// not `Value`).
pub fn shown(data: &prost_types::Any) -> Value {
    let value = to_json(data).unwrap_or_else(|| {
        Value::String(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &data.value))
    });
    json!({"@type": data.type_url, "value": value})
}

/// The body an HTTP app's trigger carries: the JSON re-serialised compactly, or the bytes.
pub fn app_body(data: Option<&prost_types::Any>) -> Vec<u8> {
    match data {
        None => Vec::new(),
        Some(any) => match to_json(any) {
            Some(json) => json.to_string().into_bytes(),
            None => any.value.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_the_kept_form() {
        for value in [json!({"expression": "val", "n": 3, "f": 1.5, "l": [true, null]}), json!("someData"), json!(123)]
        {
            let kept = from_json(&value);
            assert_eq!(to_json(&kept), Some(value.clone()));
            assert_eq!(app_body(Some(&kept)), value.to_string().into_bytes());
        }
        assert!(app_body(None).is_empty());
        let other = prost_types::Any { type_url: "type.googleapis.com/x".into(), value: b"raw".to_vec() };
        assert_eq!(app_body(Some(&other)), b"raw");
        assert_eq!(shown(&other)["value"], "cmF3");
    }
}
