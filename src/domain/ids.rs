//! Ids as types, parsed at the edge: a gateway user id is never confused with a provider's reference to that user.
//! Each provider's own id types live in its folder and are made with [`id_type!`](crate::id_type).

/// Defines an id type: a short string without control characters, parsed once where it enters the gateway.
#[macro_export]
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id, checked: 1 to [`MAX_ID_LEN`](crate::domain::ids::MAX_ID_LEN) bytes, no control characters.
            pub fn parse(text: impl Into<String>) -> Result<Self, $crate::domain::ids::IdError> {
                let text = text.into();
                $crate::domain::ids::check(&text)?;
                Ok($name(text))
            }

            /// An id already checked where it was stored (the directory's own columns, the providers' answers).
            pub fn trusted(text: impl Into<String>) -> Self {
                $name(text.into())
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

/// The longest id the gateway takes: far beyond any provider's, short enough for every bound downstream (a change
/// notification, an audit record).
pub const MAX_ID_LEN: usize = 256;

/// Why a text is not an id. Names no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// No text at all.
    #[error("an id must not be empty")]
    Empty,
    /// Longer than [`MAX_ID_LEN`].
    #[error("an id must be at most {MAX_ID_LEN} bytes")]
    TooLong,
    /// A control character (a line break, say).
    #[error("an id must not hold control characters")]
    Control,
}

/// The checks every id passes.
pub fn check(text: &str) -> Result<(), IdError> {
    if text.is_empty() {
        Err(IdError::Empty)
    } else if text.len() > MAX_ID_LEN {
        Err(IdError::TooLong)
    } else if text.chars().any(char::is_control) {
        Err(IdError::Control)
    } else {
        Ok(())
    }
}

crate::id_type!(
    /// The company's own id of a user: a user token's `sub`, and what callers pass as `User.id`.
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_short_text_without_control_characters() {
        assert_eq!(UserId::parse("u-1").expect("valid").as_str(), "u-1");
        assert_eq!(UserId::parse(""), Err(IdError::Empty));
        assert_eq!(UserId::parse("a".repeat(MAX_ID_LEN + 1)), Err(IdError::TooLong));
        assert_eq!(UserId::parse("a\nb"), Err(IdError::Control));
        assert!(UserId::parse("a".repeat(MAX_ID_LEN)).is_ok());
    }
}
