//! Caught panics as text (a leaf module: the weights readers and the element's worker use it).

/// The text of a caught panic's payload (what `panic!` was given, when it was a string).
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
