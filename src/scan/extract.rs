//! Finding WebSocket references in page and script text without running it, the way a site
//! scanner greps: literal `ws://` and `wss://` URLs anywhere, and the client patterns
//! (`new WebSocket(`, Socket.IO `io(`, `new SockJS(`, SignalR `.withUrl(`) with their first
//! argument evaluated as far as the text allows ([`super::js`]) and resolved against the page.
//! Also the links a scan follows: `<script src>`, module preloads, `<base href>` and a script's
//! `import`s. Pure functions over text: no I/O, bounded work, no panic on any input.

use std::sync::LazyLock;

use regex::Regex;
use url::Url;

use super::js::{self, Expr, Part};
use crate::config::secrets::preview;

/// Bytes of context kept on each side of a reference in its snippet.
const SNIPPET_CONTEXT: usize = 60;
/// Characters a snippet keeps in all.
const SNIPPET_CHARS: usize = 200;
/// Longest unquoted URL read after `ws://`.
const MAX_BARE_URL: usize = 2048;
/// Most links (scripts, imports) taken from one source.
const MAX_LINKS: usize = 1000;

/// The page as the browser sees it: what relative URLs and `location.*` resolve against.
#[derive(Debug, Clone)]
pub struct PageContext {
    /// The page's own URL (`location`), after redirects.
    pub location: Url,
    /// The document base URL: the page URL, or its `<base href>`.
    pub base: Url,
}

impl PageContext {
    /// Whether the page itself is served over TLS, which decides run-time scheme choices.
    fn tls(&self) -> bool {
        self.location.scheme() == "https"
    }
}

/// Facts gathered over every source before references are read (a pattern in one file may
/// only be recognisable thanks to another, like `io(` thanks to a loaded Socket.IO client).
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints {
    /// Some source mentions Socket.IO, so `io(...)` is taken as its client.
    pub socket_io: bool,
}

impl Hints {
    /// Gathers the hints from every source text.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        static SOCKET_IO: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)socket\.io"));
        Self {
            socket_io: texts.into_iter().any(|t| SOCKET_IO.is_match(t)),
        }
    }
}

/// How a reference was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A `ws://` or `wss://` URL in the text.
    Literal,
    /// `new WebSocket(url)` (also `ReconnectingWebSocket`).
    WebSocket,
    /// Socket.IO `io(url)` / `io.connect(url)`.
    SocketIo,
    /// `new SockJS(url)`.
    SockJs,
    /// SignalR `HubConnectionBuilder().withUrl(url)`.
    SignalR,
}

impl Pattern {
    /// A short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            Pattern::Literal => "URL literal",
            Pattern::WebSocket => "new WebSocket(...)",
            Pattern::SocketIo => "Socket.IO io(...)",
            Pattern::SockJs => "new SockJS(...)",
            Pattern::SignalR => "SignalR withUrl(...)",
        }
    }
}

/// Whether a reference's connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ws://` (or an `http://` URL handed to a WebSocket client).
    Plaintext,
    /// `wss://` (or `https://`).
    Tls,
    /// The scheme is computed at run time and could not be told from the text.
    Unknown,
}

/// One WebSocket reference found in a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Byte offset of the match in the source.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in bytes from the start of the line (minified lines are long).
    pub column: usize,
    /// How it was found.
    pub pattern: Pattern,
    /// The URL as written: literal text, with computed parts as `${...}`.
    pub written: String,
    /// The WebSocket URL it connects to, when fully known (relative URLs resolved).
    pub url: Option<Url>,
    /// Plaintext, TLS, or unknown.
    pub transport: Transport,
    /// Assumptions and transformations made to get [`Reference::url`], for evidence.
    pub notes: Vec<String>,
    /// The source line around the match, bounded, control characters escaped.
    pub snippet: String,
    /// The argument's byte range, so a literal inside it is not reported twice.
    span: std::ops::Range<usize>,
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file, exercised by the unit tests; an invalid one is
    // a programming error caught there, never something a page controls.
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid built-in pattern {pattern}: {e}"))
}

