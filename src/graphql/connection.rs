//! Cursor pagination shared by every list the gateway pages: opaque cursors over offsets, and `PageInfo`.

use async_graphql::{Result, SimpleObject};
use base64::Engine;

use super::errors::bad_input;

// `@shareable`: other subgraphs of a supergraph that page their lists define the same Relay type, and Federation 2
// refuses a field that several subgraphs resolve unless each marks it so
// (https://www.apollographql.com/docs/graphos/schema-design/federated-schemas/sharing-types).
#[derive(SimpleObject)]
#[graphql(shareable)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// One list's cursors: `kind` keeps a cursor of one list from being used on another.
#[derive(Clone, Copy)]
pub struct Cursors {
    pub kind: &'static str,
    pub default_page: usize,
    pub max_page: usize,
}

/// A page to fetch: skip `offset`, take `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub offset: usize,
    pub limit: usize,
}

impl Cursors {
    pub fn cursor(&self, offset: usize) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{offset}", self.kind))
    }

    fn offset_after(&self, after: &str) -> Option<usize> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(after).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        text.strip_prefix(self.kind)?.strip_prefix(':')?.parse::<usize>().ok().map(|o| o + 1)
    }

    /// The window `first` and `after` ask for, or a `BAD_USER_INPUT` error.
    pub fn window(&self, first: Option<i32>, after: Option<&str>) -> Result<Window> {
        let limit = match first {
            None => self.default_page,
            Some(n) if n >= 0 && n as usize <= self.max_page => n as usize,
            Some(_) => return Err(bad_input(format!("first must be between 0 and {}", self.max_page))),
        };
        let offset = match after {
            None => 0,
            Some(c) => self.offset_after(c).ok_or_else(|| bad_input("after is not a cursor of this connection"))?,
        };
        Ok(Window { offset, limit })
    }

    /// Cursors of `count` items starting at `window.offset`, and the page info for a list of `total`.
    pub fn page(&self, window: Window, count: usize, total: usize) -> (Vec<String>, PageInfo) {
        let cursors: Vec<String> = (window.offset..window.offset + count).map(|o| self.cursor(o)).collect();
        let info = PageInfo {
            has_next_page: window.offset + count < total,
            has_previous_page: window.offset > 0,
            start_cursor: cursors.first().cloned(),
            end_cursor: cursors.last().cloned(),
        };
        (cursors, info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Cursors = Cursors { kind: "uv", default_page: 50, max_page: 500 };

    #[test]
    fn cursors_round_trip_and_foreign_or_garbage_cursors_are_refused() {
        assert_eq!(C.window(Some(10), Some(&C.cursor(41))).expect("valid"), Window { offset: 42, limit: 10 });
        let other = Cursors { kind: "app", ..C };
        assert!(C.window(None, Some(&other.cursor(3))).is_err());
        assert!(C.window(None, Some("%%%")).is_err());
        assert!(C.window(Some(501), None).is_err());
        assert!(C.window(Some(-1), None).is_err());
    }
}
