//! A small YAML node tree with line and column for every node, built from `saphyr-parser`
//! events, for the typed reader in [`super::reader`].
//!
//! Aliases are resolved by copying the anchored node (pipeline definitions are small). Merge
//! keys (`<<`) get no special meaning: they are ordinary keys, which the reader then reports as
//! unknown. Only the first document is read; a second one is an error.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A node and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub value: Value,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// What a node is.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A scalar as written (plain `1.10` stays the text `1.10`).
    Scalar {
        text: String,
        /// Plain (unquoted, not a block scalar).
        plain: bool,
        /// An explicit tag (`!!int`), if any.
        tag: Option<String>,
    },
    /// Entries in document order; keys are nodes too (so errors can point at them).
    Mapping(Vec<(Node, Node)>),
    /// Items in order.
    Sequence(Vec<Node>),
}

impl Node {
    /// A plain `null`, `~`, `Null`, `NULL` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true, tag: None }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What the node is, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "null",
            Value::Scalar {
                text,
                plain: true,
                tag: None,
            } => plain_kind(text),
            Value::Scalar { .. } => "string",
            Value::Mapping(_) => "mapping",
            Value::Sequence(_) => "sequence",
        }
    }
}

/// The YAML 1.2 core-schema type of a plain scalar.
fn plain_kind(text: &str) -> &'static str {
    match text {
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => "boolean",
        _ if text.parse::<i64>().is_ok() => "integer",
        _ if text.parse::<f64>().is_ok() && text.chars().any(|c| c.is_ascii_digit()) => "number",
        _ => "string",
    }
}

/// A syntax error.
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

enum Frame {
    Mapping {
        node: Node,
        anchor: usize,
        key: Option<Node>,
    },
    Sequence {
        node: Node,
        anchor: usize,
    },
}

fn position(span: &Span) -> (usize, usize) {
    (span.start.line().max(1), span.start.col() + 1)
}

/// Parses the first document of `text` (`None` for an empty stream).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SyntaxError {
            line: e.marker().line().max(1),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let (line, column) = position(&span);
        let finished: Option<(Node, usize)> = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: "a pipeline definition is one YAML document; found a second one"
                            .into(),
                    });
                }
                None
            }
            Event::Scalar(value, style, anchor, tag) => {
                let node = Node {
                    value: Value::Scalar {
                        text: value.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                    },
                    line,
                    column,
                };
                Some((node, anchor))
            }
            Event::Alias(anchor) => {
                let Some(target) = anchors.get(&anchor) else {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                let mut node = target.clone();
                node.line = line;
                node.column = column;
                Some((node, 0))
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Mapping {
                    node: Node {
                        value: Value::Mapping(Vec::new()),
                        line,
                        column,
                    },
                    anchor,
                    key: None,
                });
                None
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Sequence {
                    node: Node {
                        value: Value::Sequence(Vec::new()),
                        line,
                        column,
                    },
                    anchor,
                });
                None
            }
            Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                Some(Frame::Mapping { node, anchor, .. } | Frame::Sequence { node, anchor }) => {
                    Some((node, anchor))
                }
                None => None,
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        let Some((node, anchor)) = finished else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => {
                if root.is_none() {
                    root = Some(node);
                }
            }
            Some(Frame::Sequence { node: parent, .. }) => {
                if let Value::Sequence(items) = &mut parent.value {
                    items.push(node);
                }
            }
            Some(Frame::Mapping {
                node: parent, key, ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if let Value::Mapping(entries) = &mut parent.value {
                        entries.push((k, node));
                    }
                }
            },
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_tree_with_positions() {
        let text = "a: 1\nb:\n  - x\n  - {c: 'd'}\ne: &e [1, 2]\nf: *e\n";
        let root = parse(text).ok().flatten();
        let Some(Node {
            value: Value::Mapping(entries),
            ..
        }) = root
        else {
            panic!("not a mapping");
        };
        assert_eq!(entries.len(), 4);
        assert_eq!((entries[1].1.line, entries[1].1.column), (3, 3));
        let Value::Sequence(items) = &entries[1].1.value else {
            panic!("b is not a sequence")
        };
        assert_eq!((items[1].line, items[1].column), (4, 5));
        assert_eq!(entries[0].1.kind(), "integer");
        // The alias is a copy placed where the alias is.
        assert_eq!(entries[3].1.line, 6);
        assert!(matches!(&entries[3].1.value, Value::Sequence(v) if v.len() == 2));
    }

    #[test]
    fn reports_syntax_errors_with_a_line() {
        let err = parse("a: 1\nb: [x\n").err();
        assert!(err.is_some_and(|e| e.line >= 2));
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
        assert!(parse("").ok().flatten().is_none());
    }
}