static LITERAL: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\bwss?:(?://|\\/\\/)"));
static WEBSOCKET: LazyLock<Regex> =
    LazyLock::new(|| re(r"\bnew\s+(?:[A-Za-z_$][\w$]*\s*\.\s*)*(?:Reconnecting)?WebSocket\s*\("));
static SOCKJS: LazyLock<Regex> =
    LazyLock::new(|| re(r"\bnew\s+(?:[A-Za-z_$][\w$]*\s*\.\s*)*SockJS\s*\("));
static SIGNALR: LazyLock<Regex> = LazyLock::new(|| re(r"\.\s*withUrl\s*\("));
static SOCKET_IO: LazyLock<Regex> = LazyLock::new(|| re(r"\bio(?:\s*\.\s*connect)?\s*\("));
static SOCKET_IO_PATH: LazyLock<Regex> =
    LazyLock::new(|| re(r#"\bpath\s*:\s*(?:"([^"]*)"|'([^']*)'|`([^`$]*)`)"#));

/// Finds every reference in `text`, in source order, at most `max` of them; the second value
/// counts the matches beyond `max`, which are not examined.
pub fn find_references(
    text: &str,
    page: &PageContext,
    hints: Hints,
    max: usize,
) -> (Vec<Reference>, usize) {
    let lines = Lines::new(text);
    let mut found: Vec<Reference> = Vec::new();
    let patterns: [(&Regex, Pattern); 4] = [
        (&WEBSOCKET, Pattern::WebSocket),
        (&SOCKJS, Pattern::SockJs),
        (&SIGNALR, Pattern::SignalR),
        (&SOCKET_IO, Pattern::SocketIo),
    ];
    // Past `max`, matches are only counted: a hostile page cannot make the scan parse more.
    let mut extra = 0;
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    for (regex, pattern) in patterns {
        for m in regex.find_iter(text) {
            if pattern == Pattern::SocketIo && !socket_io_call(text, m.start(), hints) {
                continue;
            }
            if found.len() >= max {
                extra += 1;
                continue;
            }
            if let Some(r) = call_reference(text, &lines, m.start(), m.end(), pattern, page) {
                spans.push(r.span.clone());
                found.push(r);
            }
        }
    }
    // A literal inside a pattern's argument is that pattern's reference, not another one.
    spans.sort_by_key(|s| s.start);
    let reach: Vec<usize> = spans
        .iter()
        .scan(0, |end, s| {
            *end = s.end.max(*end);
            Some(*end)
        })
        .collect();
    let covered = |pos: usize| {
        let i = spans.partition_point(|s| s.start <= pos);
        i > 0 && reach[i - 1] > pos
    };
    for m in LITERAL.find_iter(text) {
        if covered(m.start()) {
            continue;
        }
        if found.len() >= max {
            extra += 1;
            continue;
        }
        found.push(literal_reference(text, &lines, m.start(), page));
    }
    found.sort_by_key(|r| r.offset);
    (found, extra)
}

/// `io(` is a common minified name: it counts only as Socket.IO when something mentions
/// Socket.IO and it is not a member (`x.io(`) or part of a `$`-name.
fn socket_io_call(text: &str, start: usize, hints: Hints) -> bool {
    let before = start.checked_sub(1).and_then(|i| text.as_bytes().get(i));
    hints.socket_io && !matches!(before, Some(b'.' | b'$'))
}

fn call_reference(
    text: &str,
    lines: &Lines,
    start: usize,
    open_end: usize,
    pattern: Pattern,
    page: &PageContext,
) -> Option<Reference> {
    let bytes = text.as_bytes();
    let arg_start = js::skip_ws(bytes, open_end, text.len());
    let (expr, options_from) = match bytes.get(arg_start) {
        // `io()` and `io({ path })` connect to the page's own origin.
        Some(b')' | b'{') if pattern == Pattern::SocketIo => (
            Expr {
                parts: vec![Part::Lit(String::new())],
                end: arg_start,
            },
            arg_start,
        ),
        _ => {
            let e = js::parse_expr(text, arg_start);
            let end = e.end;
            (e, end)
        }
    };
    if expr.parts.is_empty() {
        return None;
    }
    // A variable alone says nothing for `io(`, which minifiers use for anything.
    if pattern == Pattern::SocketIo && expr.parts.iter().all(|p| matches!(p, Part::Opaque(_))) {
        return None;
    }
    let mut resolved = resolve(&expr.parts, page);
    if let Some(url) = resolved.url.take() {
        resolved.url = match pattern {
            Pattern::SocketIo => {
                let path = socket_io_path(text, options_from);
                Some(socket_io_url(url, path.as_deref(), &mut resolved.notes))
            }
            Pattern::SockJs => Some(sockjs_url(url, &mut resolved.notes)),
            _ => Some(url),
        };
    }
    let (line, column) = lines.locate(start);
    Some(Reference {
        offset: start,
        line,
        column,
        pattern,
        written: resolved.written,
        transport: resolved.transport,
        url: resolved.url,
        notes: resolved.notes,
        snippet: snippet(
            text,
            &lines.line_range(start),
            start,
            expr.end.max(open_end),
        ),
        span: arg_start..expr.end.max(arg_start + 1),
    })
}

/// The `path` option of a Socket.IO call, looked for in the rest of the call's arguments.
fn socket_io_path(text: &str, from: usize) -> Option<String> {
    let bytes = text.as_bytes();
    let mut pos = js::skip_ws(bytes, from, text.len());
    if bytes.get(pos) == Some(&b',') {
        pos = js::skip_ws(bytes, pos + 1, text.len());
    }
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    let limit = text.len().min(pos + 4096);
    let end = js::skip_balanced(bytes, pos, limit)?;
    let caps = SOCKET_IO_PATH.captures(text.get(pos..end)?)?;
    (1..=3)
        .find_map(|i| caps.get(i))
        .map(|m| m.as_str().to_string())
}

fn socket_io_url(mut url: Url, path: Option<&str>, notes: &mut Vec<String>) -> Url {
    let path = path.unwrap_or("/socket.io");
    url.set_path(&format!("{}/", path.trim_end_matches('/')));
    url.set_query(Some("EIO=4&transport=websocket"));
    url.set_fragment(None);
    notes.push(format!(
        "Socket.IO connects its WebSocket transport to {} (the URL's path names a namespace)",
        crate::client::display_url(&url)
    ));
    url
}

fn sockjs_url(mut url: Url, notes: &mut Vec<String>) -> Url {
    let path = format!("{}/websocket", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_fragment(None);
    notes.push("SockJS serves its raw WebSocket transport at `<prefix>/websocket`".into());
    url
}

fn literal_reference(text: &str, lines: &Lines, start: usize, page: &PageContext) -> Reference {
    let bytes = text.as_bytes();
    let quoted = start
        .checked_sub(1)
        .filter(|i| matches!(bytes.get(*i), Some(b'"' | b'\'' | b'`')));
    let evaluated = quoted
        .map(|q| js::parse_expr(text, q))
        .filter(|e| matches!(e.parts.first(), Some(Part::Lit(_))));
    let (resolved, end) = match evaluated {
        Some(e) => (resolve(&e.parts, page), e.end),
        None => {
            let (bare, end) = bare_url(text, start);
            (resolve(&[Part::Lit(bare)], page), end)
        }
    };
    let mut resolved = resolved;
    let range = lines.line_range(start);
    if is_scheme_only(&resolved.written) && switch_nearby(text, &range, start) {
        resolved.transport = if page.tls() {
            Transport::Tls
        } else {
            Transport::Plaintext
        };
        resolved.notes.push(format!(
            "a bare `ws://` beside a `wss` alternative: the usual choice by the page's protocol, \
             which is {} here",
            page.location.scheme()
        ));
    }
    let (line, column) = lines.locate(start);
    Reference {
        offset: start,
        line,
        column,
        pattern: Pattern::Literal,
        written: resolved.written,
        url: resolved.url,
        transport: resolved.transport,
        notes: resolved.notes,
        snippet: snippet(text, &range, start, end),
        span: start..end.max(start + 1),
    }
}

/// An unquoted URL (in HTML text, a comment, an attribute without quotes).
fn bare_url(text: &str, start: usize) -> (String, usize) {
    let mut out = String::new();
    let mut end = start;
    let rest = text.get(start..).unwrap_or_default();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if i >= MAX_BARE_URL {
            break;
        }
        let stop = c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '{' | '}' | '|' | '^'
            )
            || (c == '$' && chars.peek().map(|(_, n)| *n) == Some('{'));
        if stop {
            break;
        }
        if c == '\\' {
            if chars.peek().map(|(_, n)| *n) != Some('/') {
                break;
            }
            continue;
        }
        out.push(c);
        end = start + i + c.len_utf8();
    }
    while out.ends_with(['.', ',', ';', ':', '!', '?']) {
        out.pop();
    }
    (out, end)
}

/// `ws://` with nothing after it: the scheme half of a URL built at run time.
fn is_scheme_only(written: &str) -> bool {
    let lower = written.to_ascii_lowercase();
    lower == "ws://" || lower.starts_with("ws://${")
}

/// Whether a `wss` literal sits within the context of `at` on its line.
fn switch_nearby(text: &str, line: &std::ops::Range<usize>, at: usize) -> bool {
    static WSS_LITERAL: LazyLock<Regex> = LazyLock::new(|| re(r#"(?i)["'`]wss(?::(?://)?)?["'`]"#));
    let from = floor_boundary(text, at.saturating_sub(2 * SNIPPET_CONTEXT).max(line.start));
    let to = floor_boundary(text, (at + 2 * SNIPPET_CONTEXT).min(line.end));
    text.get(from..to).is_some_and(|t| WSS_LITERAL.is_match(t))
}

/// What an evaluated argument comes to.
struct Resolved {
    written: String,
    url: Option<Url>,
    transport: Transport,
    notes: Vec<String>,
}

/// Joins the parts into a WebSocket URL against the page, when every part is known (or only
/// the scheme is chosen at run time, which then follows the page).
fn resolve(parts: &[Part], page: &PageContext) -> Resolved {
    let mut written = String::new();
    let mut value = String::new();
    let mut notes = Vec::new();
    let mut unknown = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Lit(s) => {
                written.push_str(s);
                value.push_str(s);
            }
            Part::Location(f) => {
                written.push_str(&format!("${{{}}}", f.name()));
                value.push_str(&f.value(&page.location));
            }
            Part::SchemeSwitch { tls, plain } => {
                written.push_str(&format!("${{{tls}|{plain}}}"));
                value.push_str(if page.tls() { tls } else { plain });
                notes.push(format!(
                    "the scheme is chosen by the page's protocol (`{tls}` or `{plain}`); {} here",
                    page.location.scheme()
                ));
            }
            Part::Opaque(s) => {
                written.push_str(&format!("${{{s}}}"));
                unknown.push(i);
            }
        }
    }
    let location_note = |notes: &mut Vec<String>| {
        if parts.iter().any(|p| matches!(p, Part::Location(_))) {
            notes.push(format!(
                "`location` taken from the page {}",
                crate::client::display_url(&page.location)
            ));
        }
    };
    let url = match unknown.as_slice() {
        [] => ws_url(&value, page, &mut notes),
        // `${proto}://host/ws`: only the scheme is computed; assume it follows the page.
        [0] if scheme_separator(&value) => {
            notes.push(format!(
                "the scheme `${{{}}}` is computed at run time; assumed to follow the page ({})",
                opaque_name(&parts[0]),
                page.location.scheme()
            ));
            ws_url(
                &format!(
                    "//{}",
                    value.trim_start_matches(':').trim_start_matches('/')
                ),
                page,
                &mut notes,
            )
        }
        _ => None,
    };
    if url.is_some() {
        location_note(&mut notes);
    }
    let transport = match &url {
        Some(u) if u.scheme() == "wss" => Transport::Tls,
        Some(_) => Transport::Plaintext,
        None => prefix_transport(&written, page),
    };
    if url.is_none() && !unknown.is_empty() {
        notes.push("part of the URL is computed at run time; it cannot be probed".into());
    }
    Resolved {
        written,
        url,
        transport,
        notes,
    }
}

fn opaque_name(part: &Part) -> &str {
    match part {
        Part::Opaque(s) => s,
        _ => "",
    }
}

fn scheme_separator(rest: &str) -> bool {
    rest.starts_with("://") || rest.starts_with("//")
}

/// The transport a partly computed URL will use, from its literal beginning.
fn prefix_transport(written: &str, page: &PageContext) -> Transport {
    let lower = written.to_ascii_lowercase();
    let page_transport = if page.tls() {
        Transport::Tls
    } else {
        Transport::Plaintext
    };
    if lower.starts_with("wss:") || lower.starts_with("https:") {
        Transport::Tls
    } else if lower.starts_with("ws:") || lower.starts_with("http:") {
        Transport::Plaintext
    } else if lower.starts_with('/') || lower.starts_with('.') {
        page_transport
    } else {
        Transport::Unknown
    }
}

/// Resolves a URL text against the page and maps it to its WebSocket scheme.
fn ws_url(text: &str, page: &PageContext, notes: &mut Vec<String>) -> Option<Url> {
    let text = text.trim();
    let mut url = page.base.join(text).ok()?;
    let absolute = Url::parse(text).is_ok();
    let ws_scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return None,
    };
    url.host_str()?;
    if !absolute {
        notes.push(format!(
            "relative URL resolved against the page {}",
            crate::client::display_url(&page.base)
        ));
    }
    if url.scheme() != ws_scheme {
        notes.push(format!(
            "a WebSocket client opens {}:// URLs as {ws_scheme}://",
            url.scheme()
        ));
        url.set_scheme(ws_scheme).ok()?;
    }
    url.set_fragment(None);
    Some(url)
}

/// The source around `start..end` on its line, at most [`SNIPPET_CHARS`] characters.
fn snippet(text: &str, line: &std::ops::Range<usize>, start: usize, end: usize) -> String {
    let from = floor_boundary(text, start.saturating_sub(SNIPPET_CONTEXT).max(line.start));
    let to = floor_boundary(
        text,
        end.saturating_add(SNIPPET_CONTEXT).min(line.end).max(from),
    );
    let body = preview(
        text.get(from..to).unwrap_or_default().trim().as_bytes(),
        SNIPPET_CHARS,
    );
    let mut out = String::new();
    if from > line.start {
        out.push('…');
    }
    out.push_str(&body);
    if to < line.end && !body.ends_with('…') {
        out.push('…');
    }
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Line starts of a text, for turning offsets into lines and columns.
struct Lines {
    starts: Vec<usize>,
    len: usize,
}

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Self {
            starts,
            len: text.len(),
        }
    }

    fn index(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|s| *s <= offset)
            .saturating_sub(1)
    }

    /// 1-based line and byte column.
    fn locate(&self, offset: usize) -> (usize, usize) {
        let i = self.index(offset);
        let start = self.starts.get(i).copied().unwrap_or(0);
        (i + 1, offset - start + 1)
    }

    /// The byte range of the line holding `offset`, without its newline.
    fn line_range(&self, offset: usize) -> std::ops::Range<usize> {
        let i = self.index(offset);
        let start = self.starts.get(i).copied().unwrap_or(0);
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.len, |next| next.saturating_sub(1));
        start..end.max(start)
    }
}

