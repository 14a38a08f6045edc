//! STOMP 1.2 frames over a WebSocket: `COMMAND`, `header:value` lines, an empty line, the body
//! and a NUL; a bare end-of-line between frames is a heart-beat. Header values are escaped
//! (`\\`, `\n`, `\r`, `\c`) except in `CONNECT` / `CONNECTED` frames, as the specification says.

/// The subprotocols a STOMP client offers, most preferred first.
pub const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// Headers kept per frame at most, and bytes per header line: a hostile peer cannot make a
/// reader hold more than the frame itself.
const MAX_HEADERS: usize = 128;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its command (`SEND`, `MESSAGE`, ...).
    pub command: String,
    /// Its headers, in order (the first of a repeated name counts).
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: String,
}

impl Frame {
    /// A frame with no headers and no body.
    pub fn new(command: &str) -> Self {
        Self {
            command: command.to_string(),
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    /// The first value of header `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The frame as sent: headers escaped (except on CONNECT and CONNECTED), the body, NUL.
    pub fn encode(&self) -> String {
        let raw = matches!(self.command.as_str(), "CONNECT" | "CONNECTED" | "STOMP");
        let mut out = String::with_capacity(self.body.len() + 64);
        out.push_str(&self.command);
        out.push('\n');
        for (name, value) in &self.headers {
            if raw {
                out.push_str(name);
                out.push(':');
                out.push_str(value);
            } else {
                out.push_str(&escape(name));
                out.push(':');
                out.push_str(&escape(value));
            }
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.body);
        out.push('\0');
        out
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ':' => out.push_str("\\c"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            'n' => '\n',
            'r' => '\r',
            'c' => ':',
            _ => return None,
        });
    }
    Some(out)
}

/// A `CONNECT` frame to `host` accepting versions 1.2 down to 1.0 and offering `heart_beat`
/// (what the client sends, what it asks for, in ms); credential headers go on top.
pub fn connect_frame(host: &str, heart_beat: (u32, u32)) -> Frame {
    Frame::new("CONNECT")
        .header("accept-version", "1.2,1.1,1.0")
        .header("host", host)
        .header("heart-beat", &format!("{},{}", heart_beat.0, heart_beat.1))
}

/// What one WebSocket message held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Heart-beats (bare end-of-lines) seen.
    pub heartbeats: usize,
    /// Complete frames.
    pub frames: Vec<Frame>,
    /// Why the rest could not be read, if it could not.
    pub malformed: Option<&'static str>,
}

/// Reads the frames and heart-beats of one WebSocket message.
pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut rest = text;
    loop {
        // Heart-beats: end-of-lines between frames.
        let trimmed = rest.trim_start_matches(['\n', '\r']);
        out.heartbeats += rest[..rest.len() - trimmed.len()].matches('\n').count();
        rest = trimmed;
        if rest.is_empty() {
            return out;
        }
        match parse_frame(rest) {
            Ok((frame, after)) => {
                out.frames.push(frame);
                rest = after;
            }
            Err(why) => {
                out.malformed = Some(why);
                return out;
            }
        }
    }
}

fn parse_frame(text: &str) -> Result<(Frame, &str), &'static str> {
    let (command, mut rest) = text.split_once('\n').ok_or("a frame without a line end")?;
    let command = command.strip_suffix('\r').unwrap_or(command);
    if command.is_empty() || !command.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("a frame whose command is not an upper-case word");
    }
    let raw = matches!(command, "CONNECT" | "CONNECTED" | "STOMP");
    let mut headers = Vec::new();
    loop {
        let (line, after) = rest.split_once('\n').ok_or("headers without an end")?;
        rest = after;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err("more headers than a frame may have");
        }
        let (name, value) = line
            .split_once(':')
            .ok_or("a header line without a colon")?;
        let (name, value) = if raw {
            (name.to_string(), value.to_string())
        } else {
            (
                unescape(name).ok_or("an undefined escape in a header")?,
                unescape(value).ok_or("an undefined escape in a header")?,
            )
        };
        headers.push((name, value));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.trim().parse::<usize>());
    let (body, after) = match length {
        Some(Ok(n)) => {
            let body = rest
                .get(..n)
                .ok_or("a body shorter than its content-length")?;
            let after = rest[n..]
                .strip_prefix('\0')
                .ok_or("a body not ended by NUL after its content-length")?;
            (body, after)
        }
        Some(Err(_)) => return Err("a content-length that is not a number"),
        None => rest.split_once('\0').ok_or("a frame not ended by NUL")?,
    };
    Ok((
        Frame {
            command: command.to_string(),
            headers,
            body: body.to_string(),
        },
        after,
    ))
}

/// Reads a `heart-beat` header value, `cx,cy` in milliseconds.
pub fn parse_heart_beat(value: &str) -> Option<(u32, u32)> {
    let (a, b) = value.split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Whether a WebSocket message is nothing but heart-beats.
pub fn is_heartbeat(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b == b'\n' || b == b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_malformed_ones_are_named() {
        let f = Frame::new("SEND")
            .header("destination", "/app/pay")
            .header("note", "a:b\nc")
            .body("{\"a\":1}");
        let wire = f.encode();
        assert!(wire.contains("note:a\\cb\\nc\n"), "{wire:?}");
        let p = parse(&format!("\n\n{wire}\n"));
        assert_eq!((p.heartbeats, p.frames.len(), p.malformed), (3, 1, None));
        assert_eq!(p.frames[0], f);
        let c = Frame::new("CONNECT").header("passcode", "a:b").encode();
        assert_eq!(parse(&c).frames[0].get("passcode"), Some("a:b"));
        let with_len = "MESSAGE\ncontent-length:3\n\na\0b\0";
        assert_eq!(parse(with_len).frames[0].body, "a\0b");
        assert!(parse("SEND\ndestination:x\n\nno nul").malformed.is_some());
        assert!(parse("send\n\n\0").malformed.is_some());
        assert!(parse("SEND\ncontent-length:99\n\nab\0").malformed.is_some());
        assert!(is_heartbeat("\r\n") && !is_heartbeat("") && !is_heartbeat("\nX"));
        assert_eq!(parse_heart_beat("500, 0"), Some((500, 0)));
    }
}
