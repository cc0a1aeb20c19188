//! The JSON schema an LLM judge's answer must satisfy, and a validator for the keywords it
//! uses (`type`, `required`, `properties`, `additionalProperties: false`, `items`, `minItems`,
//! `minimum`, `maximum`, `pattern`): the schema is sent to the provider as the answer's format
//! and checked here on what comes back, so a provider that ignores it is caught.

use crate::result::CRITERIA;
use serde_json::{Value, json};

/// The answer's schema (rubric v1).
pub fn answer_schema() -> Value {
    let criterion = json!({
        "type": "object",
        "required": ["score", "evidence", "reason"],
        "additionalProperties": false,
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "evidence": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "pattern": "^[0-9a-f]{16}$"}
            },
            "reason": {"type": "string"}
        }
    });
    let properties: serde_json::Map<String, Value> = CRITERIA
        .iter()
        .map(|c| ((*c).to_owned(), criterion.clone()))
        .collect();
    json!({
        "type": "object",
        "required": ["scores", "overall", "comments"],
        "additionalProperties": false,
        "properties": {
            "scores": {
                "type": "object",
                "required": CRITERIA,
                "additionalProperties": false,
                "properties": properties
            },
            "overall": {"type": "number", "minimum": 1, "maximum": 5},
            "comments": {"type": "string"}
        }
    })
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.as_i64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

/// Every way `value` breaks `schema`, each with its path (`scores.reproducibility.score`).
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "$", &mut errors);
    errors
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        errors.push(format!("{path}: expected {expected}"));
        return;
    }
    if let Some(object) = value.as_object() {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(key) {
                errors.push(format!("{path}: missing {key:?}"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => check(sub, item, &format!("{path}.{key}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: unexpected {key:?}"));
                }
                None => {}
            }
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            errors.push(format!("{path}: at least {min} items expected"));
        }
        if let Some(sub) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(sub, item, &format!("{path}[{i}]"), errors);
            }
        }
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && number < min
        {
            errors.push(format!("{path}: {number} is below {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && number > max
        {
            errors.push(format!("{path}: {number} is above {max}"));
        }
    }
    if let (Some(text), Some(pattern)) = (
        value.as_str(),
        schema.get("pattern").and_then(Value::as_str),
    ) && !pattern_matches(pattern, text)
    {
        errors.push(format!("{path}: {text:?} does not match {pattern}"));
    }
}

/// The one pattern the schema uses (16 lowercase hex digits) and, for any other, a plain
/// regular expression.
fn pattern_matches(pattern: &str, text: &str) -> bool {
    if pattern == "^[0-9a-f]{16}$" {
        return text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    }
    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Value {
        let scores: serde_json::Map<String, Value> = CRITERIA
            .iter()
            .map(|c| {
                (
                    (*c).to_owned(),
                    json!({"score": 4, "evidence": ["00112233aabbccdd"], "reason": "ok"}),
                )
            })
            .collect();
        json!({"scores": scores, "overall": 4.0, "comments": "fine"})
    }

    #[test]
    fn a_valid_answer_passes() {
        assert_eq!(validate(&answer_schema(), &valid()), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_named_with_its_path() {
        let mut answer = valid();
        answer["scores"]["reproducibility"]["score"] = json!(7);
        answer["scores"]["use_of_evidence"]["evidence"] = json!([]);
        answer["scores"]["safety_privacy_awareness"]["evidence"] = json!(["not-an-id"]);
        answer["scores"]
            .as_object_mut()
            .unwrap()
            .remove("decision_rationale");
        answer["verdict"] = json!("great");
        answer["overall"] = json!("4");
        let mut errors = validate(&answer_schema(), &answer);
        errors.sort();
        assert_eq!(
            errors,
            [
                "$.overall: expected number",
                "$.scores.reproducibility.score: 7 is above 5",
                "$.scores.safety_privacy_awareness.evidence[0]: \"not-an-id\" does not match ^[0-9a-f]{16}$",
                "$.scores.use_of_evidence.evidence: at least 1 items expected",
                "$.scores: missing \"decision_rationale\"",
                "$: unexpected \"verdict\"",
            ]
        );
    }
}
