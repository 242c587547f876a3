//! A span-aware node tree built from `saphyr-parser` events.
//!
//! The tree is only used to *locate* nodes and to *compare* two parses; the text is never
//! re-serialised from it. Nodes are stored in event order, so two parses of texts that differ
//! only inside one scalar produce trees whose node `i` correspond one to one.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Scalar presentation style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `value`
    Plain,
    /// `'value'`
    SingleQuoted,
    /// `"value"`
    DoubleQuoted,
    /// `|` block
    Literal,
    /// `>` block
    Folded,
}

impl From<ScalarStyle> for Style {
    fn from(s: ScalarStyle) -> Self {
        match s {
            ScalarStyle::Plain => Style::Plain,
            ScalarStyle::SingleQuoted => Style::SingleQuoted,
            ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
            ScalarStyle::Literal => Style::Literal,
            ScalarStyle::Folded => Style::Folded,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Scalar {
        value: String,
        style: Style,
    },
    Mapping {
        flow: bool,
        entries: Vec<(usize, usize)>,
    },
    Sequence {
        flow: bool,
        items: Vec<usize>,
    },
    Alias {
        anchor: usize,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// saphyr anchor id, 0 = none.
    pub anchor: usize,
    /// Anchor name (`&name`) or, for an alias, the name it refers to.
    pub anchor_name: Option<String>,
    /// Resolved tag (`handle` + `suffix`), if any.
    pub tag: Option<String>,
    /// Byte offset where the node's text starts (at its properties, if any).
    pub start: usize,
    /// Byte offset of the node's content after any `&anchor`/`!tag` properties.
    pub content_start: usize,
    /// Byte offset just past the last property (== `start` when there are none).
    pub properties_end: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// Whether the node sits inside a flow collection.
    pub in_flow: bool,
}

impl Node {
    pub fn kind_name(&self) -> crate::error::NodeKind {
        use crate::error::NodeKind;
        match self.kind {
            Kind::Scalar { .. } => NodeKind::Scalar,
            Kind::Mapping { .. } => NodeKind::Mapping,
            Kind::Sequence { .. } => NodeKind::Sequence,
            Kind::Alias { .. } => NodeKind::Alias,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    pub root: Option<usize>,
    pub explicit_start: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
    pub docs: Vec<Document>,
    /// anchor id -> node that defines it
    pub anchors: HashMap<usize, usize>,
    /// anchor id -> lines of the aliases that refer to it
    pub alias_lines: HashMap<usize, Vec<usize>>,
    /// Document index of every node.
    pub node_doc: Vec<usize>,
}

/// Parse error with a 1-based line and column.
#[derive(Debug, Clone)]
pub(crate) struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Maps saphyr's character indices to byte offsets.
struct Offsets {
    /// Byte offset of each char; empty when the text is ASCII (identity).
    table: Vec<usize>,
    len: usize,
}

impl Offsets {
    fn new(text: &str) -> Self {
        let table = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices().map(|(b, _)| b).collect()
        };
        Self {
            table,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.table.is_empty() {
            char_index.min(self.len)
        } else {
            self.table.get(char_index).copied().unwrap_or(self.len)
        }
    }
}

enum Frame {
    Mapping {
        id: usize,
        pending_key: Option<usize>,
    },
    Sequence {
        id: usize,
    },
}

impl Tree {
    pub fn parse(text: &str) -> Result<Tree, ParseError> {
        let offsets = Offsets::new(text);
        let bytes = text.as_bytes();
        let mut tree = Tree {
            nodes: Vec::new(),
            docs: Vec::new(),
            anchors: HashMap::new(),
            alias_lines: HashMap::new(),
            node_doc: Vec::new(),
        };
        let mut stack: Vec<Frame> = Vec::new();
        let mut flow_depth = 0usize;
        for item in Parser::new_from_str(text) {
            let (event, span) = item.map_err(|e| ParseError {
                line: e.marker().line(),
                column: e.marker().col() + 1,
                message: e.info().to_string(),
            })?;
            match event {
                Event::DocumentStart(explicit) => {
                    stack.clear();
                    flow_depth = 0;
                    tree.docs.push(Document {
                        root: None,
                        explicit_start: explicit,
                    });
                }
                Event::Scalar(value, style, anchor, tag) => {
                    let kind = Kind::Scalar {
                        value: value.into_owned(),
                        style: style.into(),
                    };
                    let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                    let id = tree.push(kind, anchor, tag, span, &offsets, bytes, flow_depth > 0);
                    tree.attach(&mut stack, id);
                }
                Event::Alias(anchor) => {
                    let id = tree.push(
                        Kind::Alias { anchor },
                        0,
                        None,
                        span,
                        &offsets,
                        bytes,
                        flow_depth > 0,
                    );
                    let start = tree.nodes[id].start;
                    tree.nodes[id].anchor_name = Some(read_name(bytes, start + 1));
                    let line = tree.nodes[id].line;
                    tree.alias_lines.entry(anchor).or_default().push(line);
                    tree.attach(&mut stack, id);
                }
                Event::MappingStart(anchor, tag) => {
                    let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                    let kind = Kind::Mapping {
                        flow: false,
                        entries: Vec::new(),
                    };
                    let id = tree.push(kind, anchor, tag, span, &offsets, bytes, flow_depth > 0);
                    let flow = tree.is_flow(id, &span, bytes);
                    if let Kind::Mapping { flow: f, .. } = &mut tree.nodes[id].kind {
                        *f = flow;
                    }
                    tree.attach(&mut stack, id);
                    stack.push(Frame::Mapping {
                        id,
                        pending_key: None,
                    });
                    if flow {
                        flow_depth += 1;
                    }
                }
                Event::SequenceStart(anchor, tag) => {
                    let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                    let kind = Kind::Sequence {
                        flow: false,
                        items: Vec::new(),
                    };
                    let id = tree.push(kind, anchor, tag, span, &offsets, bytes, flow_depth > 0);
                    let flow = tree.is_flow(id, &span, bytes);
                    if let Kind::Sequence { flow: f, .. } = &mut tree.nodes[id].kind {
                        *f = flow;
                    }
                    tree.attach(&mut stack, id);
                    stack.push(Frame::Sequence { id });
                    if flow {
                        flow_depth += 1;
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    if let Some(frame) = stack.pop() {
                        let id = match frame {
                            Frame::Mapping { id, .. } | Frame::Sequence { id } => id,
                        };
                        if matches!(
                            tree.nodes[id].kind,
                            Kind::Mapping { flow: true, .. } | Kind::Sequence { flow: true, .. }
                        ) {
                            flow_depth = flow_depth.saturating_sub(1);
                        }
                    }
                }
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            }
        }
        Ok(tree)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: Kind,
        anchor: usize,
        tag: Option<String>,
        span: Span,
        offsets: &Offsets,
        bytes: &[u8],
        in_flow: bool,
    ) -> usize {
        let start = offsets.byte(span.start.index());
        let props = scan_properties(bytes, start);
        let id = self.nodes.len();
        if anchor != 0 {
            self.anchors.insert(anchor, id);
        }
        self.nodes.push(Node {
            kind,
            anchor,
            anchor_name: props.anchor,
            tag,
            start,
            content_start: props.content_start,
            properties_end: props.properties_end,
            line: span.start.line(),
            in_flow,
        });
        self.node_doc.push(self.docs.len().saturating_sub(1));
        id
    }

    /// A collection written in flow style starts with `{` or `[` after its properties; block
    /// collections have an empty or property-only span.
    fn is_flow(&self, id: usize, span: &Span, bytes: &[u8]) -> bool {
        let c = bytes.get(self.nodes[id].content_start).copied();
        span.start.index() != span.end.index() && matches!(c, Some(b'{' | b'['))
    }

    fn attach(&mut self, stack: &mut [Frame], id: usize) {
        match stack.last_mut() {
            None => {
                if let Some(doc) = self.docs.last_mut() {
                    if doc.root.is_none() {
                        doc.root = Some(id);
                    }
                }
            }
            Some(Frame::Sequence { id: parent }) => {
                let parent = *parent;
                if let Kind::Sequence { items, .. } = &mut self.nodes[parent].kind {
                    items.push(id);
                }
            }
            Some(Frame::Mapping {
                id: parent,
                pending_key,
            }) => {
                let parent = *parent;
                match pending_key.take() {
                    None => *pending_key = Some(id),
                    Some(key) => {
                        if let Kind::Mapping { entries, .. } = &mut self.nodes[parent].kind {
                            entries.push((key, id));
                        }
                    }
                }
            }
        }
    }
}

pub(crate) struct Properties {
    pub anchor: Option<String>,
    pub content_start: usize,
    pub properties_end: usize,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn read_name(bytes: &[u8], mut i: usize) -> String {
    let start = i;
    while i < bytes.len()
        && !is_ws(bytes[i])
        && !matches!(bytes[i], b',' | b'[' | b']' | b'{' | b'}')
    {
        i += 1;
    }
    String::from_utf8_lossy(&bytes[start..i]).into_owned()
}

/// Skips `&anchor` and `!tag` properties (and the whitespace / comments between them and the
/// content) starting at `start`.
pub(crate) fn scan_properties(bytes: &[u8], start: usize) -> Properties {
    let mut i = start;
    let mut anchor = None;
    let mut properties_end = start;
    loop {
        // Whitespace and comments between properties and content.
        let mut j = i;
        loop {
            while j < bytes.len() && is_ws(bytes[j]) {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'#' && (j == 0 || is_ws(bytes[j - 1])) {
                while j < bytes.len() && bytes[j] != b'\n' {
                    j += 1;
                }
                continue;
            }
            break;
        }
        // Only skip whitespace when it leads to another property or we already saw one.
        match bytes.get(j) {
            Some(b'&') if j == i || properties_end > start => {
                let name = read_name(bytes, j + 1);
                let end = j + 1 + name.len();
                anchor = Some(name);
                i = end;
                properties_end = end;
            }
            Some(b'!') if j == i || properties_end > start => {
                let mut k = j + 1;
                if bytes.get(k) == Some(&b'<') {
                    while k < bytes.len() && bytes[k] != b'>' {
                        k += 1;
                    }
                    k = (k + 1).min(bytes.len());
                } else {
                    while k < bytes.len()
                        && !is_ws(bytes[k])
                        && !matches!(bytes[k], b',' | b'[' | b']' | b'{' | b'}')
                    {
                        k += 1;
                    }
                }
                i = k;
                properties_end = k;
            }
            _ => {
                let content_start = if properties_end > start { j } else { start };
                return Properties {
                    anchor,
                    content_start,
                    properties_end,
                };
            }
        }
    }
}
