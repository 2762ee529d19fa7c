//! Deserialisation helpers for fields Docker sometimes sends as `null`.

use serde::{Deserialize, Deserializer};

/// Reads `null` as the type's default (an empty list or map), as Go clients do.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
