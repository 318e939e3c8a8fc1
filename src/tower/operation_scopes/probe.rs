//! The JSON-RPC probe: reads just enough of a request body to know which operations it asks
//! for (each message's `method`, `params.name` and `params.uri`, and its `id` for error
//! answers), skipping everything else without building it, and noticing the decisive members
//! that appear twice.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The `visit_*` methods for JSON scalars (and, with `str`, strings), each giving `$value`:
/// where the probe expects an object, a scalar means "nothing to look at".
macro_rules! visit_scalars_as {
    ($value:expr, str) => {
        visit_scalars_as!($value);
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// A request body, as far as the policy cares.
pub(super) enum Incoming {
    One(Probe),
    Batch(Vec<Probe>),
    /// A JSON scalar: not a message.
    Other,
}

/// One message: its method, `params.name` (the tool of a `tools/call`, the prompt of a
/// `prompts/get`) and `params.uri` (the resource of a `resources/read`), each when it is a
/// string, and its `id` when it is a string or an integer.
#[derive(Default)]
pub(super) struct Probe {
    pub(super) method: Option<String>,
    pub(super) name: Option<String>,
    pub(super) uri: Option<String>,
    pub(super) id: Option<serde_json::Value>,
    /// The first decisive member that appears twice: `method`, `params`, `params.name` or
    /// `params.uri`.
    pub(super) duplicate: Option<&'static str>,
}

impl Incoming {
    /// What `body` holds; anything that is not JSON is no message.
    pub(super) fn read(body: &[u8]) -> Vec<Probe> {
        match Self::parse(body) {
            Incoming::One(message) => vec![message],
            Incoming::Batch(messages) => messages,
            Incoming::Other => Vec::new(),
        }
    }

    /// What `body` holds, telling one message from a batch; anything that is not JSON (or has
    /// bytes after the JSON value) is [`Incoming::Other`].
    pub(super) fn parse(body: &[u8]) -> Incoming {
        serde_json::from_slice::<Incoming>(body).unwrap_or(Incoming::Other)
    }
}

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IncomingVisitor;
        impl<'de> Visitor<'de> for IncomingVisitor {
            type Value = Incoming;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message or batch")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Incoming, A::Error> {
                probe_message(map).map(Incoming::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Incoming, A::Error> {
                let mut messages = Vec::new();
                while let Some(element) = seq.next_element::<Element>()? {
                    if let Element(Some(message)) = element {
                        messages.push(message);
                    }
                }
                Ok(Incoming::Batch(messages))
            }
            visit_scalars_as!(Incoming::Other, str);
        }
        deserializer.deserialize_any(IncomingVisitor)
    }
}

/// An element of a batch: a message if it is an object.
struct Element(Option<Probe>);

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementVisitor;
        impl<'de> Visitor<'de> for ElementVisitor {
            type Value = Element;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element, A::Error> {
                probe_message(map).map(|message| Element(Some(message)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
                skip_seq(seq).map(|()| Element(None))
            }
            visit_scalars_as!(Element(None), str);
        }
        deserializer.deserialize_any(ElementVisitor)
    }
}

/// An object key, as far as the policy cares. JSON escapes are already resolved, so
/// `"meth\u006fd"` is `method`, as for every other JSON parser.
enum Key {
    Method,
    Params,
    Name,
    Uri,
    Id,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "name" => Key::Name,
                    "uri" => Key::Uri,
                    "id" => Key::Id,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

fn probe_message<'de, A: MapAccess<'de>>(mut map: A) -> Result<Probe, A::Error> {
    let mut probe = Probe::default();
    let (mut seen_method, mut seen_params) = (false, false);
    while let Some(key) = map.next_key::<Key>()? {
        match key {
            Key::Method => {
                if std::mem::replace(&mut seen_method, true) {
                    probe.duplicate.get_or_insert("method");
                }
                probe.method = map.next_value::<MaybeString>()?.0;
            }
            Key::Params => {
                if std::mem::replace(&mut seen_params, true) {
                    probe.duplicate.get_or_insert("params");
                }
                let params = map.next_value::<ParamsProbe>()?;
                if let Some(member) = params.duplicate {
                    probe.duplicate.get_or_insert(member);
                }
                probe.name = params.name;
                probe.uri = params.uri;
            }
            Key::Id => probe.id = map.next_value::<MaybeId>()?.0,
            Key::Name | Key::Uri | Key::Other => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(probe)
}

/// `params`: its string `name` and `uri`, if it is an object that has them.
#[derive(Default)]
struct ParamsProbe {
    name: Option<String>,
    uri: Option<String>,
    /// `params.name` or `params.uri`, when it appears twice.
    duplicate: Option<&'static str>,
}

impl<'de> Deserialize<'de> for ParamsProbe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = ParamsProbe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParamsProbe, A::Error> {
                let mut params = ParamsProbe::default();
                let (mut seen_name, mut seen_uri) = (false, false);
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Name => {
                            if std::mem::replace(&mut seen_name, true) {
                                params.duplicate.get_or_insert("params.name");
                            }
                            params.name = map.next_value::<MaybeString>()?.0;
                        }
                        Key::Uri => {
                            if std::mem::replace(&mut seen_uri, true) {
                                params.duplicate.get_or_insert("params.uri");
                            }
                            params.uri = map.next_value::<MaybeString>()?.0;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(params)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ParamsProbe, A::Error> {
                skip_seq(seq).map(|()| ParamsProbe::default())
            }
            visit_scalars_as!(ParamsProbe::default(), str);
        }
        deserializer.deserialize_any(ParamsVisitor)
    }
}

/// A string, or `None` for any other JSON value (skipped without being built).
struct MaybeString(Option<String>);

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeStringVisitor;
        impl<'de> Visitor<'de> for MaybeStringVisitor {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(value.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeString, A::Error> {
                skip_seq(seq).map(|()| MaybeString(None))
            }
            visit_scalars_as!(MaybeString(None));
        }
        deserializer.deserialize_any(MaybeStringVisitor)
    }
}

/// The longest string `id` kept for an error answer; a longer one is left out of it.
const MAX_ECHOED_ID: usize = 256;

/// A JSON-RPC `id` worth repeating in an error answer: a string (of at most
/// [`MAX_ECHOED_ID`] bytes) or an integer; `None` for anything else (skipped without being
/// built).
struct MaybeId(Option<serde_json::Value>);

impl<'de> Deserialize<'de> for MaybeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeIdVisitor;
        impl<'de> Visitor<'de> for MaybeIdVisitor {
            type Value = MaybeId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC id")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<MaybeId, E> {
                Ok(MaybeId(
                    (value.len() <= MAX_ECHOED_ID).then(|| value.to_owned().into()),
                ))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<MaybeId, E> {
                Ok(MaybeId(Some(value.into())))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<MaybeId, E> {
                Ok(MaybeId(Some(value.into())))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeId, E> {
                Ok(MaybeId(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeId, E> {
                Ok(MaybeId(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeId, E> {
                Ok(MaybeId(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeId, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeId(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeId, A::Error> {
                skip_seq(seq).map(|()| MaybeId(None))
            }
        }
        deserializer.deserialize_any(MaybeIdVisitor)
    }
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}