/// The links of an HTML page a scan follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLinks {
    /// The document base URL (`<base href>` or the page URL).
    pub base: Url,
    /// Scripts (`<script src>`, module preloads), resolved, in document order, deduplicated.
    pub scripts: Vec<Url>,
}

/// Reads `<base href>`, `<script src>` and `<link rel=modulepreload|preload as=script>` of a page.
pub fn page_links(html: &str, page_url: &Url) -> PageLinks {
    static BASE: LazyLock<Regex> = LazyLock::new(|| re(r"(?is)<base\b([^>]*)>"));
    static SCRIPT: LazyLock<Regex> = LazyLock::new(|| re(r"(?is)<script\b([^>]*)>"));
    static LINK: LazyLock<Regex> = LazyLock::new(|| re(r"(?is)<link\b([^>]*)>"));
    let base = BASE
        .captures(html)
        .and_then(|c| attribute(c.get(1)?.as_str(), "href"))
        .and_then(|href| page_url.join(&href).ok())
        .unwrap_or_else(|| page_url.clone());
    let mut found = Vec::new();
    for caps in SCRIPT.captures_iter(html).chain(LINK.captures_iter(html)) {
        let (Some(tag), Some(attrs)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        let attrs = attrs.as_str();
        let is_script_tag = tag
            .as_str()
            .get(1..7)
            .is_some_and(|t| t.eq_ignore_ascii_case("script"));
        let href = if is_script_tag {
            attribute(attrs, "src")
        } else {
            let rel = attribute(attrs, "rel")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let is_script = rel.split_whitespace().any(|r| r == "modulepreload")
                || (rel.split_whitespace().any(|r| r == "preload")
                    && attribute(attrs, "as").is_some_and(|a| a.eq_ignore_ascii_case("script")));
            if !is_script {
                continue;
            }
            attribute(attrs, "href")
        };
        if let Some(url) = href.and_then(|h| base.join(h.trim()).ok()) {
            found.push((tag.start(), url));
        }
    }
    found.sort_by_key(|(at, _)| *at);
    PageLinks {
        base,
        scripts: dedup_links(found.into_iter().map(|(_, u)| u)),
    }
}

/// The modules and workers a script loads by a literal URL: `import ... from "./x.js"`,
/// `import("./x.js")`, `new Worker("w.js")`, `importScripts("a.js")`. Bare specifiers (`"react"`)
/// name packages, not URLs, and are skipped.
pub fn script_links(js: &str, script_url: &Url) -> Vec<Url> {
    static LOADS: LazyLock<Regex> = LazyLock::new(|| {
        re(
            r#"(?:(\bimport\s*(?:[\w$*{},\s]+?\s*from\s*)?|\bimport\s*\(\s*|\bexport\s*[\w$*{},\s]*?\s*from\s*)|\bnew\s+(?:Shared)?Worker\s*\(\s*|\bimportScripts\s*\(\s*)(?:"([^"\n]{1,500})"|'([^'\n]{1,500})')"#,
        )
    });
    let mut found: Vec<Url> = Vec::new();
    for c in LOADS.captures_iter(js) {
        let Some(spec) = c.get(2).or_else(|| c.get(3)) else {
            continue;
        };
        let spec = spec.as_str();
        // A module specifier is a URL only when it looks like one; `"react"` names a package.
        // Worker and importScripts arguments are always URLs.
        let is_module = c.get(1).is_some();
        let url_like = ["/", "./", "../", "http://", "https://"]
            .iter()
            .any(|p| spec.starts_with(p));
        if (url_like || !is_module)
            && let Ok(u) = script_url.join(spec)
        {
            found.push(u);
        }
    }
    dedup_links(found.into_iter())
}

fn dedup_links(urls: impl Iterator<Item = Url>) -> Vec<Url> {
    let mut out: Vec<Url> = Vec::new();
    for mut url in urls {
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        url.set_fragment(None);
        if !out.contains(&url) {
            out.push(url);
        }
        if out.len() >= MAX_LINKS {
            break;
        }
    }
    out
}

/// The value of an HTML attribute (quoted or not), with the common entities decoded.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    static ATTR: LazyLock<Regex> = LazyLock::new(|| {
        re(r#"(?i)(?:^|\s)([a-z][a-z0-9_:-]*)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?"#)
    });
    ATTR.captures_iter(attrs).find_map(|c| {
        if !c.get(1)?.as_str().eq_ignore_ascii_case(name) {
            return None;
        }
        let raw = c.get(2).or_else(|| c.get(3)).or_else(|| c.get(4))?.as_str();
        Some(decode_entities(raw))
    })
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(url: &str) -> PageContext {
        let u = Url::parse(url).expect("page url");
        PageContext {
            base: u.clone(),
            location: u,
        }
    }

    fn refs(text: &str) -> Vec<Reference> {
        refs_with(text, "https://app.example.com/dash/index.html", true)
    }

    fn refs_with(text: &str, url: &str, socket_io: bool) -> Vec<Reference> {
        find_references(text, &page(url), Hints { socket_io }, 100).0
    }

    fn urls(text: &str) -> Vec<String> {
        refs(text)
            .iter()
            .map(|r| {
                r.url
                    .as_ref()
                    .map_or(format!("?{}", r.written), Url::to_string)
            })
            .collect()
    }

    #[test]
    fn literals_in_quotes_and_prose() {
        let r =
            refs("const a = \"ws://chat.example.com/live\";\n// see wss://docs.example.com/x.\n");
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].line, r[0].column), (1, 12));
        assert_eq!(r[0].transport, Transport::Plaintext);
        assert_eq!(
            r[0].url.as_ref().map(Url::as_str),
            Some("ws://chat.example.com/live")
        );
        assert_eq!(r[1].line, 2);
        assert_eq!(r[1].written, "wss://docs.example.com/x");
        assert_eq!(r[1].transport, Transport::Tls);
        assert!(
            r[0].snippet.contains("ws://chat.example.com/live"),
            "{}",
            r[0].snippet
        );
    }

    #[test]
    fn escaped_slashes_and_case() {
        assert_eq!(
            urls(r#"{"u":"wss:\/\/h.example\/ws"}"#),
            ["wss://h.example/ws"]
        );
        assert_eq!(urls("x='WS://H.EXAMPLE/a'"), ["ws://h.example/a"]);
        assert!(urls("news://not.a.websocket/").is_empty());
    }

    #[test]
    fn constructors_resolve_relative_urls() {
        assert_eq!(
            urls(r#"var s=new WebSocket("/ws");"#),
            ["wss://app.example.com/ws"]
        );
        assert_eq!(
            urls(r#"new window.WebSocket('feed')"#),
            ["wss://app.example.com/dash/feed"]
        );
        assert_eq!(
            urls(r#"new WebSocket("//other.example/x")"#),
            ["wss://other.example/x"]
        );
        assert_eq!(
            urls(r#"new WebSocket("https://h.example/x")"#),
            ["wss://h.example/x"]
        );
        let r = refs_with(r#"new WebSocket("/ws")"#, "http://app.example.com/", false);
        assert_eq!(r[0].transport, Transport::Plaintext);
        assert_eq!(
            r[0].url.as_ref().map(Url::as_str),
            Some("ws://app.example.com/ws")
        );
    }

    #[test]
    fn a_literal_inside_a_constructor_is_reported_once() {
        let r = refs(r#"new WebSocket("wss://h.example/ws")"#);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].pattern, Pattern::WebSocket);
    }

    #[test]
    fn templates_and_concatenation_with_location() {
        assert_eq!(
            urls("new WebSocket(`wss://${location.host}/ws`)"),
            ["wss://app.example.com/ws"]
        );
        assert_eq!(
            urls(r#"const u = "wss://" + window.location.hostname + ":9443/rt";"#),
            ["wss://app.example.com:9443/rt"]
        );
        let r = refs("new WebSocket(`${proto}://${location.host}/ws`)");
        assert_eq!(
            r[0].url.as_ref().map(Url::as_str),
            Some("wss://app.example.com/ws")
        );
        assert!(
            r[0].notes.iter().any(|n| n.contains("assumed")),
            "{:?}",
            r[0].notes
        );
        let r = refs("new WebSocket(`wss://${cfg.host}/ws`)");
        assert_eq!(r[0].url, None);
        assert_eq!(r[0].written, "wss://${cfg.host}/ws");
        assert_eq!(r[0].transport, Transport::Tls);
        let r = refs("new WebSocket(`ws://${cfg.host}/ws`)");
        assert_eq!(r[0].transport, Transport::Plaintext);
        let r = refs("new WebSocket(url)");
        assert_eq!(
            (r[0].transport, r[0].url.is_none()),
            (Transport::Unknown, true)
        );
    }

    #[test]
    fn protocol_switch_is_not_plaintext_on_an_https_page() {
        let src = r#"const p = location.protocol === "https:" ? "wss://" : "ws://"; const s = new WebSocket(p + location.host + "/ws");"#;
        let r = refs(src);
        let bare: Vec<_> = r.iter().filter(|r| r.pattern == Pattern::Literal).collect();
        assert!(
            bare.iter().all(|r| r.transport == Transport::Tls),
            "{bare:?}"
        );
        let src = "new WebSocket((location.protocol == 'https:' ? 'wss://' : 'ws://') + location.host + '/ws')";
        assert_eq!(urls(src), ["wss://app.example.com/ws"]);
        let r = refs_with(src, "http://app.example.com/", false);
        assert_eq!(r[0].transport, Transport::Plaintext);
        let r = refs(r#"const u = "ws://" + host;"#);
        assert_eq!(r[0].transport, Transport::Plaintext);
    }

    #[test]
    fn socket_io_sockjs_signalr() {
        assert_eq!(
            urls(r#"const s = io("https://rt.example.com/chat");"#),
            ["wss://rt.example.com/socket.io/?EIO=4&transport=websocket"]
        );
        assert_eq!(
            urls(r#"const s = io();"#),
            ["wss://app.example.com/socket.io/?EIO=4&transport=websocket"]
        );
        assert_eq!(
            urls(r#"io.connect("/", { path: "/rt/sio", transports: ["websocket"] })"#),
            ["wss://app.example.com/rt/sio/?EIO=4&transport=websocket"]
        );
        assert!(refs_with(r#"io("/x")"#, "https://a.example/", false).is_empty());
        assert!(urls("a.io(e); $io(1); io(e)").is_empty());
        assert_eq!(
            urls(r#"var sock = new SockJS("/echo");"#),
            ["wss://app.example.com/echo/websocket"]
        );
        assert_eq!(
            urls(r#"new signalR.HubConnectionBuilder().withUrl("/hubs/chat").build()"#),
            ["wss://app.example.com/hubs/chat"]
        );
    }

    #[test]
    fn minified_lines_keep_columns_and_bounded_snippets() {
        let filler = "a=1;".repeat(5000);
        let src = format!("{filler}var w=new WebSocket(\"ws://m.example/x\");{filler}");
        let r = refs(&src);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].line, r[0].column), (1, 20_007));
        assert!(
            r[0].snippet.chars().count() <= SNIPPET_CHARS + 2,
            "{}",
            r[0].snippet
        );
        assert!(r[0].snippet.starts_with('…') && r[0].snippet.ends_with('…'));
    }

    #[test]
    fn references_are_bounded() {
        let src = "'wss://h.example/a' ".repeat(50);
        let (r, extra) = find_references(&src, &page("https://a.example/"), Hints::default(), 10);
        assert_eq!((r.len(), extra), (10, 40));
    }

    #[test]
    fn page_links_follow_base_and_preloads() {
        let html = r#"<html><head><base href="/app/">
            <script src="main.js?v=1&amp;x=2"></script>
            <SCRIPT type=module src=/static/m.js></SCRIPT>
            <link rel="modulepreload" href="chunk.js"><link rel=preload as=script href='p.js'>
            <link rel="stylesheet" href="s.css"><script>inline()</script>
            <script src="https://cdn.example.net/lib.js"></script><script src="main.js?v=1&x=2"></script>"#;
        let links = page_links(
            html,
            &Url::parse("https://a.example/index.html").expect("url"),
        );
        assert_eq!(links.base.as_str(), "https://a.example/app/");
        let got: Vec<&str> = links.scripts.iter().map(Url::as_str).collect();
        assert_eq!(
            got,
            [
                "https://a.example/app/main.js?v=1&x=2",
                "https://a.example/static/m.js",
                "https://a.example/app/chunk.js",
                "https://a.example/app/p.js",
                "https://cdn.example.net/lib.js",
            ]
        );
    }

    #[test]
    fn script_imports() {
        let js = r#"import a from "./a.js";import {b} from '../b.js';import "react";
            const c = await import("/c.js"); new Worker("w.js"); export * from "./d.js";"#;
        let got: Vec<String> = script_links(
            js,
            &Url::parse("https://a.example/js/main.js").expect("url"),
        )
        .iter()
        .map(Url::to_string)
        .collect();
        assert_eq!(
            got,
            [
                "https://a.example/js/a.js",
                "https://a.example/b.js",
                "https://a.example/c.js",
                "https://a.example/js/w.js",
                "https://a.example/js/d.js",
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(s in "\\PC{0,400}") {
            let p = page("https://a.example/x/");
            let (r, _) = find_references(&s, &p, Hints { socket_io: true }, 50);
            for r in r {
                proptest::prop_assert!(r.line >= 1 && r.column >= 1);
            }
            let _ = page_links(&s, &p.location);
            let _ = script_links(&s, &p.location);
        }

        #[test]
        fn never_panics_on_js_like_text(s in r#"(new WebSocket\(|io\(|`|\$\{|"|'|wss?://|\+|location\.host|\)|\\|[a-z/:.]){0,60}"#) {
            let p = page("https://a.example/");
            let _ = find_references(&s, &p, Hints { socket_io: true }, 50);
        }
    }
}
