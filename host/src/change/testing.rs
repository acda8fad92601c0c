//! Random JSON documents for the property tests of the byte paths.

use proptest::prelude::*;
use serde_json::Value;

/// Documents up to four levels deep whose containers hold fewer than
/// `width` entries, with `leaf` values and map keys drawn from `keys`.
pub(crate) fn value(
    leaf: BoxedStrategy<Value>,
    keys: Vec<&'static str>,
    width: usize,
) -> impl Strategy<Value = Value> {
    let key = prop::sample::select(keys);
    leaf.prop_recursive(4, 40, width as u32, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..width).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..width).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}
