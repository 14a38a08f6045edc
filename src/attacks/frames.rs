//! Hand-built frames (size and protocol families): any opcode, FIN/RSV bits, masked or not, a
//! declared length other than the bytes sent, fragments, and large payloads streamed from a
//! small reused buffer.

use std::time::Duration;

use tokio::time::Instant;

use super::channel::Kind;
use super::session::{LastSent, Session};
use super::{Judge, Judgement, Perform, StepResult};
use crate::client::conn::AFTER_CLOSE_GRACE;
use crate::client::{Event, FrameSpec, Mask};
use crate::plan::expect::{CONFORMS_WAIT, Conforms};
use crate::plan::step::SendFrame;

/// Largest payload built in memory; bigger ones are streamed.
const IN_MEMORY: usize = 256 * 1024;

impl Perform for SendFrame {
    /// `send_frame`: frame-level, past the dialect.
    async fn perform(&self, s: &mut Session) -> StepResult {
        let f = self;
        let log = s.log().clone();
        let text = match &f.text {
            Some(t) => Some(s.render(t)?),
            None => None,
        };
        let timeout = s.rt().target.limits.case_timeout;
        if let Some(link) = s.current() {
            link.mutated = true;
        }
        let Some(conn) = s.channel() else {
            log.note("no connection (the handshake was refused): nothing sent");
            return Ok(());
        };
        let mut payload = match f.close_code {
            Some(code) => code.to_be_bytes().to_vec(),
            None => Vec::new(),
        };
        if let Some(p) = &f.payload {
            payload.extend_from_slice(&p.0);
        }
        // Text is the valid message: in the dialect's envelope as a real client sends it,
        // padded inside it to `pad_to` when the whole frame is built here.
        let streamed =
            f.declared_length.is_some() || f.pad_to.is_some_and(|p| p.as_usize() > IN_MEMORY);
        let mut padded_inside = false;
        if let Some(t) = &text {
            let pad_inside = f.pad_to.filter(|_| !streamed).map(|p| p.as_usize());
            padded_inside = pad_inside.is_some();
            let wire = conn
                .frame_payload(t, pad_inside)
                .await
                .map_err(|e| format!("cannot build the frame: {e}"))?;
            payload.extend_from_slice(&wire);
        }
        // `pad_to` pads the text (a valid message) with JSON whitespace; `payload_size` fills
        // with `a`.
        let size = f
            .payload_size
            .or(f.pad_to.filter(|_| !padded_inside))
            .map(|s| s.as_usize());
        let fill = if f.pad_to.is_some() { b' ' } else { b'a' };
        let mask = if f.masked {
            Mask::Random
        } else {
            Mask::Unmasked
        };
        let spec = |opcode: u8, payload: Vec<u8>, fin: bool| {
            let mut s = FrameSpec::new(opcode, payload)
                .fin(fin)
                .rsv(f.rsv1, f.rsv2, f.rsv3)
                .mask(mask);
            if let Some(d) = f.declared_length {
                s = s.declaring(d.0);
            }
            s
        };
        match (size, f.fragments.unwrap_or(1)) {
            // One large frame: header, then the payload from a small reused buffer.
            (Some(n), 1) if n > IN_MEMORY || f.declared_length.is_some() => {
                let report = conn
                    .stream_frame_after(
                        &spec(f.opcode.0, vec![fill], f.fin),
                        &payload,
                        n as u64,
                        timeout,
                    )
                    .await;
                log.note(format!(
                    "{} of {n} payload bytes written ({:?})",
                    report.payload_sent, report.stop
                ));
            }
            (size, fragments) => {
                if let Some(n) = size {
                    payload.resize(n.min(IN_MEMORY.max(payload.len())), fill);
                    if n > payload.len() {
                        return Err(format!(
                            "a fragmented payload of {n} B is too large to build (at most {IN_MEMORY} B)"
                        ).into());
                    }
                }
                let parts = fragments.max(1) as usize;
                let chunk = payload.len().div_ceil(parts).max(1);
                let pieces: Vec<Vec<u8>> = if payload.is_empty() {
                    vec![Vec::new()]
                } else {
                    payload.chunks(chunk).map(<[u8]>::to_vec).collect()
                };
                let last = pieces.len() - 1;
                for (i, piece) in pieces.into_iter().enumerate() {
                    let opcode = if i == 0 {
                        f.opcode.0
                    } else {
                        crate::client::conn::opcode::CONTINUATION
                    };
                    let fin = if i == last { f.fin } else { false };
                    if let Err(e) = conn.send_frame(&spec(opcode, piece, fin)).await {
                        // The server may close mid-message; that is what the judgement looks at.
                        log.note(format!("fragment {} not sent: {e}", i + 1));
                        break;
                    }
                }
            }
        }
        if let Some(link) = s.current() {
            link.last_sent = LastSent::Data(1);
        }
        Ok(())
    }
}

impl Judge for Conforms {
    /// `conforms`: reads the connection to its end (at most [`CONFORMS_WAIT`]) when the case
    /// sent a frame of its own (a close), else what already arrived; then lists every rule of
    /// RFC 6455 the server broke in the case, its 101 included.
    async fn judge(&self, s: &mut Session) -> Judgement {
        let refused = s.no_channel();
        let closing = s.current().is_some_and(|l| l.mutated);
        if s.channel().is_some() {
            // Without a close of its own, only long enough for what came with the 101 to be read.
            let wait = if closing {
                CONFORMS_WAIT
            } else {
                Duration::from_millis(200)
            };
            let deadline = Instant::now() + wait;
            loop {
                let r = s.next_reply(deadline).await;
                if r.kind == Kind::Timeout {
                    break;
                }
                if r.is_end() {
                    if matches!(r.event, Event::Close { .. }) {
                        // The reader watches a little longer for bytes after the close.
                        tokio::time::sleep(AFTER_CLOSE_GRACE * 2).await;
                    }
                    break;
                }
            }
        }
        let broken = s.violations();
        if !broken.is_empty() {
            let list: Vec<String> = broken.iter().map(ToString::to_string).collect();
            return Judgement::Broken(format!(
                "the server broke RFC 6455 where a browser checks it: {}",
                list.join("; ")
            ));
        }
        match refused {
            Some(Some(status)) => Judgement::Inconclusive(format!(
                "the handshake was refused with HTTP {status}: no 101 or frame to check"
            )),
            Some(None) => Judgement::Inconclusive("no connection was opened: nothing to check".into()),
            None => Judgement::Holds(
                "the 101 and every frame the server sent follow the rules of RFC 6455 a browser enforces"
                    .into(),
            ),
        }
    }
}
