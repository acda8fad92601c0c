//! Per-plugin settings: config, limits, error policy, granted capabilities.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What happens to a call's events when the plugin fails on them.
///
/// In a config: `pass`, `drop`, or a dead-letter route written any of
/// `route: dl` (a map), `"route: dl"` (a string) or `!route dl` (a tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum OnError {
    /// The events go on as if the plugin were not in the chain.
    #[default]
    Pass,
    /// The events are dropped.
    Drop,
    /// The events go to this (dead-letter) sink only.
    Route(String),
}

impl OnError {
    const EXPECTED: &'static str = "pass, drop, or route: <dead-letter sink>";

    /// `pass`, `drop`, `route: <sink>` or `route:<sink>`.
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text {
            "pass" => return Ok(OnError::Pass),
            "drop" => return Ok(OnError::Drop),
            _ => {}
        }
        if let Some(sink) = text.strip_prefix("route") {
            let sink = sink.trim_start();
            if let Some(sink) = sink.strip_prefix(':') {
                return Self::route(sink.trim());
            }
        }
        Err(format!("{text:?} is not {}", Self::EXPECTED))
    }

    fn route(sink: &str) -> Result<Self, String> {
        if sink.is_empty() {
            Err("route: names no sink (write route: <dead-letter sink>)".into())
        } else {
            Ok(OnError::Route(sink.to_string()))
        }
    }

    /// The dead-letter sink, for `route`.
    pub fn route_sink(&self) -> Option<&str> {
        match self {
            OnError::Route(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for OnError {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, EnumAccess, MapAccess, VariantAccess};
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = OnError;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(OnError::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OnError, E> {
                OnError::parse(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OnError, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(format!(
                        "an empty map is not {}",
                        OnError::EXPECTED
                    )));
                };
                if key != "route" {
                    return Err(de::Error::custom(format!(
                        "unknown key {key:?}: expected {}",
                        OnError::EXPECTED
                    )));
                }
                let sink: String = map.next_value()?;
                if let Some(more) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "unexpected key {more:?} beside route"
                    )));
                }
                OnError::route(&sink).map_err(de::Error::custom)
            }
            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<OnError, A::Error> {
                let (tag, variant): (String, _) = data.variant()?;
                match tag.as_str() {
                    "route" => {
                        let sink: String = variant.newtype_variant()?;
                        OnError::route(&sink).map_err(de::Error::custom)
                    }
                    "pass" | "drop" => {
                        variant.unit_variant()?;
                        OnError::parse(&tag).map_err(de::Error::custom)
                    }
                    other => Err(de::Error::custom(format!(
                        "!{other} is not {}",
                        OnError::EXPECTED
                    ))),
                }
            }
        }
        d.deserialize_any(Visit)
    }
}

impl std::fmt::Display for OnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OnError::Pass => f.write_str("pass"),
            OnError::Drop => f.write_str("drop"),
            OnError::Route(sink) => write!(f, "route: {sink}"),
        }
    }
}

/// Extra WASI interfaces a plugin may import when its config grants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Capability {
    /// `wasi:clocks/*`: wall and monotonic clocks.
    Clocks,
}

/// How one plugin runs in a chain.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// The plugin's config as JSON text, passed to `init`.
    pub config: String,
    /// Cap on the plugin's linear memory.
    pub memory_limit: usize,
    /// CPU time a single call (`init` or one `handle` batch) may use; the
    /// clock caps it at ten times this (see `budget`).
    pub deadline: Duration,
    /// Fate of a failed call's events.
    pub on_error: OnError,
    /// Granted capabilities beyond the default allow-list.
    pub allow: Vec<Capability>,
}

impl PluginSettings {
    /// Default memory cap: enough for a plugin that parses large objects.
    pub(crate) const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
    /// Default deadline: far above the microseconds a plugin needs, far below
    /// what would stall the pipeline.
    pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_millis(200);
}

impl Default for PluginSettings {
    fn default() -> Self {
        PluginSettings {
            config: "{}".into(),
            memory_limit: Self::DEFAULT_MEMORY_LIMIT,
            deadline: Self::DEFAULT_DEADLINE,
            on_error: OnError::Pass,
            allow: Vec::new(),
        }
    }
}

/// A plugin's decision about one event, on the host side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Go on.
    Pass,
    /// Stop, with a reason.
    Drop(String),
    /// Send to these sinks.
    Route(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::OnError;

    fn parse(yaml: &str) -> Result<OnError, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn on_error_routes_in_every_spelling_the_readme_uses() {
        let dl = OnError::Route("dl".into());
        assert_eq!(parse("pass"), Ok(OnError::Pass));
        assert_eq!(parse("drop"), Ok(OnError::Drop));
        assert_eq!(parse("route: dl").as_ref(), Ok(&dl), "a map");
        assert_eq!(parse("{route: dl}").as_ref(), Ok(&dl), "a flow map");
        assert_eq!(parse("\"route: dl\"").as_ref(), Ok(&dl), "a string");
        assert_eq!(parse("'route:dl'").as_ref(), Ok(&dl), "no space");
        assert_eq!(parse("!route dl").as_ref(), Ok(&dl), "a tag");
        let json: OnError = serde_json::from_value(serde_json::json!({"route": "dl"})).unwrap();
        assert_eq!(json, dl);
        // What it writes, it reads.
        let back: OnError = serde_json::from_value(serde_json::to_value(&dl).unwrap()).unwrap();
        assert_eq!(back, dl);
    }

    #[test]
    fn on_error_says_what_it_expects() {
        let e = parse("retry").unwrap_err();
        assert!(
            e.contains("\"retry\" is not pass, drop, or route: <dead-letter sink>"),
            "{e}"
        );
        let e = parse("route:").unwrap_err();
        assert!(e.contains("names no sink"), "{e}");
        let e = parse("{route: dl, drop: x}").unwrap_err();
        assert!(e.contains("unexpected key \"drop\" beside route"), "{e}");
        let e = parse("{sink: dl}").unwrap_err();
        assert!(e.contains("unknown key \"sink\""), "{e}");
    }
}
